//! Record encoding with the built-in codebook, buffer pool on vs off: one reused
//! `record::Encoder` codes a fixed set of 200 chat-like records generated here (no corpus
//! needed), each into a cleared output buffer.
//!
//! `cargo bench -p sigma-bench --bench encode`; figures in the crate's README ("Buffer pool").

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sigmalang::{Codebook, PoolConfig};
use sigmalang::{CoderConfig, Encoder};

/// Records in the set.
const RECORDS: usize = 200;

/// SplitMix64: the deterministic source of the record set.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOPICS: &[&str] = &[
    "a REST API in Python",
    "memory leaks in a React app",
    "the difference between TCP and UDP",
    "a marketing plan for a coffee shop",
    "photosynthesis",
    "binary search trees",
    "a cover letter for a data analyst role",
    "Kubernetes deployments",
    "the causes of the French Revolution",
    "SQL joins",
    "a healthy weekly meal plan",
    "async/await in JavaScript",
];

const ASKS: &[&str] = &[
    "Can you explain {t} in simple terms?",
    "Write a short guide to {t}.",
    "What are the best practices for {t}?",
    "I'm confused about {t}. Could you help me understand it with an example?",
    "Give me a step-by-step overview of {t}.",
    "Summarize {t} in a few bullet points.",
];

const OPENERS: &[&str] = &[
    "Sure! Here is an overview of {t}.",
    "Certainly. {T} can be broken down into a few key ideas.",
    "Great question! Let's walk through {t} step by step.",
    "Here's a concise explanation of {t}, with an example at the end.",
];

const POINTS: &[&str] = &[
    "It is important to understand the underlying concepts before moving on to more advanced topics.",
    "This approach makes the code easier to read, test and maintain over time.",
    "Keep in mind that performance can vary depending on the size of the input and the hardware.",
    "A common mistake is to skip error handling, which leads to confusing failures later.",
    "You can use this pattern in most situations, but there are a few exceptions worth knowing.",
    "The main advantage is flexibility; the main drawback is the additional complexity.",
    "Start with a small, working example and then extend it one feature at a time.",
    "Make sure to document your assumptions so that others can follow your reasoning.",
];

const CODE: &[&str] = &[
    "```python\ndef handler(request):\n    data = request.get_json()\n    if not data:\n        return {\"error\": \"missing body\"}, 400\n    return {\"result\": process(data)}, 200\n```",
    "```javascript\nasync function loadUser(id) {\n  const response = await fetch(`/api/users/${id}`);\n  if (!response.ok) throw new Error(response.statusText);\n  return response.json();\n}\n```",
    "```sql\nSELECT o.id, c.name, o.total\nFROM orders o\nJOIN customers c ON c.id = o.customer_id\nWHERE o.created_at >= '2024-01-01';\n```",
];

const CLOSERS: &[&str] = &[
    "Let me know if you have any other questions!",
    "I hope this helps. Feel free to ask if anything is unclear.",
    "Would you like me to go into more detail on any of these points?",
];

/// The record set: alternating user and assistant turns, 200 records, 72,856 bytes.
fn records() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5349_474d_4150_4f4f);
    let mut out = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let topic = rng.pick(TOPICS);
        let cap = {
            let mut c = topic.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        let fill = |s: &str| s.replace("{t}", topic).replace("{T}", &cap);
        let text = if i % 2 == 0 {
            fill(rng.pick(ASKS))
        } else {
            let mut s = fill(rng.pick(OPENERS));
            s.push_str("\n\n");
            for k in 0..2 + rng.below(6) {
                s.push_str(&format!(
                    "{}. **Point {}**: {}\n",
                    k + 1,
                    k + 1,
                    rng.pick(POINTS)
                ));
            }
            if rng.below(3) == 0 {
                s.push('\n');
                s.push_str(rng.pick(CODE));
                s.push('\n');
            }
            s.push('\n');
            s.push_str(rng.pick(CLOSERS));
            s
        };
        out.push(text.into_bytes());
    }
    out
}

fn encode(c: &mut Criterion) {
    let records = records();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let codebook = Codebook::default_codebook();
    let mut g = c.benchmark_group("encode");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .throughput(Throughput::Bytes(bytes as u64));
    for (name, pool) in [
        ("pool-on", PoolConfig::default()),
        ("pool-off", PoolConfig::disabled()),
    ] {
        let mut encoder = Encoder::with_config(codebook.clone(), CoderConfig::default().pool(pool));
        let mut out = Vec::with_capacity(1 << 16);
        g.bench_function(format!("{RECORDS}-records/{name}"), |b| {
            b.iter(|| {
                let mut total = 0;
                for r in &records {
                    out.clear();
                    encoder.encode(black_box(r), &mut out).unwrap();
                    total += out.len();
                }
                total
            })
        });
        let s = encoder.stats();
        eprintln!(
            "encode/{name}: {} records, {} bytes in, ratio {:.2}; pool: {} acquires, {} overflow allocations",
            RECORDS,
            bytes,
            s.bytes_in as f64 / s.bytes_out as f64,
            s.pool.total_acquires,
            s.pool.overflow_allocations
        );
    }
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);

//! `sigma demo`: the codec's main job on a built-in sample, for a fresh machine.
//!
//! Compresses the sample (or FILE), decompresses it, checks the round trip is byte-identical,
//! and prints sizes, ratio, encode and decode speeds and a short summary of the semantic tree.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use sigmalang::GlyphType;

use super::TreeStats;
use crate::error::CliError;
use crate::format::{mb_per_s, ratio};
use crate::io::{Input, STDOUT_LABEL};
use crate::DemoArgs;

/// The built-in sample: a chat-style transcript with prose, markdown, code, JSON, other
/// languages and emoji.
pub const SAMPLE: &str = include_str!("../../assets/sample.txt");

/// Timing repeats a step until it has run this long (small inputs are too quick to time once).
const MIN_TIME: Duration = Duration::from_millis(300);

/// The most times a step is repeated for timing.
const MAX_RUNS: u32 = 100;

/// Runs `sigma demo`.
/// The largest file `sigma demo` reads: 1 GiB (`sigma compress` streams anything larger).
pub const MAX_DEMO_BYTES: u64 = 1 << 30;

pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let (name, data) = match &args.file {
        Some(path) => {
            let input = Input::from_arg(Some(path));
            (
                input.label(),
                input.read_all(
                    MAX_DEMO_BYTES,
                    "the demo holds the file, its coded form and a decoded copy in memory",
                )?,
            )
        }
        None => ("built-in sample".to_string(), SAMPLE.as_bytes().to_vec()),
    };

    // The built-in codebook is loaded once per process: outside the timed steps.
    let load_start = Instant::now();
    let codebook = sigmalang::Codebook::default_codebook();
    let load_time = load_start.elapsed();
    let (packed, encode_time) = timed(|| Ok(sigmalang::compress(&data)))?;
    let (unpacked, decode_time) =
        timed(|| sigmalang::decompress(&packed).map_err(|e| CliError::codec(&name, e)))?;
    if unpacked != data {
        let at = unpacked
            .iter()
            .zip(&data)
            .position(|(a, b)| a != b)
            .unwrap_or(unpacked.len().min(data.len()));
        return Err(CliError::new(
            &name,
            format!(
                "round trip FAILED: decoded {} bytes of {}, first difference at byte {at}",
                unpacked.len(),
                data.len()
            ),
        ));
    }

    let tree = sigmalang::parse(&data);
    let stats = TreeStats::of(&tree);
    let n = data.len() as u64;
    let m = packed.len() as u64;
    let list = |items: Vec<(&str, usize)>| {
        items
            .iter()
            .map(|(p, c)| format!("{p} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let report = format!(
        "SigmaLang demo on the {name}\n\
         \x20 input        {n} bytes\n\
         \x20 compressed   {m} bytes\n\
         \x20 ratio        {:.2}x ({:.1}% of the input)\n\
         \x20 encode       {:.1} MB/s\n\
         \x20 decode       {:.1} MB/s\n\
         \x20 round trip   OK, byte-identical\n\
         \x20 codebook     built-in, {} bytes, loaded in {:.1} ms (once, not in the speeds)\n\
         semantic tree: {}\n\
         \x20 top leaves:    {}\n\
         \x20 top structure: {}\n",
        ratio(n, m),
        if n == 0 {
            0.0
        } else {
            m as f64 * 100.0 / n as f64
        },
        mb_per_s(n, encode_time),
        mb_per_s(n, decode_time),
        codebook.serialized_len(),
        load_time.as_secs_f64() * 1e3,
        stats.summary_line(),
        list(stats.top(GlyphType::Primitive, 8)),
        list(stats.top(GlyphType::Composite, 6)),
    );
    let mut out = io::stdout().lock();
    out.write_all(report.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::write(STDOUT_LABEL, e, true))
}

/// Runs `step` until [`MIN_TIME`] has passed (at most [`MAX_RUNS`] times); returns its last
/// result and the average time of one run.
fn timed<T>(mut step: impl FnMut() -> Result<T, CliError>) -> Result<(T, Duration), CliError> {
    let start = Instant::now();
    let mut runs = 1u32;
    let mut result = step()?;
    while start.elapsed() < MIN_TIME && runs < MAX_RUNS {
        result = step()?;
        runs += 1;
    }
    Ok((result, start.elapsed() / runs))
}

//! SigmaLang record archives in `--histories` mode: the whole record set packed into one
//! archive by `sigmalang::ArchiveWriter` (records coded against their contexts, an index at
//! the end), read back by `sigmalang::ArchiveReader`.
//!
//! Three rows, all over the built-in codebook with the library's default `ArchiveOptions`:
//!
//! * `sigma-archive`: records added without a key, so a record's context is the records just
//!   before it in the file;
//! * `sigma-archive-keyed`: each record keyed by its `conversation` field;
//! * `sigma-archive-keyed-interleaved`: the same keyed archive built from an interleaved order
//!   of the records ([`interleave`]), as a log of many concurrent conversations is.
//!
//! A row's output bytes is the whole archive file (header, metadata, payloads, index and
//! footer). Every record is verified twice: by one sequential [`ArchiveReader::walk`], and by
//! [`ArchiveReader::get`] on a reader opened fresh for that record (nothing cached), which
//! also gives every record's bytes read and chain length. Random access is then sampled on
//! fresh readers ([`random_access`]).

use crate::measure::{time_passes, Row};
use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records added without a key: the context is the preceding records.
pub const PLAIN: &str = "sigma-archive";
/// Records keyed by their conversation, in file order.
pub const KEYED: &str = "sigma-archive-keyed";
/// Records keyed by their conversation, in an interleaved order.
pub const INTERLEAVED: &str = "sigma-archive-keyed-interleaved";

/// The seed of the interleaving PRNG.
pub const INTERLEAVE_SEED: u64 = 0x5349_474D_414C_414E; // "SIGMALAN"
/// The seed of the random-access sample.
pub const ACCESS_SEED: u64 = 0x0052_414E_444F_4D21; // "RANDOM!"
/// Random records fetched, each on a freshly opened reader.
pub const RANDOM_GETS: usize = 50;
/// Times the last record is fetched, each on a freshly opened reader.
pub const LAST_GETS: usize = 10;

/// The metadata the archives carry (what `sigma pack` stores).
const METADATA: &[u8] = b"field=text\n";

/// The archive options of every row: the library's defaults.
pub fn options() -> ArchiveOptions {
    ArchiveOptions::default()
}

/// SplitMix64: a small, fixed, portable PRNG.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A deterministic interleaving of records grouped by `keys`: a permutation of `0..keys.len()`
/// that keeps each group's records in their order but mixes the groups. Each step takes the
/// next record of a group chosen at random, weighted by the records the group has left (so
/// every arrangement of the groups' records is equally likely). Records without a key form
/// one group.
pub fn interleave(keys: &[Option<&[u8]>], seed: u64) -> Vec<usize> {
    let mut group_of: HashMap<Option<&[u8]>, usize> = HashMap::new();
    let mut groups: Vec<VecDeque<usize>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let g = *group_of.entry(*key).or_insert_with(|| {
            groups.push(VecDeque::new());
            groups.len() - 1
        });
        groups[g].push_back(i);
    }
    let mut rng = Rng::new(seed);
    let mut order = Vec::with_capacity(keys.len());
    for remaining in (1..=keys.len() as u64).rev() {
        let mut pick = rng.below(remaining);
        for group in &mut groups {
            let len = group.len() as u64;
            if pick < len {
                order.push(group.pop_front().expect("non-empty"));
                break;
            }
            pick -= len;
        }
    }
    order
}

/// How mixed an order of keyed records is: the mean run of consecutive records with the same
/// key, and the most groups open at once (started and not yet finished).
pub fn mixing(keys: &[Option<&[u8]>]) -> (f64, usize) {
    if keys.is_empty() {
        return (0.0, 0);
    }
    let runs = 1 + keys.windows(2).filter(|w| w[0] != w[1]).count();
    let mut last: HashMap<Option<&[u8]>, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        last.insert(*k, i);
    }
    let mut open: HashSet<Option<&[u8]>> = HashSet::new();
    let mut most = 0;
    for (i, k) in keys.iter().enumerate() {
        open.insert(*k);
        most = most.max(open.len());
        if last[k] == i {
            open.remove(k);
        }
    }
    (keys.len() as f64 / runs as f64, most)
}

/// The records of one archive, in the order they are added, and their context keys
/// (`None`: the default context).
pub struct Input<'a> {
    /// The records.
    pub texts: Vec<&'a [u8]>,
    /// Each record's key.
    pub keys: Vec<Option<&'a [u8]>>,
}

/// Packs `input` into an archive in memory.
pub fn pack(
    codebook: &Arc<Codebook>,
    opts: ArchiveOptions,
    input: &Input,
) -> sigmalang::Result<Vec<u8>> {
    let mut writer = ArchiveWriter::with_options(Vec::new(), codebook.clone(), METADATA, opts)?;
    for (text, key) in input.texts.iter().zip(&input.keys) {
        writer.add_in_group(*key, text)?;
    }
    writer.finish()
}

/// Opens `bytes` as an archive.
fn open(bytes: &[u8]) -> sigmalang::Result<ArchiveReader<Cursor<&[u8]>>> {
    ArchiveReader::open(Cursor::new(bytes))
}

/// What fetching records on fresh readers cost.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Records fetched.
    pub gets: usize,
    /// Wall-clock milliseconds of each `get` (opening the reader not included).
    pub get_ms: Vec<f64>,
    /// Wall-clock milliseconds of each `ArchiveReader::open` (header, metadata and index).
    pub open_ms: Vec<f64>,
    /// Bytes each `get` read from the file (`last_read_bytes`): whole blocks, at most one
    /// per record decoded.
    pub read: Vec<u64>,
    /// The distinct blocks' bytes of each `get` (what it would read if it read each block once).
    pub distinct: Vec<u64>,
    /// Each record's chain (its context's root and keyframes, records since its keyframe,
    /// and itself).
    pub chain: Vec<usize>,
    /// Records each `get` decoded: the chain and the Σ-bank roots its records reference.
    pub decoded: Vec<usize>,
}

impl Sample {
    fn push(
        &mut self,
        open: Duration,
        get: Duration,
        read: u64,
        distinct: u64,
        chain: usize,
        decoded: usize,
    ) {
        self.gets += 1;
        self.distinct.push(distinct);
        self.decoded.push(decoded);
        self.open_ms.push(open.as_secs_f64() * 1e3);
        self.get_ms.push(get.as_secs_f64() * 1e3);
        self.read.push(read);
        self.chain.push(chain);
    }
}

/// Mean of some numbers (0 for none).
pub fn mean<T: Copy + Into<f64>>(values: &[T]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|&v| v.into()).sum::<f64>() / values.len() as f64
}

/// Median of some numbers (0 for none).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Random access to one archive, each record fetched on a reader opened fresh for it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The archive's row name.
    pub name: String,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Records in it.
    pub records: u64,
    /// Its options.
    pub options: ArchiveOptions,
    /// The largest block (`block_records` records' payloads), which a `get` reads whole.
    pub largest_block: u64,
    /// [`RANDOM_GETS`] records drawn uniformly (seed [`ACCESS_SEED`]).
    pub random: Sample,
    /// The last record, [`LAST_GETS`] times.
    pub last: Sample,
    /// Every record once (the verification pass), bytes read and chains only (not timed).
    pub all: Sample,
}

impl Access {
    /// The longest chain: the context's root and up to `keyframes_per_root - 1` keyframes
    /// after it, then up to `keyframe_interval - 1` deltas and the record.
    pub fn chain_bound(&self) -> u64 {
        u64::from(self.options.get_group().get_keyframes_per_root())
            + u64::from(self.options.get_group().get_keyframe_interval())
            - 1
    }

    /// The most records a `get` can decode: the chain, and for each of its records up to
    /// `MAX_REFS` Σ-bank roots (which depend on nothing); none without a bank.
    pub fn decode_bound(&self) -> u64 {
        let refs = if self.options.get_bank() == 0 {
            0
        } else {
            sigmalang::archive::MAX_REFERENCES as u64
        };
        self.chain_bound() * (1 + refs)
    }

    /// The most bytes a `get` on a fresh reader can read: a whole block per record decoded.
    pub fn read_bound(&self) -> u64 {
        self.decode_bound() * self.largest_block
    }
}

/// The records per block of the archive `reader` reads: the archive's own (a coded index makes
/// blocks larger than `options` asked for), or `options`' in block mode, as before.
fn archive_block_records<R: std::io::Read + std::io::Seek>(
    reader: &ArchiveReader<R>,
    options: ArchiveOptions,
) -> u32 {
    if reader.page_bytes() == 0 {
        u32::try_from(reader.block_records()).expect("the index bounds it by u32::MAX")
    } else {
        options.get_block_records()
    }
}

/// The size of every block of the archive `reader` reads (`block_records` records'
/// payloads).
fn block_sizes<R: std::io::Read + std::io::Seek>(
    reader: &ArchiveReader<R>,
    block_records: u32,
) -> Vec<u64> {
    let (count, block) = (reader.len(), u64::from(block_records));
    (0..count.div_ceil(block))
        .map(|b| {
            let first = reader.info(b * block).expect("in range");
            let last = reader
                .info(((b + 1) * block).min(count) - 1)
                .expect("in range");
            last.offset + last.payload_len - first.offset
        })
        .collect()
}

/// Fetches record `n` on a fresh reader, checks it against `expected`, and adds the cost to
/// `sample`. `blocks` are the archive's block sizes, `block_records` records each.
fn fetch(
    name: &str,
    bytes: &[u8],
    (blocks, block_records): (&[u64], u32),
    n: u64,
    expected: &[u8],
    sample: &mut Sample,
) -> Result<(), String> {
    let fail = |what: String| format!("{name}: record {n}: {what}");
    let start = Instant::now();
    let mut reader = open(bytes).map_err(|e| format!("{name}: cannot open the archive: {e}"))?;
    let opened = start.elapsed();
    let start = Instant::now();
    let got = reader
        .get(n)
        .map_err(|e| fail(format!("get failed: {e}")))?;
    let took = start.elapsed();
    black_box(&got);
    if got != expected {
        return Err(fail(format!(
            "get returned a record differing from the input ({} bytes in, {} bytes out)",
            expected.len(),
            got.len()
        )));
    }
    let chain = reader.chain(n);
    let mut decoded: HashSet<u64> = chain.iter().copied().collect();
    for &r in &chain {
        decoded.extend(reader.references(r));
    }
    let touched: HashSet<u64> = decoded
        .iter()
        .map(|r| r / u64::from(block_records))
        .collect();
    let distinct = touched.iter().map(|&b| blocks[b as usize]).sum();
    let read = reader.last_read_bytes();
    sample.push(opened, took, read, distinct, chain.len(), decoded.len());
    Ok(())
}

/// Checks every record of the archive `bytes` against `texts` (in archive order): by one
/// sequential walk, and by `get` on a fresh reader per record, whose costs it returns.
fn verify(
    name: &str,
    bytes: &[u8],
    texts: &[&[u8]],
    options: ArchiveOptions,
) -> Result<Sample, String> {
    let mut reader = open(bytes).map_err(|e| format!("{name}: cannot open the archive: {e}"))?;
    if reader.len() != texts.len() as u64 {
        return Err(format!(
            "{name}: the archive holds {} records, not {}",
            reader.len(),
            texts.len()
        ));
    }
    let mut next = 0u64;
    let mut first_error = None;
    let failed = reader.walk(|n, record| {
        let problem = match record {
            Err(e) => Some(format!("walk failed: {e}")),
            Ok(_) if n != next => Some(format!("walk visited it out of order (expected {next})")),
            Ok(b) if b != texts[n as usize] => Some(format!(
                "walk returned a record differing from the input ({} bytes in, {} bytes out)",
                texts[n as usize].len(),
                b.len()
            )),
            Ok(_) => None,
        };
        next = n + 1;
        if let Some(p) = problem {
            first_error.get_or_insert(format!("{name}: record {n}: {p}"));
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    if failed != 0 || next != texts.len() as u64 {
        return Err(format!(
            "{name}: walk reported {failed} failed records, visited {next} of {}",
            texts.len()
        ));
    }
    let block_records = archive_block_records(&reader, options);
    let blocks = block_sizes(&reader, block_records);
    let layout = (&blocks[..], block_records);
    let mut all = Sample::default();
    for (n, text) in texts.iter().enumerate() {
        fetch(name, bytes, layout, n as u64, text, &mut all)?;
    }
    Ok(all)
}

/// Samples random access to the archive `bytes` (records `texts`, in archive order):
/// [`RANDOM_GETS`] uniformly drawn records and the last record [`LAST_GETS`] times, each on a
/// freshly opened reader. `all` is the verification pass's sample.
pub fn random_access(
    name: &str,
    bytes: &[u8],
    texts: &[&[u8]],
    options: ArchiveOptions,
    all: Sample,
) -> Result<Access, String> {
    let reader = open(bytes).map_err(|e| format!("{name}: cannot open the archive: {e}"))?;
    let count = reader.len();
    let block_records = archive_block_records(&reader, options);
    let blocks = block_sizes(&reader, block_records);
    let layout = (&blocks[..], block_records);
    let largest_block = blocks.iter().copied().max().unwrap_or(0);
    let mut rng = Rng::new(ACCESS_SEED);
    let mut random = Sample::default();
    let mut last = Sample::default();
    if count > 0 {
        for _ in 0..RANDOM_GETS {
            let n = rng.below(count);
            fetch(name, bytes, layout, n, texts[n as usize], &mut random)?;
        }
        for _ in 0..LAST_GETS {
            let n = count - 1;
            fetch(name, bytes, layout, n, texts[n as usize], &mut last)?;
        }
    }
    Ok(Access {
        name: name.to_owned(),
        archive_bytes: bytes.len() as u64,
        records: count,
        options,
        largest_block,
        random,
        last,
        all,
    })
}

/// Measures one archive row: packs `input`, verifies every record (walk and fresh-reader
/// `get`), samples random access, then times packing (the whole archive, `finish` included)
/// and sequential reading (open and walk) over whole passes until `min_time` has elapsed.
pub fn measure_archive(
    name: &str,
    codebook: &Arc<Codebook>,
    input: &Input,
    min_time: Duration,
) -> Result<(Row, Access), String> {
    let opts = options();
    let packed = |input: &Input| {
        pack(codebook, opts, input).map_err(|e| format!("{name}: packing failed: {e}"))
    };
    let bytes = packed(input)?;
    let all = verify(name, &bytes, &input.texts, opts)?;
    let access = random_access(name, &bytes, &input.texts, opts, all)?;

    let input_bytes: u64 = input.texts.iter().map(|t| t.len() as u64).sum();
    let encode = time_passes(min_time, || {
        black_box(packed(black_box(input))?);
        Ok(())
    })?;
    let decode = time_passes(min_time, || {
        let mut reader =
            open(&bytes).map_err(|e| format!("{name}: cannot open the archive: {e}"))?;
        let failed = reader.walk(|_, record| {
            black_box(&record);
        });
        if failed == 0 {
            Ok(())
        } else {
            Err(format!("{name}: walk failed on {failed} records"))
        }
    })?;

    let c = opts.get_group();
    let row = Row {
        name: name.to_owned(),
        records: input.texts.len(),
        input_bytes,
        output_bytes: bytes.len() as u64,
        encode_mb_s: Some(encode.mb_s(input_bytes)),
        decode_mb_s: Some(decode.mb_s(input_bytes)),
        encode_wall_mb_s: Some(encode.wall_mb_s(input_bytes)),
        decode_wall_mb_s: Some(decode.wall_mb_s(input_bytes)),
        model_bytes: codebook.serialized_len(),
        note: format!(
            "built-in codebook; whole archive file; keyframe interval {}, {} keyframes per root, \
             {} frames, {} records a block, {} MiB bank",
            c.get_keyframe_interval(),
            c.get_keyframes_per_root(),
            c.get_max_frames(),
            opts.get_block_records(),
            opts.get_bank() >> 20
        ),
    };
    Ok((row, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_keeps_each_group_in_order() {
        let keys: Vec<Option<&[u8]>> = [b"a", b"a", b"a", b"b", b"b", b"c", b"c", b"c", b"c"]
            .iter()
            .map(|k| Some(&k[..]))
            .collect();
        let order = interleave(&keys, 7);
        assert_eq!(order, interleave(&keys, 7));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..keys.len()).collect::<Vec<_>>());
        for k in [b"a", b"b", b"c"] {
            let positions: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| keys[i] == Some(&k[..]))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        }
        assert_eq!(mixing(&keys), (3.0, 1));
        let mixed: Vec<Option<&[u8]>> = order.iter().map(|&i| keys[i]).collect();
        assert!(mixing(&mixed).0 < 3.0);
    }

    #[test]
    fn archive_rows_round_trip() {
        let texts: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("{{\"messages\": [\"turn {}\", \"turn {i}\"]}}", i % 5).into_bytes())
            .collect();
        let keys: Vec<Vec<u8>> = (0..40).map(|i| vec![b'a' + (i % 3) as u8]).collect();
        let input = Input {
            texts: texts.iter().map(|t| &t[..]).collect(),
            keys: keys.iter().map(|k| Some(&k[..])).collect(),
        };
        let codebook = Codebook::default_codebook();
        let (row, access) = measure_archive(KEYED, &codebook, &input, Duration::ZERO).unwrap();
        assert_eq!(row.records, 40);
        assert!(row.output_bytes > 0 && row.encode_mb_s.unwrap() > 0.0);
        assert_eq!(access.random.gets, RANDOM_GETS);
        assert_eq!(access.all.gets, 40);
        // Reads are whole blocks, at most one per record decoded.
        let most = *access.all.read.iter().max().unwrap();
        assert!(
            most <= access.read_bound(),
            "{most} > {}",
            access.read_bound()
        );
        for (read, distinct) in access.all.read.iter().zip(&access.all.distinct) {
            assert!(distinct <= read && *distinct <= access.archive_bytes);
        }
    }
}

//! Measuring a codec on a record set: sizes, verification and single-thread speeds.
//!
//! Speeds are measured on the CPU time of the measuring thread (Linux
//! `/proc/thread-self/schedstat`, nanoseconds), so they are one core's worth of codec work
//! even when the machine is shared; where that clock is unavailable they fall back to
//! wall-clock time. Wall-clock speeds are kept too (in the JSON output).

use crate::codec::{Codec, Zstd};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// Codec name.
    pub name: String,
    /// Records measured.
    pub records: usize,
    /// Sum of the records' lengths.
    pub input_bytes: u64,
    /// Sum of the compressed lengths, length prefixes included.
    pub output_bytes: u64,
    /// Encode speed in MB/s (10^6 input bytes a second), if measured.
    pub encode_mb_s: Option<f64>,
    /// Decode speed in MB/s (10^6 decoded bytes a second), if measured.
    pub decode_mb_s: Option<f64>,
    /// Encode speed on wall-clock time, if measured.
    pub encode_wall_mb_s: Option<f64>,
    /// Decode speed on wall-clock time, if measured.
    pub decode_wall_mb_s: Option<f64>,
    /// Bytes of trained state the decoder needs.
    pub model_bytes: usize,
    /// Anything else worth knowing about the row.
    pub note: String,
}

impl Row {
    /// Input bytes per output byte.
    pub fn ratio(&self) -> f64 {
        self.input_bytes as f64 / self.output_bytes.max(1) as f64
    }
}

/// CPU time the calling thread has used, if the platform tells (Linux: the first field of
/// `/proc/thread-self/schedstat`, in nanoseconds).
pub fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The clock speeds are measured on: `"thread CPU time"` or `"wall-clock time"`.
pub fn clock_name() -> &'static str {
    if thread_cpu_time().is_some() {
        "thread CPU time"
    } else {
        "wall-clock time"
    }
}

/// How long some passes took.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    passes: u32,
    wall: Duration,
    /// Thread CPU time, where available.
    cpu: Option<Duration>,
}

impl Timing {
    /// The time speeds are computed from: CPU time where available, else wall-clock.
    fn time(&self) -> Duration {
        self.cpu.unwrap_or(self.wall)
    }

    /// MB/s (10^6 bytes a second) when each pass handles `bytes`, on the measuring clock.
    pub fn mb_s(&self, bytes: u64) -> f64 {
        speed(bytes, self.passes, self.time())
    }

    /// The same on wall-clock time.
    pub fn wall_mb_s(&self, bytes: u64) -> f64 {
        speed(bytes, self.passes, self.wall)
    }
}

fn speed(bytes: u64, passes: u32, time: Duration) -> f64 {
    bytes as f64 * f64::from(passes) / time.as_secs_f64().max(1e-9) / 1e6
}

/// Runs `pass` until at least `min_time` has elapsed on the measuring clock (at least
/// once); returns how many passes ran and the time they took. Only `pass` runs between
/// the clock readings, so the time is the codec's work (plus the loop around it).
pub fn time_passes(
    min_time: Duration,
    mut pass: impl FnMut() -> Result<(), String>,
) -> Result<Timing, String> {
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    let mut passes = 0;
    loop {
        pass()?;
        passes += 1;
        let wall = start.elapsed();
        let cpu = cpu_start.and_then(|s| Some(thread_cpu_time()?.saturating_sub(s)));
        let timing = Timing { passes, wall, cpu };
        if timing.time() >= min_time {
            return Ok(timing);
        }
    }
}

/// Measures one codec on `records`. `encoder` and `decoder` are two instances of the same
/// codec, so that decoding can only use trained state, never what compressing left
/// behind. `references[i]` is the record that record `i` may be coded against (see
/// [`Codec::set_reference`]).
///
/// One pass compresses every record and then decodes and checks every record (this is
/// also the warm-up); then compression and decompression are each timed over whole
/// passes until `min_time` has elapsed.
pub fn measure(
    encoder: &mut dyn Codec,
    decoder: &mut dyn Codec,
    records: &[&[u8]],
    references: &[Option<usize>],
    min_time: Duration,
) -> Result<Row, String> {
    let name = encoder.name().to_owned();
    let fail = |i: usize, what: &str| format!("{name}: record {i}: {what}");
    let reference = |i: usize| references.get(i).copied().flatten().map(|r| records[r]);

    let mut compressed = Vec::with_capacity(records.len());
    for (i, input) in records.iter().enumerate() {
        let mut out = Vec::new();
        encoder.set_reference(reference(i));
        encoder
            .compress(input, &mut out)
            .map_err(|e| fail(i, &format!("compression failed: {e}")))?;
        compressed.push(out);
    }
    let mut out = Vec::new();
    for (i, (input, packed)) in records.iter().zip(&compressed).enumerate() {
        decoder.set_reference(reference(i));
        decoder
            .decompress(packed, &mut out)
            .map_err(|e| fail(i, &format!("decompression failed: {e}")))?;
        if out != *input {
            return Err(fail(
                i,
                &format!(
                    "decoded record differs from the input ({} bytes in, {} bytes out)",
                    input.len(),
                    out.len()
                ),
            ));
        }
    }

    let input_bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    let output_bytes: u64 = compressed.iter().map(|c| c.len() as u64).sum();

    let encode = time_passes(min_time, || {
        for (i, input) in records.iter().enumerate() {
            encoder.set_reference(reference(i));
            encoder
                .compress(black_box(input), &mut out)
                .map_err(|e| fail(i, &format!("compression failed: {e}")))?;
            black_box(&out);
        }
        Ok(())
    })?;
    let decode = time_passes(min_time, || {
        for (i, packed) in compressed.iter().enumerate() {
            decoder.set_reference(reference(i));
            decoder
                .decompress(black_box(packed), &mut out)
                .map_err(|e| fail(i, &format!("decompression failed: {e}")))?;
            black_box(&out);
        }
        Ok(())
    })?;

    Ok(Row {
        name,
        records: records.len(),
        input_bytes,
        output_bytes,
        encode_mb_s: Some(encode.mb_s(input_bytes)),
        decode_mb_s: Some(decode.mb_s(input_bytes)),
        encode_wall_mb_s: Some(encode.wall_mb_s(input_bytes)),
        decode_wall_mb_s: Some(decode.wall_mb_s(input_bytes)),
        model_bytes: encoder.model_bytes(),
        note: String::new(),
    })
}

/// zstd at `level` over all records concatenated into one stream (no random access):
/// how much there is to gain from cross-record context. Verified, ratio only.
pub fn measure_concat(name: &str, level: i32, records: &[&[u8]]) -> Result<Row, String> {
    let whole = records.concat();
    let mut codec = Zstd::new(name, level, &[]).map_err(|e| format!("{name}: {e}"))?;
    let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
    codec
        .compress(&whole, &mut packed)
        .map_err(|e| format!("{name}: compression failed: {e}"))?;
    codec
        .decompress(&packed, &mut unpacked)
        .map_err(|e| format!("{name}: decompression failed: {e}"))?;
    if unpacked != whole {
        return Err(format!("{name}: decoded stream differs from the input"));
    }
    Ok(Row {
        name: name.to_owned(),
        records: records.len(),
        input_bytes: whole.len() as u64,
        output_bytes: packed.len() as u64,
        encode_mb_s: None,
        decode_mb_s: None,
        encode_wall_mb_s: None,
        decode_wall_mb_s: None,
        model_bytes: 0,
        note: "one stream, no random access".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecResult;

    /// A codec that "decodes" by remembering the last input: must fail verification.
    #[derive(Default)]
    struct Cheat(Vec<u8>);

    impl Codec for Cheat {
        fn name(&self) -> &str {
            "cheat"
        }
        fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> CodecResult {
            self.0 = input.to_vec();
            out.clear();
            Ok(())
        }
        fn decompress(&mut self, _: &[u8], out: &mut Vec<u8>) -> CodecResult {
            out.clone_from(&self.0);
            Ok(())
        }
    }

    #[test]
    fn verification_catches_a_bad_codec() {
        let records: Vec<&[u8]> = vec![b"one", b"two"];
        let mut cheat = Cheat::default();
        let err = measure(
            &mut Cheat::default(),
            &mut cheat,
            &records,
            &[],
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(err.starts_with("cheat: record 0:"), "{err}");
    }

    #[test]
    fn thread_cpu_time_advances() {
        let Some(start) = thread_cpu_time() else {
            return;
        };
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(20) {
            x = black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(thread_cpu_time().unwrap() > start);
    }

    #[test]
    fn measures_a_real_codec() {
        let records: Vec<&[u8]> = vec![b"hello hello hello hello", b"", b"x"];
        let mut enc = Zstd::new("zstd-3", 3, &[]).unwrap();
        let mut dec = Zstd::new("zstd-3", 3, &[]).unwrap();
        let row = measure(&mut enc, &mut dec, &records, &[], Duration::ZERO).unwrap();
        assert_eq!(row.input_bytes, 24);
        assert!(row.encode_mb_s.unwrap() > 0.0);
        assert!(row.decode_wall_mb_s.unwrap() > 0.0);
        let concat = measure_concat("concat", 19, &records).unwrap();
        assert_eq!(concat.input_bytes, 24);
    }
}

//! `compress_batch` and `decompress_batch`: every record coded on its own (the library's
//! record payloads, as `Encoder::encode` makes them), on rayon threads, with the GIL released.
//! Records are independent, so the output never depends on the number of threads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::{ArrayRef, GenericBinaryArray, GenericStringArray, OffsetSizeTrait};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use pyo3_arrow::{PyArray, PyChunkedArray};
use rayon::prelude::*;
use sigmalang::{Codebook, CodebookId, Decoder, Encoder, Error, ErrorKind};

use crate::codebook::PyCodebook;
use crate::errors::{to_py, IntoPy};
use crate::records::{array_slices, not_utf8, Records};

/// The Arrow field metadata key that names the codebook of a column of payloads.
pub const CODEBOOK_KEY: &str = "sigmalang.codebook";

/// Input bytes per task handed to a worker: small enough to balance two cores on a few MB,
/// large enough that a task's overhead (a few microseconds) does not show.
const TASK_BYTES: usize = 256 << 10;

/// Which way records are coded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Compress,
    Decompress,
}

/// A reusable coder of one worker.
enum Coder {
    Enc(Encoder),
    Dec(Decoder),
}

impl Coder {
    fn new(job: Job, codebook: &Arc<Codebook>) -> Coder {
        match job {
            Job::Compress => Coder::Enc(Encoder::new(Arc::clone(codebook))),
            Job::Decompress => Coder::Dec(Decoder::new(Arc::clone(codebook))),
        }
    }

    fn code(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Coder::Enc(e) => e.encode(input, out),
            Coder::Dec(d) => d.decode(input, out),
        }
    }
}

/// Coded records: their bytes back to back and where each one ends.
pub struct Coded {
    pub values: Vec<u8>,
    pub ends: Vec<usize>,
}

/// The rayon pool of `n` threads (n >= 2), built once per size and shared by every call.
fn pool(n: usize) -> Result<Arc<rayon::ThreadPool>, Error> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&n) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("sigmalang-py-{i}"))
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::InvalidArgument {
                what: format!("cannot start {n} worker threads: {e}"),
            })
        })?;
    let p = Arc::new(p);
    pools.insert(n, Arc::clone(&p));
    Ok(p)
}

/// The number of workers `threads` asks for (0: one per core).
pub fn worker_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Codes `records[range]`; `base` is the index of `records[0]` in the whole input, for errors.
fn code_range(
    coder: &mut Coder,
    records: &[Option<&[u8]>],
    range: Range<usize>,
    base: usize,
) -> Result<Coded, Error> {
    let bytes: usize = records[range.clone()]
        .iter()
        .flatten()
        .map(|r| r.len())
        .sum();
    let mut out = Coded {
        values: Vec::with_capacity(bytes / 3 + 16),
        ends: Vec::with_capacity(range.len()),
    };
    for i in range {
        if let Some(r) = records[i] {
            coder
                .code(r, &mut out.values)
                .map_err(|e| e.within(format!("record {}", base + i)))?;
        }
        out.ends.push(out.values.len());
    }
    Ok(out)
}

/// Codes every record (nulls stay empty) on `threads` workers; call without the GIL.
pub fn code_all(
    job: Job,
    codebook: &Arc<Codebook>,
    records: &[Option<&[u8]>],
    base: usize,
    threads: usize,
) -> Result<Coded, Error> {
    let workers = worker_count(threads);
    if workers <= 1 || records.len() <= 1 {
        return code_range(
            &mut Coder::new(job, codebook),
            records,
            0..records.len(),
            base,
        );
    }
    // Contiguous ranges of about TASK_BYTES input bytes, at least 4 per worker.
    let total: usize = records.iter().flatten().map(|r| r.len()).sum();
    let target = (total / (workers * 4)).clamp(1, TASK_BYTES);
    let mut ranges = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        acc += r.map_or(0, |r| r.len()) + 16;
        if acc >= target {
            ranges.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    let run = || {
        ranges
            .into_par_iter()
            .map_init(
                || Coder::new(job, codebook),
                |coder, range| code_range(coder, records, range, base),
            )
            .collect::<Vec<_>>()
    };
    let parts = if threads == 0 {
        run()
    } else {
        pool(workers)?.install(run)
    };
    let mut out = Coded {
        values: Vec::with_capacity(
            parts
                .iter()
                .map(|p| p.as_ref().map_or(0, |p| p.values.len()))
                .sum(),
        ),
        ends: Vec::with_capacity(records.len()),
    };
    for part in parts {
        // The first error in record order, whatever thread met it.
        let part = part?;
        let shift = out.values.len();
        out.ends.extend(part.ends.iter().map(|e| e + shift));
        out.values.extend_from_slice(&part.values);
    }
    Ok(out)
}

/// The nulls of `records`, if any.
fn nulls(records: &[Option<&[u8]>]) -> Option<NullBuffer> {
    if records.iter().all(Option::is_some) {
        return None;
    }
    Some(NullBuffer::from_iter(records.iter().map(Option::is_some)))
}

fn offsets<O: OffsetSizeTrait>(ends: &[usize]) -> PyResult<OffsetBuffer<O>> {
    let mut v = Vec::with_capacity(ends.len() + 1);
    v.push(O::usize_as(0));
    for &e in ends {
        v.push(O::from_usize(e).ok_or_else(|| {
            PyValueError::new_err(format!(
                "the output holds more than {} bytes, too many for 32-bit offsets; \
                 use a large_string/large_binary input or smaller chunks",
                i32::MAX
            ))
        })?);
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(v)))
}

/// An Arrow array of `coded` records: binary, or text after a UTF-8 check.
fn to_array<O: OffsetSizeTrait>(
    coded: Coded,
    nulls: Option<NullBuffer>,
    text: bool,
    base: usize,
) -> PyResult<ArrayRef> {
    if text {
        let mut start = 0;
        for (i, &end) in coded.ends.iter().enumerate() {
            std::str::from_utf8(&coded.values[start..end]).map_err(|e| not_utf8(base + i, e))?;
            start = end;
        }
    }
    let offsets = offsets::<O>(&coded.ends)?;
    let values = Buffer::from_vec(coded.values);
    Ok(if text {
        Arc::new(
            GenericStringArray::<O>::try_new(offsets, values, nulls)
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        )
    } else {
        Arc::new(
            GenericBinaryArray::<O>::try_new(offsets, values, nulls)
                .map_err(|e| PyValueError::new_err(e.to_string()))?,
        )
    })
}

/// The codebook id a field's metadata names, if any.
fn field_codebook(field: &Field) -> PyResult<Option<CodebookId>> {
    match field.metadata().get(CODEBOOK_KEY) {
        None => Ok(None),
        Some(hex) => u64::from_str_radix(hex, 16)
            .map(|v| Some(CodebookId(v)))
            .map_err(|_| {
                PyValueError::new_err(format!("bad {CODEBOOK_KEY} field metadata {hex:?}"))
            }),
    }
}

/// Codes records from Python (a list or an Arrow object) and hands back the same kind: a list
/// for a list, an Arrow array for an array, a chunked array for a stream. Binary output unless
/// `as_str`; offsets of the input's width (32-bit for string/binary, 64-bit otherwise).
pub fn run_batch(
    py: Python<'_>,
    job: Job,
    data: &Bound<'_, PyAny>,
    codebook: Option<&PyCodebook>,
    threads: usize,
    as_str: bool,
) -> PyResult<Py<PyAny>> {
    let cb = PyCodebook::or_default(codebook);
    let records = Records::extract(data)?;
    match &records {
        Records::List(_) => {
            let coded = py
                .detach(|| code_all(job, &cb, &records.slices(), 0, threads))
                .py_err()?;
            let list = PyList::empty(py);
            let mut start = 0;
            for (i, (r, &end)) in records.slices().iter().zip(&coded.ends).enumerate() {
                let bytes = &coded.values[start..end];
                start = end;
                if r.is_none() {
                    list.append(py.None())?;
                } else if as_str {
                    let s = std::str::from_utf8(bytes).map_err(|e| not_utf8(i, e))?;
                    list.append(PyString::new(py, s))?;
                } else {
                    list.append(PyBytes::new(py, bytes))?;
                }
            }
            Ok(list.into_any().unbind())
        }
        Records::Arrow {
            chunks,
            field,
            stream,
        } => {
            if job == Job::Decompress {
                if let Some(id) = field_codebook(field)? {
                    if id != cb.id() {
                        return Err(to_py(Error::new(ErrorKind::CodebookMismatch {
                            stream: id,
                            given: cb.id(),
                        })));
                    }
                }
            }
            let large = !matches!(field.data_type(), DataType::Utf8 | DataType::Binary);
            let out_type = match (large, as_str) {
                (false, false) => DataType::Binary,
                (false, true) => DataType::Utf8,
                (true, false) => DataType::LargeBinary,
                (true, true) => DataType::LargeUtf8,
            };
            let mut out_field = Field::new(field.name(), out_type, true);
            if job == Job::Compress {
                out_field = out_field.with_metadata(HashMap::from([(
                    CODEBOOK_KEY.to_string(),
                    cb.id().to_string(),
                )]));
            }
            let out_field = Arc::new(out_field);
            let mut out_chunks = Vec::with_capacity(chunks.len());
            let mut base = 0;
            for chunk in chunks {
                let slices = array_slices(chunk.as_ref());
                let coded = py
                    .detach(|| code_all(job, &cb, &slices, base, threads))
                    .py_err()?;
                let n = nulls(&slices);
                out_chunks.push(if large {
                    to_array::<i64>(coded, n, as_str, base)?
                } else {
                    to_array::<i32>(coded, n, as_str, base)?
                });
                base += slices.len();
            }
            if *stream {
                let out = PyChunkedArray::try_new(out_chunks, out_field)?;
                Ok(out.into_pyobject(py)?.into_any().unbind())
            } else {
                let array = out_chunks.pop().expect("one array, one chunk");
                let out = PyArray::try_new(array, out_field)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                Ok(out.into_pyobject(py)?.into_any().unbind())
            }
        }
    }
}

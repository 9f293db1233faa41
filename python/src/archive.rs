//! Archives: `ArchiveWriter` and `ArchiveReader`, the files `sigma pack` and `sigma unpack`
//! read and write.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, LargeBinaryArray, LargeStringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use pyo3_arrow::PyArray;
use sigmalang::archive::sample::{default_primer, sample_runs};
use sigmalang::{ArchiveOptions, ArchiveReader, ArchiveWriter, Codebook, Error};

use crate::codebook::PyCodebook;
use crate::errors::IntoPy;
use crate::records::{not_utf8, Records};

/// Records per coded batch and bytes per batch: those of `sigma pack`, so that an archive
/// written here is byte-identical to the one `sigma pack` makes of the same records.
const BATCH_RECORDS: u32 = 1024;
const BATCH_BYTES: usize = 1 << 20;

/// The archive metadata `sigma pack` writes: the JSON field the records came from.
fn metadata(field: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("field={field}\nkey={key}\n"),
        None => format!("field={field}\n"),
    }
}

/// The field an archive's metadata names (`text` if none).
fn field_of(metadata: &[u8]) -> String {
    std::str::from_utf8(metadata)
        .ok()
        .and_then(|m| m.split('\n').find_map(|l| l.strip_prefix("field=")))
        .unwrap_or("text")
        .to_string()
}

/// A temporary path beside `path`: the archive is written there and renamed when complete.
fn temp_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// A writer's state. (One per writer, and the started one is what lives: no box for it.)
#[allow(clippy::large_enum_variant)]
enum State {
    /// Nothing added yet, with a primer: the writer is started by what comes first (records
    /// fed as they go prime with the first ones; a whole table samples its primer from all of
    /// it).
    Ready(Box<Pending>),
    /// Started.
    Open(ArchiveWriter<BufWriter<File>>),
}

/// What a writer is started with.
struct Pending {
    file: BufWriter<File>,
    codebook: Arc<Codebook>,
    metadata: String,
    opts: ArchiveOptions,
    /// `primer="auto"`: a table written first makes the primer a quarter of its records'
    /// bytes (64 KiB to 1 MiB, as `sigma pack` does a file's); otherwise it is
    /// `opts.primer` (256 KiB for "auto", as `sigma pack` reading standard input).
    auto: bool,
}

impl Pending {
    /// Starts the writer, its primer made of the first records added.
    fn start(self) -> Result<ArchiveWriter<BufWriter<File>>, Error> {
        ArchiveWriter::with_options(
            self.file,
            self.codebook,
            self.metadata.as_bytes(),
            self.opts,
        )
    }

    /// Starts the writer for a table of `records` (with `keys`), which are to be added next:
    /// its primer sampled from all of them (the runs of
    /// `sigmalang::archive::sample::sample_runs`), or, if they are no more than the primer,
    /// made of the first records added (these, and what follows them), as a sample of all of
    /// them would hold them.
    fn start_table(
        mut self,
        records: &[Option<&[u8]>],
        keys: Option<&[Option<&[u8]>]>,
    ) -> Result<ArchiveWriter<BufWriter<File>>, Error> {
        let sizes: Vec<usize> = records.iter().map(|r| r.map_or(0, <[u8]>::len)).collect();
        let bytes: u64 = sizes.iter().map(|&s| s as u64 + 1).sum();
        if self.auto {
            self.opts = self.opts.primer(default_primer(bytes));
        }
        if bytes <= self.opts.get_primer() as u64 {
            return self.start();
        }
        let runs = sample_runs(&sizes, self.opts.get_primer());
        let sample = runs
            .into_iter()
            .flatten()
            .map(|i| (keys.and_then(|k| k[i]), records[i].unwrap_or_default()));
        ArchiveWriter::with_primer_sample(
            self.file,
            self.codebook,
            self.metadata.as_bytes(),
            self.opts,
            sample,
        )
    }
}

/// Adds `records`, each in the context of the matching key of `keys` if given.
fn add_all<W: Write>(
    w: &mut ArchiveWriter<W>,
    records: &[Option<&[u8]>],
    keys: Option<&[Option<&[u8]>]>,
) -> Result<(), Error> {
    for (i, r) in records.iter().enumerate() {
        let key = keys.and_then(|k| k[i]);
        w.add_in_group(key, r.unwrap_or_default())?;
    }
    Ok(())
}

/// Records and keys from Python, and their slices (checked to be as many).
fn extract_keyed(
    records: &Bound<'_, PyAny>,
    keys: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Records, Option<Records>)> {
    let records = Records::extract(records)?;
    let keys = keys.map(Records::extract).transpose()?;
    if let Some(k) = &keys {
        let (n, m) = (records.slices().len(), k.slices().len());
        if n != m {
            return Err(PyValueError::new_err(format!("{n} records but {m} keys")));
        }
    }
    Ok((records, keys))
}

/// Writes an archive to `path` (through a temporary file renamed on `close`).
#[pyclass(module = "sigmalang._sigmalang")]
pub struct RawArchiveWriter {
    inner: Mutex<Option<State>>,
    path: PathBuf,
    temp: PathBuf,
}

impl RawArchiveWriter {
    /// The writer, started (its primer of the first records) if nothing was added yet.
    fn open<'a>(
        &self,
        py: Python<'_>,
        guard: &'a mut Option<State>,
    ) -> PyResult<&'a mut ArchiveWriter<BufWriter<File>>> {
        match guard.take() {
            None => return Err(PyValueError::new_err("add to a closed archive")),
            Some(State::Ready(p)) => match py.detach(|| p.start()) {
                Ok(w) => *guard = Some(State::Open(w)),
                Err(e) => {
                    let _ = std::fs::remove_file(&self.temp);
                    return Err(e).py_err();
                }
            },
            Some(open) => *guard = Some(open),
        }
        match guard {
            Some(State::Open(w)) => Ok(w),
            _ => unreachable!("started above"),
        }
    }
}

#[pymethods]
impl RawArchiveWriter {
    /// `primer`: the primer's size in KiB (`sigma pack --primer KIB`; 0: `--no-primer`), or
    /// `None` for `sigma pack`'s default: a table written first (`add_many(..., sample=True)`)
    /// gets a quarter of its records' bytes, 64 KiB to 1 MiB, else 256 KiB; `block`: the page
    /// size in bytes (`--block SIZE`; 0: every record alone); `auto`: with `block` 0, the page
    /// size of a trial (`--block auto:SIZE`; 0: none).
    /// `sample` (records, as `add_many` takes them) and `sample_keys` (their keys): the
    /// records the primer is made of (`ArchiveWriter::with_primer_sample`) instead of the
    /// first ones added.
    #[new]
    #[pyo3(signature = (path, codebook = None, field = "text", threads = 1, key = None, primer = Some(0), block = 0, auto = 0, sample = None, sample_keys = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: PathBuf,
        codebook: Option<PyRef<'_, PyCodebook>>,
        field: &str,
        threads: usize,
        key: Option<&str>,
        primer: Option<usize>,
        block: u64,
        auto: u64,
        sample: Option<&Bound<'_, PyAny>>,
        sample_keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RawArchiveWriter> {
        if primer.is_some_and(|p| p > 16384) {
            return Err(PyValueError::new_err("the primer holds at most 16384 KiB"));
        }
        if block.max(auto) > sigmalang::archive::MAX_PAGE_BYTES {
            return Err(PyValueError::new_err(format!(
                "blocks hold at most {} bytes",
                sigmalang::archive::MAX_PAGE_BYTES
            )));
        }
        if key.is_some_and(|k| k.is_empty() || k.contains('\n')) {
            return Err(PyValueError::new_err(
                "the context key must be non-empty and on one line",
            ));
        }
        if field.is_empty() || field.contains('\n') {
            return Err(PyValueError::new_err(
                "the field name must be non-empty and on one line",
            ));
        }
        if sample.is_none() && sample_keys.is_some() {
            return Err(PyValueError::new_err("sample keys without a sample"));
        }
        if sample.is_some() && primer == Some(0) {
            return Err(PyValueError::new_err(
                "a primer sample needs a primer (primer > 0)",
            ));
        }
        let sample = sample.map(|s| extract_keyed(s, sample_keys)).transpose()?;
        let cb = PyCodebook::or_default(codebook.as_deref());
        let opts = ArchiveOptions::default()
            .batch_records(BATCH_RECORDS)
            .batch_bytes(BATCH_BYTES)
            .threads(threads)
            .primer(primer.map_or(sigmalang::archive::DEFAULT_PRIMER_BYTES, |p| p * 1024))
            .page_bytes(block)
            .auto_pages(if block == 0 { auto } else { 0 });
        let metadata = metadata(field, key);
        let temp = temp_path(&path);
        let file = BufWriter::new(File::create(&temp)?);
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&temp);
            Err(e).py_err()
        };
        let state = if let Some((records, keys)) = &sample {
            let recs = records.slices();
            let keys = keys.as_ref().map(Records::slices);
            let sample = recs
                .iter()
                .enumerate()
                .map(|(i, r)| (keys.as_ref().and_then(|k| k[i]), r.unwrap_or_default()));
            match ArchiveWriter::with_primer_sample(file, cb, metadata.as_bytes(), opts, sample) {
                Ok(w) => State::Open(w),
                Err(e) => return cleanup(e),
            }
        } else if opts.get_primer() > 0 {
            // Started when the first records come; the options are checked now.
            let probe = ArchiveWriter::with_options(
                std::io::sink(),
                Arc::clone(&cb),
                metadata.as_bytes(),
                opts,
            );
            if let Err(e) = probe {
                return cleanup(e);
            }
            State::Ready(Box::new(Pending {
                file,
                codebook: cb,
                metadata,
                opts,
                auto: primer.is_none(),
            }))
        } else {
            match ArchiveWriter::with_options(file, cb, metadata.as_bytes(), opts) {
                Ok(w) => State::Open(w),
                Err(e) => return cleanup(e),
            }
        };
        drop(sample);
        Ok(RawArchiveWriter {
            inner: Mutex::new(Some(state)),
            path,
            temp,
        })
    }

    /// Adds one record, in the context of `key` if given; returns its index.
    #[pyo3(signature = (record, key = None))]
    fn add(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let record = Records::extract(PyList::new(py, [record])?.as_any())?;
        let key = match key {
            Some(k) => Some(Records::extract(PyList::new(py, [k])?.as_any())?),
            None => None,
        };
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let w = self.open(py, &mut guard)?;
        let r = record.slices()[0].unwrap_or_default().to_vec();
        let k = key.as_ref().and_then(|k| k.slices()[0].map(<[u8]>::to_vec));
        py.detach(|| w.add_in_group(k.as_deref(), &r)).py_err()
    }

    /// Adds many records (a list or an Arrow array), each in the context of the matching
    /// key of `keys` (a null key: no context key); returns the number added. With `sample`
    /// and nothing added yet, the primer is sampled from all of them (runs of records at
    /// evenly spaced points, as `sigma pack` samples a file) if they are more than the
    /// primer, instead of made of the first.
    #[pyo3(signature = (records, keys = None, sample = false))]
    fn add_many(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
        sample: bool,
    ) -> PyResult<usize> {
        let (records, keys) = extract_keyed(records, keys)?;
        let recs = records.slices();
        let keys = keys.as_ref().map(Records::slices);
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if sample {
            if let Some(State::Ready(_)) = &*guard {
                if recs.is_empty() {
                    // The writer stays as it was: the next table may be sampled.
                    return Ok(0);
                }
                let Some(State::Ready(p)) = guard.take() else {
                    unreachable!("matched above")
                };
                match py.detach(|| p.start_table(&recs, keys.as_deref())) {
                    Ok(w) => *guard = Some(State::Open(w)),
                    Err(e) => {
                        let _ = std::fs::remove_file(&self.temp);
                        return Err(e).py_err();
                    }
                }
            }
        }
        let w = self.open(py, &mut guard)?;
        py.detach(|| add_all(w, &recs, keys.as_deref())).py_err()?;
        Ok(recs.len())
    }

    /// Number of records added so far.
    fn __len__(&self) -> usize {
        match &*self.inner.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(State::Open(w)) => w.len() as usize,
            _ => 0,
        }
    }

    /// Writes the rest of the archive and puts it in place.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let w = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            let done = py.detach(|| -> Result<(), Error> {
                let w = match w {
                    State::Ready(p) => p.start()?,
                    State::Open(w) => w,
                };
                let mut f = w.finish()?;
                f.flush()?;
                f.get_ref().sync_all()?;
                Ok(())
            });
            if let Err(e) = done {
                let _ = std::fs::remove_file(&self.temp);
                return Err(e).py_err();
            }
            std::fs::rename(&self.temp, &self.path)?;
        }
        Ok(())
    }

    /// Drops what was written: the archive is not created.
    fn abort(&self) {
        if self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            let _ = std::fs::remove_file(&self.temp);
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

impl Drop for RawArchiveWriter {
    fn drop(&mut self) {
        // Never closed: no archive, and no temporary file left behind.
        if self.inner.get_mut().map(|w| w.is_some()).unwrap_or(true) {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Reads an archive: any record by index, decoding only what it depends on.
#[pyclass(module = "sigmalang._sigmalang")]
pub struct RawArchiveReader {
    inner: Mutex<ArchiveReader<BufReader<File>>>,
    field: String,
    codebook_id: String,
}

#[pymethods]
impl RawArchiveReader {
    #[new]
    #[pyo3(signature = (path, codebook = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        codebook: Option<PyRef<'_, PyCodebook>>,
    ) -> PyResult<RawArchiveReader> {
        let file = BufReader::new(File::open(&path)?);
        let cb: Option<Arc<Codebook>> = codebook.map(|c| Arc::clone(&c.inner));
        let reader = py
            .detach(|| -> Result<_, Error> {
                let mut r = ArchiveReader::open(file)?;
                if let Some(cb) = cb {
                    r.set_codebook(cb)?;
                }
                Ok(r)
            })
            .py_err()?;
        let field = field_of(reader.metadata());
        let codebook_id = reader.header().codebook.to_string();
        Ok(RawArchiveReader {
            inner: Mutex::new(reader),
            field,
            codebook_id,
        })
    }

    fn __len__(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len() as usize
    }

    /// The field the records came from (the archive's metadata; `text` by default).
    #[getter]
    fn field(&self) -> &str {
        &self.field
    }

    /// The id of the codebook the archive was written with.
    #[getter]
    fn codebook_id(&self) -> &str {
        &self.codebook_id
    }

    /// Record `index` (0-based; negative counts from the end).
    fn get<'py>(&self, py: Python<'py>, index: i64) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *guard;
        let len = r.len() as i64;
        let n = if index < 0 { index + len } else { index };
        if n < 0 || n >= len {
            return Err(PyIndexError::new_err(format!(
                "record {index} of an archive of {len} records"
            )));
        }
        let out = py.detach(|| r.get(n as u64)).py_err()?;
        Ok(PyBytes::new(py, &out))
    }

    /// Records `start..stop` in order, checking each block's decoded content.
    fn range<'py>(&self, py: Python<'py>, start: u64, stop: u64) -> PyResult<Bound<'py, PyList>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *guard;
        let stop = stop.min(r.len());
        let mut records = Vec::new();
        py.detach(|| -> Result<(), Error> {
            let mut out = Vec::new();
            for n in start..stop {
                out.clear();
                r.get_into(n, &mut out)?;
                records.push(out.clone());
            }
            Ok(())
        })
        .py_err()?;
        PyList::new(py, records.iter().map(|r| PyBytes::new(py, r)))
    }

    /// Every record, decoded in one pass that checks every block, as an Arrow array
    /// (large_binary, or large_string if `as_str`).
    #[pyo3(signature = (as_str = false))]
    fn to_arrow(&self, py: Python<'_>, as_str: bool) -> PyResult<Py<PyAny>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *guard;
        let (values, ends) = py
            .detach(|| -> Result<(Vec<u8>, Vec<i64>), Error> {
                let mut values = Vec::new();
                let mut ends = vec![0i64];
                let mut failed = None;
                r.walk_until(|_, rec| match rec {
                    Ok(bytes) => {
                        values.extend_from_slice(bytes);
                        ends.push(values.len() as i64);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                });
                match failed {
                    Some(e) => Err(e),
                    None => Ok((values, ends)),
                }
            })
            .py_err()?;
        if as_str {
            for (i, w) in ends.windows(2).enumerate() {
                std::str::from_utf8(&values[w[0] as usize..w[1] as usize])
                    .map_err(|e| not_utf8(i, e))?;
            }
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(ends));
        let values = Buffer::from_vec(values);
        let (array, dt): (ArrayRef, DataType) = if as_str {
            (
                Arc::new(
                    LargeStringArray::try_new(offsets, values, None)
                        .map_err(|e| PyValueError::new_err(e.to_string()))?,
                ),
                DataType::LargeUtf8,
            )
        } else {
            (
                Arc::new(
                    LargeBinaryArray::try_new(offsets, values, None)
                        .map_err(|e| PyValueError::new_err(e.to_string()))?,
                ),
                DataType::LargeBinary,
            )
        };
        let field = Arc::new(Field::new(&self.field, dt, false));
        let out =
            PyArray::try_new(array, field).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(out.into_pyobject(py)?.into_any().unbind())
    }
}

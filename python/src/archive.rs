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

/// Writes an archive to `path` (through a temporary file renamed on `close`).
#[pyclass(module = "sigmalang._sigmalang")]
pub struct RawArchiveWriter {
    inner: Mutex<Option<ArchiveWriter<BufWriter<File>>>>,
    path: PathBuf,
    temp: PathBuf,
}

#[pymethods]
impl RawArchiveWriter {
    /// `primer`: the primer's size in KiB (`sigma pack --primer KIB`; 0: `--no-primer`);
    /// `block`: the page size in bytes (`--block SIZE`; 0: every record alone), or `None` for
    /// `--block auto`.
    #[new]
    #[pyo3(signature = (path, codebook = None, field = "text", threads = 1, key = None, primer = 0, block = Some(0)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: PathBuf,
        codebook: Option<PyRef<'_, PyCodebook>>,
        field: &str,
        threads: usize,
        key: Option<&str>,
        primer: usize,
        block: Option<u64>,
    ) -> PyResult<RawArchiveWriter> {
        if primer > 16384 {
            return Err(PyValueError::new_err("the primer holds at most 16384 KiB"));
        }
        if block.unwrap_or(0) > sigmalang::archive::MAX_PAGE_BYTES {
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
        let cb = PyCodebook::or_default(codebook.as_deref());
        let temp = temp_path(&path);
        let file = BufWriter::new(File::create(&temp)?);
        let opts = ArchiveOptions::default()
            .batch_records(BATCH_RECORDS)
            .batch_bytes(BATCH_BYTES)
            .threads(threads)
            .primer(primer * 1024)
            .page_bytes(block.unwrap_or(0))
            .auto_pages(if block.is_none() {
                sigmalang::archive::AUTO_PAGE_BYTES
            } else {
                0
            });
        let w = ArchiveWriter::with_options(file, cb, metadata(field, key).as_bytes(), opts);
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e).py_err();
            }
        };
        Ok(RawArchiveWriter {
            inner: Mutex::new(Some(w)),
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
        let w = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("add to a closed archive"))?;
        let r = record.slices()[0].unwrap_or_default().to_vec();
        let k = key.as_ref().and_then(|k| k.slices()[0].map(<[u8]>::to_vec));
        py.detach(|| w.add_in_group(k.as_deref(), &r)).py_err()
    }

    /// Adds many records (a list or an Arrow array), each in the context of the matching
    /// key of `keys` (a null key: no context key); returns the number added.
    #[pyo3(signature = (records, keys = None))]
    fn add_many(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let records = Records::extract(records)?;
        let keys = keys.map(Records::extract).transpose()?;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let w = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("add to a closed archive"))?;
        let recs = records.slices();
        let keys = keys.as_ref().map(Records::slices);
        if let Some(k) = &keys {
            if k.len() != recs.len() {
                return Err(PyValueError::new_err(format!(
                    "{} records but {} keys",
                    recs.len(),
                    k.len()
                )));
            }
        }
        py.detach(|| -> Result<(), Error> {
            for (i, r) in recs.iter().enumerate() {
                let key = keys.as_ref().and_then(|k| k[i]);
                w.add_in_group(key, r.unwrap_or_default())?;
            }
            Ok(())
        })
        .py_err()?;
        Ok(recs.len())
    }

    /// Number of records added so far.
    fn __len__(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |w| w.len() as usize)
    }

    /// Writes the rest of the archive and puts it in place.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let w = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            let done = py.detach(|| -> Result<(), Error> {
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

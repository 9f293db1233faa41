//! Streams: `compress`/`decompress` of whole buffers and the reader and writer behind
//! `sigmalang.open`, over a file path or a Python file object.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use sigmalang::{Codebook, Error, ErrorKind, StreamOptions, StreamReader, StreamWriter};

use crate::codebook::PyCodebook;
use crate::errors::IntoPy;

/// The chunk size of streams: the library's default (`sigmalang::compress` and `sigma` use
/// it), so that a stream made here is byte-identical to theirs.
pub const CHUNK_SIZE: usize = sigmalang::stream::DEFAULT_CHUNK_SIZE;

/// Bytes read per step when decompressing under a size limit.
const READ_STEP: usize = 256 << 10;

/// Compresses `data` into a stream made with `codebook` on `threads` workers.
fn compress_vec(data: &[u8], codebook: Arc<Codebook>, threads: usize) -> Result<Vec<u8>, Error> {
    let out = Vec::with_capacity(data.len() / 3 + 64);
    let options = StreamOptions::default()
        .chunk_size(CHUNK_SIZE)
        .threads(threads);
    let mut w = StreamWriter::with_options(out, codebook, options)?;
    w.write_all(data)?;
    w.finish()
}

/// Decompresses a whole stream, refusing to produce more than `limit` bytes.
fn decompress_vec(
    data: &[u8],
    codebook: Arc<Codebook>,
    threads: usize,
    limit: Option<u64>,
) -> Result<Vec<u8>, Error> {
    let options = StreamOptions::default().threads(threads);
    let mut r = StreamReader::with_options(data, codebook, options)?;
    let Some(limit) = limit else {
        let mut out = Vec::new();
        r.read_all_into(&mut out)?;
        return Ok(out);
    };
    let mut out = Vec::new();
    loop {
        let start = out.len();
        out.resize(start + READ_STEP, 0);
        let n = r.read(&mut out[start..])?;
        out.truncate(start + n);
        if out.len() as u64 > limit {
            return Err(Error::new(ErrorKind::InvalidArgument {
                what: format!("the stream decodes to more than max_output_size ({limit} bytes)"),
            }));
        }
        if n == 0 {
            return Ok(out);
        }
    }
}

/// `sigmalang.compress(data, codebook=None, threads=1)`.
#[pyfunction]
#[pyo3(signature = (data, codebook = None, threads = 1))]
pub fn compress<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    codebook: Option<PyRef<'py, PyCodebook>>,
    threads: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let cb = PyCodebook::or_default(codebook.as_deref());
    let out = py.detach(|| compress_vec(&data, cb, threads)).py_err()?;
    Ok(PyBytes::new(py, &out))
}

/// `sigmalang.decompress(data, codebook=None, max_output_size=None, threads=1)`.
#[pyfunction]
#[pyo3(signature = (data, codebook = None, max_output_size = None, threads = 1))]
pub fn decompress<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    codebook: Option<PyRef<'py, PyCodebook>>,
    max_output_size: Option<u64>,
    threads: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let cb = PyCodebook::or_default(codebook.as_deref());
    let out = py
        .detach(|| decompress_vec(&data, cb, threads, max_output_size))
        .py_err()?;
    Ok(PyBytes::new(py, &out))
}

/// Where a stream is written: a file of ours or a Python file object.
enum Sink {
    File(BufWriter<File>),
    Python(Py<PyAny>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Python(obj) => Python::attach(|py| {
                obj.bind(py)
                    .call_method1("write", (PyBytes::new(py, buf),))
                    .map_err(io::Error::other)?;
                Ok(buf.len())
            }),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Python(obj) => Python::attach(|py| {
                obj.bind(py)
                    .call_method0("flush")
                    .map(drop)
                    .map_err(io::Error::other)
            }),
        }
    }
}

/// Where a stream is read from: a file of ours or a Python file object.
enum Source {
    File(BufReader<File>),
    Python(Py<PyAny>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::File(f) => f.read(buf),
            Source::Python(obj) => Python::attach(|py| {
                let got = obj
                    .bind(py)
                    .call_method1("read", (buf.len(),))
                    .map_err(io::Error::other)?;
                let got: PyBackedBytes = got
                    .extract()
                    .map_err(|e| io::Error::other(PyErr::from(e)))?;
                let n = got.len().min(buf.len());
                buf[..n].copy_from_slice(&got[..n]);
                Ok(n)
            }),
        }
    }
}

/// A path (str or os.PathLike) or, failing that, a file object.
fn path_of(target: &Bound<'_, PyAny>) -> Option<PathBuf> {
    target.extract::<PathBuf>().ok()
}

/// The writer behind `sigmalang.open(..., "wb")`: compresses what is written.
#[pyclass(module = "sigmalang._sigmalang")]
pub struct RawStreamWriter {
    inner: Mutex<Option<StreamWriter<Sink>>>,
}

#[pymethods]
impl RawStreamWriter {
    #[new]
    #[pyo3(signature = (target, codebook = None, threads = 1))]
    fn new(
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        codebook: Option<PyRef<'_, PyCodebook>>,
        threads: usize,
    ) -> PyResult<RawStreamWriter> {
        let cb = PyCodebook::or_default(codebook.as_deref());
        let sink = match path_of(target) {
            Some(p) => Sink::File(BufWriter::new(File::create(p)?)),
            None => Sink::Python(target.clone().unbind()),
        };
        let w = py
            .detach(|| {
                let options = StreamOptions::default()
                    .chunk_size(CHUNK_SIZE)
                    .threads(threads);
                StreamWriter::with_options(sink, cb, options)
            })
            .py_err()?;
        Ok(RawStreamWriter {
            inner: Mutex::new(Some(w)),
        })
    }

    /// Compresses `data`; returns its length.
    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let w = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("write to a closed file"))?;
        py.detach(|| w.write_all(&data))
            .map_err(Error::from)
            .py_err()?;
        Ok(data.len())
    }

    /// Codes what is buffered, writes the stream's end and closes the file.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let w = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            py.detach(|| -> Result<(), Error> {
                let mut sink = w.finish()?;
                sink.flush()?;
                Ok(())
            })
            .py_err()?;
        }
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

/// The reader behind `sigmalang.open(..., "rb")`: decompresses as it is read.
#[pyclass(module = "sigmalang._sigmalang")]
pub struct RawStreamReader {
    inner: Mutex<Option<StreamReader<Source>>>,
}

#[pymethods]
impl RawStreamReader {
    #[new]
    #[pyo3(signature = (source, codebook = None, threads = 1))]
    fn new(
        source: &Bound<'_, PyAny>,
        codebook: Option<PyRef<'_, PyCodebook>>,
        threads: usize,
    ) -> PyResult<RawStreamReader> {
        let cb = PyCodebook::or_default(codebook.as_deref());
        let src = match path_of(source) {
            Some(p) => Source::File(BufReader::new(File::open(p)?)),
            None => Source::Python(source.clone().unbind()),
        };
        let options = StreamOptions::default().threads(threads);
        let r = StreamReader::with_options(src, cb, options).py_err()?;
        Ok(RawStreamReader {
            inner: Mutex::new(Some(r)),
        })
    }

    /// Up to `size` decompressed bytes (all that is left if `size` < 0); empty at the end.
    #[pyo3(signature = (size = -1))]
    fn read<'py>(&self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("read from a closed file"))?;
        let out = py
            .detach(|| -> Result<Vec<u8>, Error> {
                let mut out = Vec::new();
                if size < 0 {
                    r.read_all_into(&mut out)?;
                    return Ok(out);
                }
                // Grown as bytes come, so that a large `size` reserves nothing up front.
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                let mut buf = vec![0u8; size.min(READ_STEP)];
                while out.len() < size {
                    let want = (size - out.len()).min(buf.len());
                    let n = r.read(&mut buf[..want])?;
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                Ok(out)
            })
            .py_err()?;
        Ok(PyBytes::new(py, &out))
    }

    fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

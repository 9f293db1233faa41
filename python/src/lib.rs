//! The native part of the `sigmalang` Python package (`sigmalang._sigmalang`). The public API,
//! its documentation and the conversions to pyarrow, polars and arro3 types live in the pure
//! Python part (`python/sigmalang/__init__.py`).

use pyo3::prelude::*;

mod archive;
mod batch;
mod codebook;
mod errors;
mod records;
mod stream;

use batch::Job;
use codebook::PyCodebook;

/// `compress_batch(data, codebook=None, threads=0)`: the payload of every record.
#[pyfunction]
#[pyo3(signature = (data, codebook = None, threads = 0))]
fn compress_batch(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    codebook: Option<PyRef<'_, PyCodebook>>,
    threads: usize,
) -> PyResult<Py<PyAny>> {
    batch::run_batch(py, Job::Compress, data, codebook.as_deref(), threads, false)
}

/// `decompress_batch(data, codebook=None, threads=0, as_str=False)`: every record back.
#[pyfunction]
#[pyo3(signature = (data, codebook = None, threads = 0, as_str = false))]
fn decompress_batch(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    codebook: Option<PyRef<'_, PyCodebook>>,
    threads: usize,
    as_str: bool,
) -> PyResult<Py<PyAny>> {
    batch::run_batch(
        py,
        Job::Decompress,
        data,
        codebook.as_deref(),
        threads,
        as_str,
    )
}

/// `check_codebook(stream_id, codebook)`: raises `CodebookMismatchError` (the library's message)
/// unless `codebook` (default: the built-in one) has the id `stream_id` (16 hex digits).
#[pyfunction]
#[pyo3(signature = (stream_id, codebook = None))]
fn check_codebook(stream_id: &str, codebook: Option<PyRef<'_, PyCodebook>>) -> PyResult<()> {
    let cb = PyCodebook::or_default(codebook.as_deref());
    let id = u64::from_str_radix(stream_id, 16).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("bad codebook id {stream_id:?}"))
    })?;
    if id != cb.id().0 {
        return Err(errors::to_py(sigmalang::Error::new(
            sigmalang::ErrorKind::CodebookMismatch {
                stream: sigmalang::CodebookId(id),
                given: cb.id(),
            },
        )));
    }
    Ok(())
}

#[pymodule]
fn _sigmalang(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<PyCodebook>()?;
    m.add_class::<stream::RawStreamReader>()?;
    m.add_class::<stream::RawStreamWriter>()?;
    m.add_class::<archive::RawArchiveReader>()?;
    m.add_class::<archive::RawArchiveWriter>()?;
    m.add_function(wrap_pyfunction!(stream::compress, m)?)?;
    m.add_function(wrap_pyfunction!(stream::decompress, m)?)?;
    m.add_function(wrap_pyfunction!(compress_batch, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_batch, m)?)?;
    m.add_function(wrap_pyfunction!(check_codebook, m)?)?;
    m.add("CODEBOOK_METADATA_KEY", batch::CODEBOOK_KEY)?;
    Ok(())
}

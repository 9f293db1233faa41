//! `sigmalang.Codebook`: a shared, immutable codebook.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use sigmalang::{Codebook, CompressionLevel, Error, ErrorKind, TrainOptions};

use crate::errors::IntoPy;
use crate::records::Records;

/// A codebook: the model every record is coded with. Immutable; share one between threads,
/// processes (it pickles) and machines.
#[pyclass(name = "Codebook", module = "sigmalang._sigmalang", frozen)]
pub struct PyCodebook {
    pub inner: Arc<Codebook>,
}

impl PyCodebook {
    /// The codebook `arg` names, or the built-in one.
    pub fn or_default(arg: Option<&PyCodebook>) -> Arc<Codebook> {
        match arg {
            Some(c) => Arc::clone(&c.inner),
            None => Codebook::default_codebook(),
        }
    }
}

#[pymethods]
impl PyCodebook {
    /// The codebook built into the library.
    #[staticmethod]
    fn default() -> PyCodebook {
        PyCodebook {
            inner: Codebook::default_codebook(),
        }
    }

    /// Trains a codebook on `texts` (str or bytes records, as a list or an Arrow array) at
    /// `level` ("fast", "default" or "max").
    #[staticmethod]
    #[pyo3(signature = (texts, level = "default"))]
    fn train(py: Python<'_>, texts: &Bound<'_, PyAny>, level: &str) -> PyResult<PyCodebook> {
        let level: CompressionLevel = level.parse().py_err()?;
        let records = Records::extract(texts)?;
        let codebook = py
            .detach(|| {
                let slices = records.slices();
                let present: Vec<&[u8]> = slices.iter().flatten().copied().collect();
                if present.is_empty() {
                    return Err(Error::new(ErrorKind::InvalidArgument {
                        what: "no records to train on".into(),
                    }));
                }
                Codebook::train(&present, &TrainOptions::for_level(level), &mut |_, _| {})
            })
            .py_err()?;
        Ok(PyCodebook { inner: codebook })
    }

    /// Loads a codebook file's bytes (as `to_bytes()` makes them).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyCodebook> {
        let cb = py.detach(|| Codebook::from_bytes(data)).py_err()?;
        Ok(PyCodebook { inner: cb })
    }

    /// The codebook file (the format of `sigma train -o`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// The codebook's id: 16 hex digits, as streams, archives and the CLI name it.
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// The size of the codebook file, in bytes.
    fn __len__(&self) -> usize {
        self.inner.serialized_len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyCodebook>()
            .is_ok_and(|o| o.get().inner.id() == self.inner.id())
    }

    fn __hash__(&self) -> u64 {
        self.inner.id().0
    }

    fn __repr__(&self) -> String {
        format!(
            "Codebook(id={}, {} bytes)",
            self.inner.id(),
            self.inner.serialized_len()
        )
    }

    /// Pickles as the built-in codebook's name or as the codebook file.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let cls = py.get_type::<PyCodebook>();
        let this = slf.get();
        if this.inner.id() == Codebook::default_codebook().id() {
            let ctor = cls.getattr("default")?;
            return PyTuple::new(py, [ctor.into_any(), PyTuple::empty(py).into_any()]);
        }
        let ctor = cls.getattr("from_bytes")?;
        let args = PyTuple::new(py, [this.to_bytes(py)])?;
        PyTuple::new(py, [ctor.into_any(), args.into_any()])
    }
}

//! Records from Python: a list of `str`/`bytes`/`None`, or any Arrow array or chunked array of
//! strings or binaries (through the Arrow PyCapsule interface, without copies).

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, FieldRef};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyList, PyTuple};
use pyo3_arrow::input::AnyArray;

/// One record of a Python list.
pub enum Item {
    Str(PyBackedStr),
    Bytes(PyBackedBytes),
}

impl Item {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Item::Str(s) => s.as_bytes(),
            Item::Bytes(b) => b,
        }
    }
}

/// Records as Python handed them over.
pub enum Records {
    /// A list or tuple; `None` entries are null records.
    List(Vec<Option<Item>>),
    /// Arrow arrays (one per chunk) and their field; `stream` if they came as a chunked array
    /// or stream (`__arrow_c_stream__`), not as one array.
    Arrow {
        chunks: Vec<ArrayRef>,
        field: FieldRef,
        stream: bool,
    },
}

/// Whether an Arrow type holds records this module reads.
pub fn is_record_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

impl Records {
    /// Reads records from a list or tuple of str/bytes/None, or from an Arrow object.
    pub fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Records> {
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            let mut items = Vec::with_capacity(obj.len()?);
            for (i, x) in obj.try_iter()?.enumerate() {
                let x = x?;
                items.push(if x.is_none() {
                    None
                } else if let Ok(s) = x.extract::<PyBackedStr>() {
                    Some(Item::Str(s))
                } else if let Ok(b) = x.extract::<PyBackedBytes>() {
                    Some(Item::Bytes(b))
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "record {i} is a {}, not str or bytes",
                        x.get_type().name()?
                    )));
                });
            }
            return Ok(Records::List(items));
        }
        let any: AnyArray = obj.extract().map_err(|_| {
            PyTypeError::new_err(
                "expected a list of str/bytes or an Arrow array (an object with \
                 __arrow_c_array__ or __arrow_c_stream__) of strings or binaries",
            )
        })?;
        let stream = matches!(any, AnyArray::Stream(_));
        let chunked = any.into_chunked_array()?;
        let (chunks, field) = chunked.into_inner();
        if !is_record_type(field.data_type()) {
            return Err(PyTypeError::new_err(format!(
                "expected an Arrow array of string, large_string, binary, large_binary or \
                 their views; got {}",
                field.data_type()
            )));
        }
        Ok(Records::Arrow {
            chunks,
            field,
            stream,
        })
    }

    /// Every record, chunk after chunk (`None` for nulls).
    pub fn slices(&self) -> Vec<Option<&[u8]>> {
        match self {
            Records::List(items) => items
                .iter()
                .map(|x| x.as_ref().map(Item::as_bytes))
                .collect(),
            Records::Arrow { chunks, .. } => {
                let mut out = Vec::new();
                for c in chunks {
                    out.extend(array_slices(c.as_ref()));
                }
                out
            }
        }
    }
}

/// The records of one Arrow array of a record type (checked by [`Records::extract`]).
pub fn array_slices(a: &dyn Array) -> Vec<Option<&[u8]>> {
    match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|x| x.map(str::as_bytes))
            .collect(),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .map(|x| x.map(str::as_bytes))
            .collect(),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .map(|x| x.map(str::as_bytes))
            .collect(),
        DataType::Binary => a.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => a.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => a.as_binary_view().iter().collect(),
        _ => Vec::new(),
    }
}

/// A ValueError for records that are not valid UTF-8 when text was asked for.
pub fn not_utf8(index: usize, e: std::str::Utf8Error) -> PyErr {
    PyValueError::new_err(format!("record {index} is not valid UTF-8: {e}"))
}

//! The Parquet anchors of `sigma-bench anchors` (arrow-rs's `parquet` crate, without Arrow):
//! where LLM logs and datasets live today. A record there is read by decompressing its page.
//!
//! Two shapes, each with BROTLI(11) and ZSTD(19) for every column:
//!
//! * the text column alone: one required UTF-8 `BYTE_ARRAY` column `text`;
//! * all columns: every top-level field of the JSONL lines a column ([`shred`]), typed by its
//!   values: `INT64` if every value is an integer that fits, `DOUBLE` if every value is a number,
//!   `BOOLEAN`, UTF-8 `BYTE_ARRAY` for strings, and anything else (objects, arrays, mixed types)
//!   as its JSON text (`BYTE_ARRAY` with the JSON logical type). A column is `OPTIONAL` when a line
//!   lacks the field or has `null` there (these two are not told apart, as in pyarrow).
//!
//! Writer settings, the same for every file: no dictionary encoding, the default data page size
//! limit (1 MiB; values are handed to the writer at most 32 KiB at a time, and the limit is
//! checked after each hand-over), one row group (all files here have fewer than the default
//! 1,048,576 rows), default statistics. Every file is read back and compared column by column.

use parquet::basic::{
    BrotliLevel, Compression, LogicalType, Repetition, Type as Physical, ZstdLevel,
};
use parquet::column::reader::ColumnReader;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most value bytes handed to a column writer at once, so the page size limit is checked
/// often enough to hold.
const HAND_OVER_BYTES: usize = 32 << 10;
/// The most values handed to a column writer at once (its default write batch size).
const HAND_OVER_VALUES: usize = 1024;

/// The codec of every column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// BROTLI at quality 11 (parquet-rs's brotli window: 2^22).
    Brotli11,
    /// ZSTD at level 19.
    Zstd19,
}

impl Codec {
    fn compression(self) -> Compression {
        match self {
            Codec::Brotli11 => Compression::BROTLI(BrotliLevel::try_new(11).expect("valid")),
            Codec::Zstd19 => Compression::ZSTD(ZstdLevel::try_new(19).expect("valid")),
        }
    }
}

/// The values of one column, `None` for a null.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `INT64`.
    Int(Vec<Option<i64>>),
    /// `DOUBLE` (compared by bits).
    Double(Vec<Option<u64>>),
    /// `BOOLEAN`.
    Bool(Vec<Option<bool>>),
    /// UTF-8 text.
    Text(Vec<Option<Vec<u8>>>),
    /// JSON text of objects, arrays or mixed values.
    Json(Vec<Option<Vec<u8>>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Text(v) | Values::Json(v) => v.len(),
        }
    }

    fn has_null(&self) -> bool {
        match self {
            Values::Int(v) => v.iter().any(Option::is_none),
            Values::Double(v) => v.iter().any(Option::is_none),
            Values::Bool(v) => v.iter().any(Option::is_none),
            Values::Text(v) | Values::Json(v) => v.iter().any(Option::is_none),
        }
    }

    /// An empty column of the same type, for reading into.
    fn empty_like(&self) -> Values {
        match self {
            Values::Int(_) => Values::Int(Vec::new()),
            Values::Double(_) => Values::Double(Vec::new()),
            Values::Bool(_) => Values::Bool(Vec::new()),
            Values::Text(_) => Values::Text(Vec::new()),
            Values::Json(_) => Values::Json(Vec::new()),
        }
    }
}

/// A table: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The columns, in schema order.
    pub columns: Vec<(String, Values)>,
}

impl Table {
    /// The text column alone.
    pub fn text(texts: &[&[u8]]) -> Table {
        Table {
            columns: vec![(
                "text".to_owned(),
                Values::Text(texts.iter().map(|t| Some(t.to_vec())).collect()),
            )],
        }
    }

    fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }
}

/// The kind of a column found while shredding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Int,
    Double,
    Bool,
    Text,
    Json,
}

fn kind_of(value: &serde_json::Value) -> Kind {
    use serde_json::Value as V;
    match value {
        V::Null => Kind::Unknown,
        V::Bool(_) => Kind::Bool,
        V::Number(n) if n.as_i64().is_some() => Kind::Int,
        V::Number(_) => Kind::Double,
        V::String(_) => Kind::Text,
        V::Array(_) | V::Object(_) => Kind::Json,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Unknown, k) | (k, Kind::Unknown) => k,
        (a, b) if a == b => a,
        (Kind::Int, Kind::Double) | (Kind::Double, Kind::Int) => Kind::Double,
        _ => Kind::Json,
    }
}

/// Every top-level field of the JSONL `lines` as a column (see the module docs), columns in
/// the order of the fields' names. Fails on a line that is not a JSON object, naming it.
pub fn shred(lines: &[&[u8]]) -> Result<Table, String> {
    let mut objects = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => objects.push(map),
            Ok(_) => return Err(format!("line {}: not a JSON object", n + 1)),
            Err(e) => return Err(format!("line {}: {e}", n + 1)),
        }
    }
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for object in &objects {
        for (key, value) in object {
            let kind = kinds.entry(key).or_insert(Kind::Unknown);
            *kind = merge(*kind, kind_of(value));
        }
    }
    let mut columns = Vec::new();
    for (&name, &kind) in &kinds {
        let cells = objects.iter().map(|o| o.get(name).filter(|v| !v.is_null()));
        let values = match kind {
            Kind::Int => Values::Int(cells.map(|v| v.and_then(|v| v.as_i64())).collect()),
            Kind::Double => Values::Double(
                cells
                    .map(|v| v.and_then(|v| v.as_f64()).map(f64::to_bits))
                    .collect(),
            ),
            Kind::Bool => Values::Bool(cells.map(|v| v.and_then(|v| v.as_bool())).collect()),
            Kind::Text => Values::Text(
                cells
                    .map(|v| v.and_then(|v| v.as_str()).map(|s| s.as_bytes().to_vec()))
                    .collect(),
            ),
            // A column of nulls only is stored as (null) JSON text.
            Kind::Json | Kind::Unknown => Values::Json(
                cells
                    .map(|v| v.map(|v| v.to_string().into_bytes()))
                    .collect(),
            ),
        };
        columns.push((name.to_owned(), values));
    }
    Ok(Table { columns })
}

fn schema(table: &Table) -> parquet::errors::Result<Type> {
    let mut fields = Vec::new();
    for (name, values) in &table.columns {
        let (physical, logical) = match values {
            Values::Int(_) => (Physical::INT64, None),
            Values::Double(_) => (Physical::DOUBLE, None),
            Values::Bool(_) => (Physical::BOOLEAN, None),
            Values::Text(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            Values::Json(_) => (Physical::BYTE_ARRAY, Some(LogicalType::Json)),
        };
        let repetition = if values.has_null() {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        let field = Type::primitive_type_builder(name, physical)
            .with_repetition(repetition)
            .with_logical_type(logical)
            .build()?;
        fields.push(Arc::new(field));
    }
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

/// The runs of values handed to the writer at once: `0..rows` cut after [`HAND_OVER_VALUES`]
/// values or [`HAND_OVER_BYTES`] bytes (`size(i)`: value `i`'s bytes).
fn runs(rows: usize, size: impl Fn(usize) -> usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for i in 0..rows {
        bytes += size(i);
        if i + 1 - start == HAND_OVER_VALUES || bytes >= HAND_OVER_BYTES {
            out.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < rows {
        out.push(start..rows);
    }
    out
}

/// Writes one column's `cells` with writer `w`, in runs.
fn write_cells<T: parquet::data_type::DataType, C>(
    w: &mut parquet::column::writer::ColumnWriterImpl<'_, T>,
    cells: &[Option<C>],
    optional: bool,
    size: impl Fn(&C) -> usize,
    convert: impl Fn(&C) -> T::T,
) -> parquet::errors::Result<()> {
    let runs = runs(cells.len(), |i| cells[i].as_ref().map_or(0, &size));
    for run in runs {
        let cells = &cells[run];
        let values: Vec<T::T> = cells.iter().flatten().map(&convert).collect();
        let levels: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
        w.write_batch(&values, optional.then_some(&levels[..]), None)?;
    }
    Ok(())
}

/// `table` as a Parquet file with every column compressed by `codec`.
pub fn write(table: &Table, codec: Codec) -> parquet::errors::Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(codec.compression())
        .set_dictionary_enabled(false)
        .build();
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, Arc::new(schema(table)?), Arc::new(props))?;
    let mut group = writer.next_row_group()?;
    for (_, values) in &table.columns {
        let mut column = group.next_column()?.expect("one writer per schema column");
        let optional = values.has_null();
        match values {
            Values::Int(v) => write_cells(column.typed::<Int64Type>(), v, optional, |_| 8, |&x| x)?,
            Values::Double(v) => write_cells(
                column.typed::<DoubleType>(),
                v,
                optional,
                |_| 8,
                |&x| f64::from_bits(x),
            )?,
            Values::Bool(v) => write_cells(column.typed::<BoolType>(), v, optional, |_| 1, |&x| x)?,
            Values::Text(v) | Values::Json(v) => write_cells(
                column.typed::<ByteArrayType>(),
                v,
                optional,
                Vec::len,
                |x| ByteArray::from(x.clone()),
            )?,
        }
        column.close()?;
    }
    group.close()?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Reads `count` values (and their definition levels) of a column with `read`, whose
/// `read_records` fills the value buffer and the levels; returns the cells.
fn read_cells<T: parquet::data_type::DataType, C>(
    mut reader: parquet::column::reader::ColumnReaderImpl<T>,
    optional: bool,
    convert: impl Fn(&T::T) -> C,
) -> parquet::errors::Result<Vec<Option<C>>>
where
    T::T: Clone,
{
    let mut values: Vec<T::T> = Vec::new();
    let mut levels: Vec<i16> = Vec::new();
    loop {
        let (records, _, _) = reader.read_records(
            usize::MAX,
            optional.then_some(&mut levels),
            None,
            &mut values,
        )?;
        if records == 0 {
            break;
        }
    }
    if !optional {
        return Ok(values.iter().map(|v| Some(convert(v))).collect());
    }
    let mut values = values.iter();
    levels
        .iter()
        .map(|&l| {
            if l == 0 {
                Ok(None)
            } else {
                let v = values.next().ok_or_else(|| {
                    parquet::errors::ParquetError::General("fewer values than levels".into())
                })?;
                Ok(Some(convert(v)))
            }
        })
        .collect()
}

/// Reads every column of the Parquet file `bytes`, typed like `like` (the table written).
pub fn read(bytes: Vec<u8>, like: &Table) -> parquet::errors::Result<Table> {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes))?;
    let mut columns: Vec<(String, Values)> = like
        .columns
        .iter()
        .map(|(n, v)| (n.clone(), v.empty_like()))
        .collect();
    for g in 0..reader.metadata().num_row_groups() {
        let group = reader.get_row_group(g)?;
        for (c, (_, values)) in columns.iter_mut().enumerate() {
            let optional = like.columns[c].1.has_null();
            match (group.get_column_reader(c)?, values) {
                (ColumnReader::Int64ColumnReader(r), Values::Int(out)) => {
                    out.extend(read_cells(r, optional, |&x| x)?)
                }
                (ColumnReader::DoubleColumnReader(r), Values::Double(out)) => {
                    out.extend(read_cells(r, optional, |x: &f64| x.to_bits())?)
                }
                (ColumnReader::BoolColumnReader(r), Values::Bool(out)) => {
                    out.extend(read_cells(r, optional, |&x| x)?)
                }
                (ColumnReader::ByteArrayColumnReader(r), Values::Text(out) | Values::Json(out)) => {
                    out.extend(read_cells(r, optional, |x: &ByteArray| x.data().to_vec())?)
                }
                _ => {
                    return Err(parquet::errors::ParquetError::General(format!(
                        "column {c} has another type than written"
                    )))
                }
            }
        }
    }
    Ok(Table { columns })
}

/// Rows of `table`, for messages.
pub fn rows(table: &Table) -> usize {
    table.rows()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest data page of the file `bytes`, as the page reader returns it (decompressed).
    pub fn largest_page(bytes: &[u8]) -> parquet::errors::Result<usize> {
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.to_vec()))?;
        let mut largest = 0;
        for g in 0..reader.metadata().num_row_groups() {
            let group = reader.get_row_group(g)?;
            for c in 0..group.num_columns() {
                let mut pages = group.get_column_page_reader(c)?;
                while let Some(page) = pages.get_next_page()? {
                    largest = largest.max(page.buffer().len());
                }
            }
        }
        Ok(largest)
    }

    #[test]
    fn shreds_every_field_with_its_type() {
        let lines: Vec<&[u8]> = vec![
            br#"{"id": 1, "text": "a", "score": 0.5, "ok": true, "meta": {"k": [1]}}"#,
            br#"{"id": 2, "text": "b", "score": 2, "mixed": "x"}"#,
            br#"{"id": 3, "text": "c", "score": null, "mixed": 5}"#,
        ];
        let table = shred(&lines).unwrap();
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "meta", "mixed", "ok", "score", "text"]);
        assert_eq!(
            table.columns[0].1,
            Values::Int(vec![Some(1), Some(2), Some(3)])
        );
        assert_eq!(
            table.columns[2].1,
            Values::Json(vec![None, Some(b"\"x\"".to_vec()), Some(b"5".to_vec())])
        );
        assert_eq!(
            table.columns[4].1,
            Values::Double(vec![Some(0.5f64.to_bits()), Some(2f64.to_bits()), None])
        );
        assert!(shred(&[b"[1]"]).unwrap_err().contains("line 1"));
    }

    #[test]
    fn parquet_round_trips() {
        let texts: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("record {i}: {}", "lorem ipsum ".repeat(i % 50)).into_bytes())
            .collect();
        let lines: Vec<Vec<u8>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let extra = if i % 3 == 0 {
                    ", \"n\": null"
                } else {
                    ", \"n\": 1.5"
                };
                format!(
                    "{{\"id\": {i}, \"text\": {}{extra}}}",
                    serde_json::to_string(std::str::from_utf8(t).unwrap()).unwrap()
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| &l[..]).collect();
        let texts: Vec<&[u8]> = texts.iter().map(|t| &t[..]).collect();
        for table in [Table::text(&texts), shred(&refs).unwrap()] {
            for codec in [Codec::Brotli11, Codec::Zstd19] {
                let bytes = write(&table, codec).unwrap();
                let text_bytes: usize = texts.iter().map(|t| t.len()).sum();
                assert!(bytes.len() < text_bytes / 4, "{codec:?}: {}", bytes.len());
                assert_eq!(read(bytes, &table).unwrap(), table);
            }
        }
        assert_eq!(rows(&Table::text(&texts)), 3000);
    }

    #[test]
    fn pages_stay_near_the_default_limit() {
        // Incompressible-ish values, so compressed pages are about as large as raw ones.
        let mut x = 1u64;
        let texts: Vec<Vec<u8>> = (0..600)
            .map(|_| {
                (0..4000)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        b'a' + (x >> 60) as u8
                    })
                    .collect()
            })
            .collect();
        let texts: Vec<&[u8]> = texts.iter().map(|t| &t[..]).collect();
        let bytes = write(&Table::text(&texts), Codec::Zstd19).unwrap();
        let largest = largest_page(&bytes).unwrap();
        assert!(largest <= (1 << 20) + HAND_OVER_BYTES + 4004, "{largest}");
    }
}

//! Parquet inputs: their columns are already typed, so the scan checks that the pipeline can
//! publish every one of them exactly (names unique, a type with an exact Parquet equivalent
//! and a Delta type) and decodes every row once. A dictionary-encoded column is read as its
//! values: the encoding is not a type, and a Delta table has no dictionary type.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use super::{InputError, Location, Scanned, open_file, quoted};

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, InputError> {
    let unreadable = |e: parquet::errors::ParquetError| {
        InputError::new(path, None, format!("not a readable Parquet file: {e}"))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(open_file(path)?).map_err(unreadable)?;
    let plain = without_dictionaries(builder.schema());
    if &plain == builder.schema() {
        return Ok(builder);
    }
    let options = ArrowReaderOptions::new().with_schema(plain);
    ParquetRecordBatchReaderBuilder::try_new_with_options(open_file(path)?, options)
        .map_err(unreadable)
}

/// `schema` with every dictionary-encoded column (at any depth of structs and lists) as its
/// values' type.
fn without_dictionaries(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema.fields().iter().map(|f| plain_field(f)).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn plain_field(field: &Field) -> Field {
    field.clone().with_data_type(plain_type(field.data_type()))
}

fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| plain_field(f)).collect())
        }
        DataType::List(item) => DataType::List(Arc::new(plain_field(item))),
        DataType::LargeList(item) => DataType::LargeList(Arc::new(plain_field(item))),
        other => other.clone(),
    }
}

/// Why the pipeline cannot publish `data_type` exactly, if it cannot. The table files are
/// Parquet written by arrow's writer; these types would come back as other types or as bare
/// integers to other readers.
fn unpublishable(data_type: &DataType) -> Option<String> {
    use DataType as D;
    match data_type {
        D::Null
        | D::Boolean
        | D::Int8
        | D::Int16
        | D::Int32
        | D::Int64
        | D::UInt8
        | D::UInt16
        | D::UInt32
        | D::UInt64
        | D::Float16
        | D::Float32
        | D::Float64
        | D::Utf8
        | D::LargeUtf8
        | D::Utf8View
        | D::Binary
        | D::LargeBinary
        | D::BinaryView
        | D::FixedSizeBinary(_)
        | D::Date32
        | D::Decimal128(..)
        | D::Decimal256(..)
        | D::Time32(TimeUnit::Millisecond)
        | D::Time64(_) => None,
        D::Timestamp(TimeUnit::Second, _) => Some(
            "a timestamp in seconds: Parquet has no seconds unit, so it would be published as a bare integer; convert it to milliseconds".into(),
        ),
        D::Timestamp(..) => None,
        D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) | D::Map(f, _) => {
            unpublishable(f.data_type())
        }
        D::Dictionary(_, values) => unpublishable(values),
        D::Struct(fields) => unpublishable_fields(fields).map(|(name, why)| format!("field {}: {why}", quoted(&name))),
        other => Some(format!("type {other} has no exact Parquet equivalent in tally's table files")),
    }
}

/// The first field of `fields` that cannot be published, by name, and why.
fn unpublishable_fields(fields: &Fields) -> Option<(String, String)> {
    if fields.is_empty() {
        return Some((
            String::new(),
            "a struct with no fields cannot be stored".into(),
        ));
    }
    for (index, field) in fields.iter().enumerate() {
        if fields.iter().take(index).any(|f| f.name() == field.name()) {
            return Some((field.name().clone(), "the name appears twice".into()));
        }
        if let Some(why) = unpublishable(field.data_type()) {
            return Some((field.name().clone(), why));
        }
    }
    None
}

/// Reads all of a Parquet file once, after checking its columns.
pub fn scan(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<Scanned, InputError> {
    let builder = builder(path)?;
    let schema = builder.schema().clone();
    if !schema.fields().is_empty()
        && let Some((name, why)) = unpublishable_fields(schema.fields())
    {
        return Err(InputError::new(path, Some(Location::Column(name)), why));
    }
    if let Err(e) = tally_pipeline::delta::schema::check(&schema) {
        return Err(InputError::new(
            path,
            Some(Location::Column(e.column.clone())),
            format!(
                "type {}: the table is published as a Delta table, which has no exact type for it; cast the column in the file (an unsigned integer to a wider signed one, a nanosecond timestamp to microseconds or a string) and run again",
                e.data_type
            ),
        ));
    }
    let reader = builder
        .build()
        .map_err(|e| InputError::new(path, None, e))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| {
            let location = Location::Row {
                row: rows + 1,
                column: None,
            };
            InputError::new(
                path,
                Some(location),
                format!("cannot decode the rows from here on: {e}"),
            )
        })?;
        rows += batch.num_rows() as u64;
        progress(batch.num_rows() as u64);
    }
    Ok(Scanned { schema, rows })
}

/// Batches of a scanned Parquet file.
pub fn open(
    path: &Path,
    schema: SchemaRef,
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, InputError> {
    let builder = builder(path)?;
    if builder.schema() != &schema {
        return Err(InputError::new(
            path,
            None,
            "the columns changed since the file was validated",
        ));
    }
    builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| InputError::new(path, None, e))
}

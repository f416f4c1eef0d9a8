//! Input files at their edges (issue 15, findings 1, 7 and 8): every value read back exactly, or
//! the whole file refused with its line and column named.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files on the real disk"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tally_production::input::{Format, InputError, InputReader};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read_all(path: &Path, format: Format) -> Result<RecordBatch, InputError> {
    let mut reader = InputReader::open(path, format, 4096)?;
    let schema = reader.schema().clone();
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        batches.push(batch);
    }
    Ok(arrow::compute::concat_batches(&schema, &batches).unwrap())
}

fn refused(path: &Path, format: Format) -> String {
    match read_all(path, format) {
        Ok(batch) => panic!(
            "{} was accepted: {} rows, {} columns",
            path.display(),
            batch.num_rows(),
            batch.num_columns()
        ),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains("Some("), "debug formatting leaks: {text}");
            text
        }
    }
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).expect("column present");
    let array = arrow::compute::cast(array, &DataType::Utf8).unwrap();
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

#[test]
fn a_csv_column_empty_for_ten_thousand_rows_keeps_the_strings_that_follow() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,note\n");
    for i in 0..10_500 {
        let note = if i < 10_200 {
            String::new()
        } else {
            format!("n{i}")
        };
        text.push_str(&format!("{i},{note}\n"));
    }
    let path = write(dir.path(), "late.csv", text.as_bytes());
    let batch = read_all(&path, Format::Csv).unwrap();
    let notes = strings(&batch, "note");
    assert_eq!(notes[10_199], None);
    assert_eq!(notes[10_200].as_deref(), Some("n10200"));
    assert_eq!(notes[10_499].as_deref(), Some("n10499"));
}

#[test]
fn a_json_lines_key_first_seen_after_line_ten_thousand_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..10_050 {
        if i >= 10_010 {
            text.push_str(&format!(
                "{{\"id\": {i}, \"late\": \"v{i}\", \"nested\": {{\"a\": 1, \"b\": \"x{i}\"}}}}\n"
            ));
        } else {
            text.push_str(&format!("{{\"id\": {i}, \"nested\": {{\"a\": 1}}}}\n"));
        }
    }
    let path = write(dir.path(), "late.jsonl", text.as_bytes());
    let batch = read_all(&path, Format::Jsonl).unwrap();
    let late = strings(&batch, "late");
    assert_eq!(late[10_009], None);
    assert_eq!(late[10_010].as_deref(), Some("v10010"));
    let nested = batch.column_by_name("nested").unwrap().as_struct();
    let b = nested
        .column_by_name("b")
        .expect("the late nested field is kept");
    assert_eq!(b.as_string::<i32>().value(10_049), "x10049");
}

#[test]
fn a_json_lines_fraction_after_thousands_of_integers_is_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..12_000 {
        text.push_str(&format!("{{\"x\": {i}}}\n"));
    }
    text.push_str("{\"x\": 2.5}\n");
    let path = write(dir.path(), "frac.jsonl", text.as_bytes());
    let batch = read_all(&path, Format::Jsonl).unwrap();
    let x = batch.column_by_name("x").unwrap();
    assert_eq!(x.data_type(), &DataType::Float64);
    assert_eq!(
        x.as_primitive::<arrow::datatypes::Float64Type>()
            .value(12_000),
        2.5
    );
}

#[test]
fn a_json_lines_integer_beyond_two_to_the_53_in_a_float_column_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"x\": 0.5}\n{\"x\": 1}\n{\"x\": 9007199254740993}\n";
    let path = write(dir.path(), "big.jsonl", text.as_bytes());
    let err = refused(&path, Format::Jsonl);
    assert!(err.contains("line 3") && err.contains("\"x\""), "{err}");
}

#[test]
fn a_json_lines_number_then_string_in_one_column_is_refused_naming_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"a\": 1, \"b\": 2}\n\n{\"a\": 2, \"b\": \"two\"}\n";
    let path = write(dir.path(), "conflict.jsonl", text.as_bytes());
    let err = refused(&path, Format::Jsonl);
    assert!(err.contains("line 3") && err.contains("\"b\""), "{err}");
}

/// The type a timestamp column gets, written and read back through a Parquet file with the
/// pipeline's own writer properties: its Parquet logical type must be TIMESTAMP.
fn parquet_logical_type(batch: &RecordBatch, column: &str) -> String {
    let properties = tally_pipeline::table::writer_properties(
        &tally_pipeline::table::TableOptions::default(),
        batch,
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
            .unwrap();
    use parquet::file::reader::FileReader;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let index = (0..schema.num_columns())
        .find(|&i| schema.column(i).name() == column)
        .unwrap();
    format!("{:?}", schema.column(index).logical_type_ref())
}

#[test]
fn a_csv_timestamp_with_an_offset_is_published_as_a_utc_parquet_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id,at\n1,2024-03-01T12:00:00+02:00\n2,2024-03-01T10:00:00.5Z\n";
    let path = write(dir.path(), "ts.csv", text.as_bytes());
    let batch = read_all(&path, Format::Csv).unwrap();
    let at = batch.column_by_name("at").unwrap();
    assert_eq!(
        at.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    let millis = at.as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    assert_eq!(millis.value(0), 1_709_287_200_000);
    assert_eq!(millis.value(1), 1_709_287_200_500);
    let logical = parquet_logical_type(&batch, "at");
    assert!(logical.contains("Timestamp"), "{logical}");
}

#[test]
fn a_zero_filled_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "zeros.csv", &vec![0u8; 64 << 20]);
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 1") && err.contains("NUL"), "{err}");
    let path = write(dir.path(), "zeros.jsonl", &vec![0u8; 64 << 20]);
    let err = refused(&path, Format::Jsonl);
    assert!(err.contains("line 1") && err.contains("NUL"), "{err}");
}

#[test]
fn a_record_longer_than_the_limit_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"a,b\n1,2\n3,\"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 17 << 20));
    text.extend(b"\"\n");
    let path = write(dir.path(), "long.csv", &text);
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 3") && err.contains("MiB"), "{err}");
}

#[test]
fn an_unterminated_quote_at_the_end_of_a_csv_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "quote.csv", b"a,b\n1,2\n3,\"four\n5\n");
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 3") && err.contains("quote"), "{err}");
}

#[test]
fn duplicate_and_empty_csv_column_names_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "dup.csv", b"id,name,id\n1,a,2\n");
    let err = refused(&path, Format::Csv);
    assert!(err.contains("\"id\"") && err.contains("line 1"), "{err}");
    let path = write(dir.path(), "empty.csv", b"id,,x\n1,a,2\n");
    let err = refused(&path, Format::Csv);
    assert!(err.contains("empty") && err.contains("line 1"), "{err}");
}

#[test]
fn a_csv_error_names_the_physical_line_and_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"a,b\n1,x\n2,\"multi\nline\"\n3,".to_vec();
    text.extend(b"\xff\xfe\n");
    let path = write(dir.path(), "utf8.csv", &text);
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 5") && err.contains("\"b\""), "{err}");
    let path = write(dir.path(), "fields.csv", b"a,b\n1,2\n3,4,5\n");
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn duplicate_parquet_column_names_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("x", DataType::Int64, true),
    ]));
    let column = Arc::new(arrow::array::Int64Array::from(vec![1, 2]));
    let batch = RecordBatch::try_new(schema.clone(), vec![column.clone(), column]).unwrap();
    let path = dir.path().join("dup.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let err = refused(&path, Format::Parquet);
    assert!(err.contains("\"x\""), "{err}");
}

#[test]
fn a_parquet_timestamp_in_seconds_is_refused_naming_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "at",
        DataType::Timestamp(TimeUnit::Second, None),
        true,
    )]));
    let column = Arc::new(arrow::array::TimestampSecondArray::from(vec![1, 2]));
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
    let path = dir.path().join("seconds.parquet");
    let mut out = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out.flush().unwrap();
    let err = refused(&path, Format::Parquet);
    assert!(err.contains("\"at\""), "{err}");
}

/// `batch` written as a Parquet file in `dir`.
fn parquet_file(dir: &Path, name: &str, batch: &RecordBatch) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut out = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    out.flush().unwrap();
    path
}

#[test]
fn a_parquet_column_a_delta_table_cannot_hold_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let unsigned = RecordBatch::try_from_iter([(
        "count",
        Arc::new(arrow::array::UInt32Array::from(vec![1, 2])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let err = refused(
        &parquet_file(dir.path(), "u.parquet", &unsigned),
        Format::Parquet,
    );
    assert!(err.contains("\"count\"") && err.contains("Delta"), "{err}");
    let nanos = RecordBatch::try_from_iter([(
        "at",
        Arc::new(arrow::array::TimestampNanosecondArray::from(vec![1]).with_timezone("UTC"))
            as arrow::array::ArrayRef,
    )])
    .unwrap();
    let err = refused(
        &parquet_file(dir.path(), "ns.parquet", &nanos),
        Format::Parquet,
    );
    assert!(err.contains("\"at\""), "{err}");
}

#[test]
fn a_dictionary_encoded_parquet_column_is_read_as_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let dictionary: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
        vec!["red", "blue", "red"].into_iter().collect();
    let batch =
        RecordBatch::try_from_iter([("colour", Arc::new(dictionary) as arrow::array::ArrayRef)])
            .unwrap();
    let read = read_all(
        &parquet_file(dir.path(), "d.parquet", &batch),
        Format::Parquet,
    )
    .unwrap();
    assert_eq!(read.schema().field(0).data_type(), &DataType::Utf8);
    let values = read
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(
        values.iter().flatten().collect::<Vec<_>>(),
        ["red", "blue", "red"]
    );
}

#[test]
fn a_csv_timestamp_with_nanoseconds_stays_exact_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ns.csv",
        b"at\n2024-01-01T00:00:00.123456789Z\n2024-01-01T00:00:01Z\n",
    );
    let batch = read_all(&path, Format::Csv).unwrap();
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Utf8);
    let text = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "2024-01-01T00:00:00.123456789Z");
}

#[test]
fn a_json_lines_line_longer_than_the_limit_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"{\"a\": 1}\n{\"a\": \"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 17 << 20));
    text.extend(b"\"}\n");
    let path = write(dir.path(), "long.jsonl", &text);
    let err = refused(&path, Format::Jsonl);
    assert!(err.contains("line 2") && err.contains("MiB"), "{err}");
}

#[test]
fn a_csv_header_longer_than_a_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
    let text = format!("{}\n", names.join(","));
    let path = write(dir.path(), "wide.csv", text.as_bytes());
    let err = refused(&path, Format::Csv);
    assert!(err.contains("line 1") && err.contains("header"), "{err}");
}

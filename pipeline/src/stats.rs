//! `add.stats` of a table file: `numRecords`, and `minValues`, `maxValues` and `nullCount` of
//! every top-level column of a primitive type, taken from the Parquet footer the writer just
//! produced (the row groups' column-chunk statistics, never a second pass over the rows).
//!
//! All or nothing: an engine that prunes files by statistics takes a column without them as
//! unknown in one engine and as excluding every value in another (deltalake 1.6 drops files a
//! filter on such a column needs). So either every top-level primitive column gets a minimum, a
//! maximum (unless it holds only nulls) and a null count, or the file gets `numRecords` alone.
//! Nested columns (structs, lists) get none, which every engine reads as unknown.
//!
//! Every value is a bound, never a guess: strings may be truncated prefixes (a minimum) or
//! truncated and incremented (a maximum), as Parquet writes them; timestamps are written to
//! the millisecond, Delta's precision for statistics, the minimum rounded down and the
//! maximum rounded up.

use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use serde_json::{Map, Value};

/// The `add.stats` JSON of a file holding `rows` rows of `schema` (the stored columns,
/// `tally_seq` included) whose footer is `metadata`; `None` when some top-level primitive
/// column's statistics cannot be written exactly as bounds (the caller then writes
/// `numRecords` alone).
pub fn column_stats(schema: &Schema, metadata: &ParquetMetaData, rows: u64) -> Option<String> {
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for field in schema.fields() {
        if matches!(
            field.data_type(),
            DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_)
        ) {
            continue;
        }
        let chunks = column_chunks(metadata, field.name())?;
        let bounds = Bounds::of(field.data_type(), &chunks)?;
        nulls.insert(field.name().clone(), Value::from(bounds.nulls));
        if let Some((lo, hi)) = bounds.range {
            min.insert(field.name().clone(), lo);
            max.insert(field.name().clone(), hi);
        } else if bounds.nulls != rows {
            return None;
        }
    }
    let stats = serde_json::json!({
        "numRecords": rows,
        "minValues": min,
        "maxValues": max,
        "nullCount": nulls,
    });
    Some(stats.to_string())
}

/// The statistics of top-level column `name` in every row group, with the row group's rows;
/// `None` if a row group has none.
fn column_chunks<'a>(
    metadata: &'a ParquetMetaData,
    name: &str,
) -> Option<Vec<(&'a Statistics, u64)>> {
    metadata
        .row_groups()
        .iter()
        .map(|group| {
            let column = group
                .columns()
                .iter()
                .find(|c| c.column_path().parts() == [name.to_string()])?;
            Some((column.statistics()?, u64::try_from(group.num_rows()).ok()?))
        })
        .collect()
}

/// A column's bounds over a file.
struct Bounds {
    /// Smallest and largest value as Delta's JSON, `None` when every value is null.
    range: Option<(Value, Value)>,
    nulls: u64,
}

/// A bound as Parquet stores it, before it is written as Delta's JSON: compared in the
/// column's own order (a date as days, not as text).
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Raw {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Bounds {
    fn of(data_type: &DataType, chunks: &[(&Statistics, u64)]) -> Option<Self> {
        let mut nulls = 0u64;
        let mut range: Option<(Raw, Raw)> = None;
        for &(chunk, rows) in chunks {
            let chunk_nulls = chunk.null_count_opt()?;
            nulls += chunk_nulls;
            let Some((lo, hi)) = chunk_bounds(data_type, chunk)? else {
                // No bounds: only a row group of nothing but nulls may lack them.
                if chunk_nulls != rows {
                    return None;
                }
                continue;
            };
            range = Some(match range {
                None => (lo, hi),
                Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
            });
        }
        let range = match range {
            None => None,
            Some((lo, hi)) => Some((json(data_type, lo, false)?, json(data_type, hi, true)?)),
        };
        Some(Self { range, nulls })
    }
}

/// One row group's bounds: `Some(None)` if it holds only nulls, `None` if they cannot be
/// written exactly (a type Delta statistics do not cover here, a non-finite float, a string
/// that is not UTF-8, one bound missing).
fn chunk_bounds(data_type: &DataType, chunk: &Statistics) -> Option<Option<(Raw, Raw)>> {
    let pair = match (data_type, chunk) {
        (DataType::Boolean, Statistics::Boolean(s)) => (
            s.min_opt().map(|v| Raw::Bool(*v)),
            s.max_opt().map(|v| Raw::Bool(*v)),
        ),
        (
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Date32,
            Statistics::Int32(s),
        ) => (
            s.min_opt().map(|v| Raw::Int(i64::from(*v))),
            s.max_opt().map(|v| Raw::Int(i64::from(*v))),
        ),
        (DataType::Int64, Statistics::Int64(s)) => (
            s.min_opt().map(|v| Raw::Int(*v)),
            s.max_opt().map(|v| Raw::Int(*v)),
        ),
        (DataType::Timestamp(unit, Some(_)), Statistics::Int64(s)) if *unit != TimeUnit::Second => {
            (
                s.min_opt().map(|v| Raw::Int(*v)),
                s.max_opt().map(|v| Raw::Int(*v)),
            )
        }
        (DataType::Float32, Statistics::Float(s)) => (
            s.min_opt().map(|v| Raw::Float(f64::from(*v))),
            s.max_opt().map(|v| Raw::Float(f64::from(*v))),
        ),
        (DataType::Float64, Statistics::Double(s)) => (
            s.min_opt().map(|v| Raw::Float(*v)),
            s.max_opt().map(|v| Raw::Float(*v)),
        ),
        (DataType::Utf8 | DataType::LargeUtf8, Statistics::ByteArray(s)) => {
            let text = |b: &parquet::data_type::ByteArray| {
                std::str::from_utf8(b.data())
                    .ok()
                    .map(|t| Raw::Text(t.to_string()))
            };
            match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => (Some(text(lo)?), Some(text(hi)?)),
                (None, None) => (None, None),
                _ => return None,
            }
        }
        _ => return None,
    };
    match pair {
        (Some(lo), Some(hi)) => Some(Some((lo, hi))),
        (None, None) => Some(None),
        _ => None,
    }
}

/// A bound as Delta's JSON for a column of `data_type`; a maximum (`up`) of a timestamp is
/// rounded up to the millisecond, a minimum down. `None` for a non-finite float (JSON has no
/// infinity).
fn json(data_type: &DataType, raw: Raw, up: bool) -> Option<Value> {
    match (data_type, raw) {
        (DataType::Date32, Raw::Int(days)) => {
            let day = arrow::temporal_conversions::date32_to_datetime(i32::try_from(days).ok()?)?;
            Some(Value::from(day.format("%Y-%m-%d").to_string()))
        }
        (DataType::Timestamp(unit, _), Raw::Int(t)) => instant(t, *unit, up),
        (_, Raw::Float(f)) if !f.is_finite() => None,
        (_, Raw::Float(f)) => Some(Value::from(f)),
        (_, Raw::Int(i)) => Some(Value::from(i)),
        (_, Raw::Bool(b)) => Some(Value::from(b)),
        (_, Raw::Text(t)) => Some(Value::from(t)),
    }
}

/// A UTC instant to the millisecond, rounded down (a minimum) or up (a maximum).
fn instant(value: i64, unit: TimeUnit, up: bool) -> Option<Value> {
    let per_ms: i64 = match unit {
        TimeUnit::Second => return None,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1_000_000,
    };
    let ms = if up {
        value.div_euclid(per_ms) + i64::from(value.rem_euclid(per_ms) != 0)
    } else {
        value.div_euclid(per_ms)
    };
    let at = arrow::temporal_conversions::timestamp_ms_to_datetime(ms)?;
    Some(Value::from(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
    };
    use arrow_schema::Field;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// The footer of `batch` written as Parquet with row groups of `group_rows` rows.
    fn footer(batch: &RecordBatch, group_rows: usize) -> ParquetMetaData {
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap()
    }

    fn stats_of(columns: Vec<(&str, ArrayRef)>, group_rows: usize) -> Option<Value> {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let metadata = footer(&batch, group_rows);
        column_stats(&batch.schema(), &metadata, batch.num_rows() as u64)
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn every_primitive_column_gets_bounds_and_null_counts_over_all_row_groups() {
        let micros = TimestampMicrosecondArray::from(vec![1_000_500, 2_000_000, 3_000_001])
            .with_timezone("UTC");
        let inner = StructArray::from(vec![(
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        )]);
        let stats = stats_of(
            vec![
                (
                    "n",
                    Arc::new(Int64Array::from(vec![Some(5), None, Some(-2)])) as ArrayRef,
                ),
                ("f", Arc::new(Float64Array::from(vec![0.5, 2.25, -1.0]))),
                ("s", Arc::new(StringArray::from(vec!["b", "a", "c"]))),
                ("b", Arc::new(BooleanArray::from(vec![true, true, true]))),
                (
                    "d",
                    Arc::new(Date32Array::from(vec![19_000, 18_000, 20_000])),
                ),
                ("t", Arc::new(micros)),
                (
                    "none",
                    Arc::new(Int64Array::from(vec![None::<i64>, None, None])),
                ),
                ("nested", Arc::new(inner)),
            ],
            2,
        )
        .expect("every column has bounds");
        assert_eq!(stats["numRecords"], 3);
        assert_eq!(
            (
                stats["minValues"]["n"].clone(),
                stats["maxValues"]["n"].clone()
            ),
            (Value::from(-2), Value::from(5))
        );
        assert_eq!(stats["nullCount"]["n"], 1);
        assert_eq!(stats["minValues"]["f"], -1.0);
        assert_eq!(stats["maxValues"]["s"], "c");
        assert_eq!(stats["minValues"]["b"], true);
        assert_eq!(stats["minValues"]["d"], "2019-04-14");
        assert_eq!(stats["maxValues"]["d"], "2024-10-04");
        // To the millisecond: the minimum rounded down, the maximum up, so both still bound.
        assert_eq!(stats["minValues"]["t"], "1970-01-01T00:00:01.000Z");
        assert_eq!(stats["maxValues"]["t"], "1970-01-01T00:00:03.001Z");
        assert_eq!(stats["nullCount"]["none"], 3);
        assert!(
            stats["minValues"].get("none").is_none(),
            "all null: no bounds"
        );
        assert!(stats["minValues"].get("nested").is_none(), "nested: none");
    }

    #[test]
    fn a_column_without_exact_bounds_leaves_the_file_with_no_column_statistics() {
        let decimal = Decimal128Array::from(vec![1, 2])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let with_decimal = vec![
            ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("d", Arc::new(decimal) as ArrayRef),
        ];
        assert_eq!(stats_of(with_decimal, 10), None, "decimal: not covered");
        let infinite = vec![(
            "f",
            Arc::new(Float64Array::from(vec![1.0, f64::INFINITY])) as ArrayRef,
        )];
        assert_eq!(stats_of(infinite, 10), None, "JSON has no infinity");
    }
}

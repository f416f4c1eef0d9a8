//! Property tests: CSV, JSON Lines and Parquet inputs generated with adversarial types and
//! layouts (late keys, late type changes, nulls, quotes, commas and newlines inside fields,
//! unicode, timestamps with offsets, big integers, fractions after integers) are either read
//! back exactly — every value the generator wrote, under the rules of `docs/inputs.md` — or
//! refused with a line and a column named. Never read back altered.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files on the real disk"
)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
};
use proptest::prelude::*;
use tally_production::input::{Format, InputError, InputReader};

fn read_all(path: &Path, format: Format, batch_rows: usize) -> Result<RecordBatch, InputError> {
    let mut reader = InputReader::open(path, format, batch_rows)?;
    let schema = reader.schema().clone();
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        assert!(batch.num_rows() <= batch_rows.max(1));
        batches.push(batch);
    }
    Ok(arrow::compute::concat_batches(&schema, &batches).unwrap())
}

/// What a generated value means, as the generator knows it (not as the reader decides).
#[derive(Clone, Debug)]
enum Meaning {
    Text,
    Int(i64),
    Float(f64),
    /// A decimal with more digits than a double holds: never a float column.
    Inexact,
    Bool(bool),
    Date(i32),
    /// UTC nanoseconds, and whether the text had an offset.
    Time(i128, bool),
}

#[derive(Clone, Debug)]
struct Cell {
    text: String,
    meaning: Meaning,
}

fn cell(text: String, meaning: Meaning) -> Cell {
    Cell { text, meaning }
}

fn text_cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        // Unicode with CSV's special characters; a leading letter keeps it text.
        "[a-zé漢🦀][a-z ,\"\n\r\té漢🦀'\\\\]{0,12}".prop_map(|t| cell(t, Meaning::Text)),
        // Text that looks almost like a number, a boolean or a date.
        prop::sample::select(vec![
            "007",
            "+1",
            "1.",
            ".5",
            "NaN",
            "inf",
            "1e400",
            "0x10",
            " 1",
            "1 ",
            "TRUE ",
            "yes",
            "2024-02-30",
            "2024-01-01T25:00:00",
            "12:00",
            "1,5",
            "١٢",
        ])
        .prop_map(|t| cell(t.to_owned(), Meaning::Text)),
    ]
}

fn number_cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        any::<i64>().prop_map(|i| cell(i.to_string(), Meaning::Int(i))),
        (-1000i64..1000).prop_map(|i| cell(i.to_string(), Meaning::Int(i))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| cell(format!("{f}"), Meaning::Float(f))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| cell(format!("{f:e}"), Meaning::Float(f))),
        (0u32..1000).prop_map(|n| cell(format!("{n}.25"), Meaning::Float(f64::from(n) + 0.25))),
        (1u32..1000).prop_map(|n| cell(format!("0.{n}00000000000000000001"), Meaning::Inexact)),
        Just(cell(
            "9007199254740993".into(),
            Meaning::Int(9_007_199_254_740_993)
        )),
    ]
}

fn civil(days: i32) -> String {
    let date = arrow::array::Date32Array::from(vec![days]);
    let text = arrow::compute::cast(&date, &DataType::Utf8).unwrap();
    text.as_string::<i32>().value(0).to_owned()
}

/// A timestamp 1900-01-01..2200-01-01 with 0-9 fraction digits; with an offset (`Z` is
/// written `+00:00`) if `zoned`.
fn time_cell(zoned: bool) -> impl Strategy<Value = Cell> {
    let offset = if zoned {
        (-14 * 60i64..=14 * 60).prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (
        -2_208_988_800i64..7_258_118_400,
        0u32..=9,
        0u32..1_000_000_000,
        offset,
        any::<bool>(),
    )
        .prop_map(|(secs, digits, nanos, offset, space)| {
            let nanos = nanos - nanos % 10u32.pow(9 - digits);
            let local = secs + offset.unwrap_or(0) * 60;
            let (days, rest) = (local.div_euclid(86_400), local.rem_euclid(86_400));
            let mut text = format!(
                "{}{}{:02}:{:02}:{:02}",
                civil(days as i32),
                if space { ' ' } else { 'T' },
                rest / 3600,
                rest / 60 % 60,
                rest % 60
            );
            if digits > 0 {
                let fraction = format!("{nanos:09}");
                text.push('.');
                text.push_str(&fraction[..digits as usize]);
            }
            if let Some(m) = offset {
                let sign = if m < 0 { '-' } else { '+' };
                text.push_str(&format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60));
            }
            let utc = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
            cell(text, Meaning::Time(utc, offset.is_some()))
        })
}

fn bool_cell() -> impl Strategy<Value = Cell> {
    any::<bool>().prop_map(|b| cell(if b { "true" } else { "False" }.into(), Meaning::Bool(b)))
}

fn date_cell() -> impl Strategy<Value = Cell> {
    (-700_000i32..2_000_000).prop_map(|d| cell(civil(d), Meaning::Date(d)))
}

fn int_cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        any::<i64>().prop_map(|i| cell(i.to_string(), Meaning::Int(i))),
        (-1000i64..1000).prop_map(|i| cell(i.to_string(), Meaning::Int(i))),
    ]
}

fn float_cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        (-1000i64..1000).prop_map(|i| cell(i.to_string(), Meaning::Int(i))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| cell(format!("{f}"), Meaning::Float(f))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| cell(format!("{f:e}"), Meaning::Float(f))),
        (0u32..1000).prop_map(|n| cell(format!("{n}.25"), Meaning::Float(f64::from(n) + 0.25))),
    ]
}

/// A column: every cell drawn from one family (so typed columns happen), or from all of
/// them; some cells empty; often empty for a long run first.
fn csv_column(rows: usize) -> impl Strategy<Value = Vec<Option<Cell>>> {
    fn cells(
        family: impl Strategy<Value = Cell> + 'static,
        rows: usize,
    ) -> BoxedStrategy<Vec<Option<Cell>>> {
        prop::collection::vec(prop::option::weighted(0.8, family), rows).boxed()
    }
    let family = prop_oneof![
        cells(text_cell(), rows),
        cells(int_cell(), rows),
        cells(float_cell(), rows),
        cells(number_cell(), rows),
        cells(bool_cell(), rows),
        cells(date_cell(), rows),
        cells(time_cell(false), rows),
        cells(time_cell(true), rows),
        cells(
            prop_oneof![
                text_cell(),
                number_cell(),
                time_cell(true),
                bool_cell(),
                date_cell()
            ],
            rows
        ),
    ];
    (family, 0..=rows).prop_map(|(mut cells, empty_first)| {
        cells
            .iter_mut()
            .take(empty_first / 2)
            .for_each(|c| *c = None);
        cells
    })
}

fn csv_case() -> impl Strategy<Value = (Vec<String>, Vec<Vec<Option<Cell>>>, usize)> {
    (1usize..5, 0usize..30).prop_flat_map(|(columns, rows)| {
        (
            prop::collection::btree_set("[a-z][a-z0-9 ,\"é]{0,6}", columns),
            prop::collection::vec(csv_column(rows), columns),
            1usize..8,
        )
            .prop_map(|(names, cells, batch)| (names.into_iter().collect(), cells, batch))
    })
}

fn write_csv(path: &Path, names: &[String], columns: &[Vec<Option<Cell>>]) {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(names).unwrap();
    let rows = columns.first().map_or(0, Vec::len);
    for row in 0..rows {
        let record: Vec<&str> = columns
            .iter()
            .map(|c| c[row].as_ref().map_or("", |cell| cell.text.as_str()))
            .collect();
        writer.write_record(&record).unwrap();
    }
    writer.flush().unwrap();
}

/// Whether `array[row]` is exactly what `cell` wrote. A column typed other than text must
/// hold the cell's own meaning; a text column its exact text.
fn same_value(array: &ArrayRef, row: usize, cell: &Option<Cell>) -> Result<(), String> {
    let Some(cell) = cell.as_ref().filter(|c| !c.text.is_empty()) else {
        return if array.is_null(row) {
            Ok(())
        } else {
            Err("an empty field is not null".into())
        };
    };
    if array.is_null(row) {
        return Err(format!("{:?} became null", cell.text));
    }
    let ok = match (array.data_type(), &cell.meaning) {
        (DataType::Utf8, _) => array.as_string::<i32>().value(row) == cell.text,
        (DataType::Int64, Meaning::Int(i)) => array.as_primitive::<Int64Type>().value(row) == *i,
        // A float printed without a point or an exponent is an integer literal, and the text is
        // the user's value: `-256813913609883460` is published as that integer exactly, though
        // the float it was printed from is `-256813913609883456`.
        (DataType::Int64, Meaning::Float(_)) => cell
            .text
            .parse::<i64>()
            .is_ok_and(|t| t == array.as_primitive::<Int64Type>().value(row)),
        (DataType::Float64, Meaning::Float(f)) => {
            array.as_primitive::<Float64Type>().value(row).to_bits() == f.to_bits()
        }
        (DataType::Float64, Meaning::Int(i)) => {
            shortest_integer(array.as_primitive::<Float64Type>().value(row)) == Some(i128::from(*i))
        }
        (DataType::Boolean, Meaning::Bool(b)) => array.as_boolean().value(row) == *b,
        (DataType::Date32, Meaning::Date(d)) => array.as_primitive::<Date32Type>().value(row) == *d,
        (DataType::Timestamp(unit, zone), Meaning::Time(nanos, offset)) => {
            let (value, per) = match unit {
                TimeUnit::Millisecond => (
                    array.as_primitive::<TimestampMillisecondType>().value(row),
                    1_000_000,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<TimestampMicrosecondType>().value(row),
                    1_000,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().value(row),
                    1,
                ),
                TimeUnit::Second => return Err("a timestamp in seconds has no Parquet unit".into()),
            };
            i128::from(value) * per == *nanos && zone.as_deref() == offset.then_some("UTC")
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} came back altered as {}",
            cell.text,
            array.data_type()
        ))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Nothing a CSV writer writes is refused (no garbage is generated), and every value
    /// comes back exactly.
    #[test]
    fn every_csv_value_comes_back_exactly((names, columns, batch) in csv_case()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        write_csv(&path, &names, &columns);
        let read = read_all(&path, Format::Csv, batch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read.num_rows(), columns.first().map_or(0, Vec::len));
        for (name, cells) in names.iter().zip(&columns) {
            let array = read.column_by_name(name).expect("every column kept");
            for (row, cell) in cells.iter().enumerate() {
                same_value(array, row, cell).map_err(|e| TestCaseError::fail(format!("column {name:?} row {row}: {e}")))?;
            }
        }
    }
}

/// A JSON value as generated: its literal text, and what it means.
#[derive(Clone, Debug)]
enum Json {
    Null,
    Int(i64),
    /// An integer beyond i64, as u128.
    Big(u128),
    Float(f64, String),
    Str(String),
    Bool(bool),
    Object(Vec<(String, Json)>),
    List(Vec<Json>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Big(b) => out.push_str(&b.to_string()),
            Json::Float(_, text) => out.push_str(text),
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            Json::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }
}

fn json_scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<i64>().prop_map(Json::Int),
        (-100i64..100).prop_map(Json::Int),
        prop_oneof![
            Just(1u128 << 64),
            Just(1u128 << 70),
            Just((1u128 << 64) + 1),
            Just(u128::from(u64::MAX))
        ]
        .prop_map(Json::Big),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Json::Float(f, format!("{f:?}"))),
        (0u32..100).prop_map(|n| Json::Float(f64::from(n) + 0.5, format!("{n}.5"))),
        "[a-z\"\\\\\n\té漢🦀\u{0}\u{1f}]{0,8}".prop_map(Json::Str),
        any::<bool>().prop_map(Json::Bool),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    json_scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::List),
            prop::collection::btree_map("[a-c]", inner, 1..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Values of one key: one family per key, so most files are well typed; the last family
/// mixes everything, so some are not.
fn json_family() -> impl Strategy<Value = BoxedStrategy<Json>> {
    let int = prop_oneof![
        any::<i64>().prop_map(Json::Int),
        (-100i64..100).prop_map(Json::Int)
    ]
    .boxed();
    let float = prop_oneof![
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Json::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Json::Float(f, format!("{f:?}"))),
        (0u32..100).prop_map(|n| Json::Float(f64::from(n) + 0.5, format!("{n}.5"))),
        prop_oneof![Just(1u128 << 64), Just(1u128 << 70)].prop_map(Json::Big),
    ]
    .boxed();
    let text = "[a-z\"\\\\\n\té漢🦀\u{0}\u{1f}]{0,8}"
        .prop_map(Json::Str)
        .boxed();
    let nested = (any::<i32>(), prop::option::of("[a-z漢]{0,4}")).prop_map(|(a, c)| {
        let mut fields = vec![("a".to_owned(), Json::Int(i64::from(a)))];
        if let Some(c) = c {
            fields.push(("c".to_owned(), Json::Str(c)));
        }
        Json::Object(fields)
    });
    let list = prop::collection::vec(
        prop_oneof![Just(Json::Null), (-5i64..5).prop_map(Json::Int)],
        0..4,
    )
    .prop_map(Json::List);
    prop_oneof![
        Just(int),
        Just(float),
        Just(text),
        Just(any::<bool>().prop_map(Json::Bool).boxed()),
        Just(nested.boxed()),
        Just(list.boxed()),
        Just(json_value().boxed()),
    ]
}

/// Lines of objects over a few keys, each key absent or null from some lines, one key only
/// from a late line on.
fn jsonl_case() -> impl Strategy<Value = (Vec<Vec<(String, Json)>>, usize)> {
    (
        prop::collection::vec(json_family(), 1..5),
        1usize..25,
        1usize..6,
    )
        .prop_flat_map(|(families, rows, batch)| {
            let count = families.len();
            // The last key appears only from a late line on.
            let name = move |k: usize| {
                if k + 1 == count && count > 1 {
                    "late"
                } else {
                    ["a", "é", "k漢", "b c"][k]
                }
            };
            let columns: Vec<_> = families
                .into_iter()
                .map(|family| {
                    prop::collection::vec(
                        prop::option::weighted(
                            0.85,
                            prop_oneof![9 => family, 1 => Just(Json::Null)],
                        ),
                        rows,
                    )
                })
                .collect();
            (columns, 0..rows, Just(batch)).prop_map(move |(columns, late, batch)| {
                let lines = (0..rows)
                    .map(|row| {
                        columns
                            .iter()
                            .enumerate()
                            .filter(|&(k, _)| name(k) != "late" || row >= late)
                            .filter_map(|(k, column)| {
                                column[row].clone().map(|v| (name(k).to_owned(), v))
                            })
                            .collect()
                    })
                    .collect();
                (lines, batch)
            })
        })
}

/// The number the shortest decimal of `v` writes, when it is an integer. An integer published
/// as a double is exact, by the rule of docs/inputs.md, when that decimal is the integer
/// written: `2533432344076487000` is (its double prints as `2.533432344076487e18`), though the
/// double's own value is `2533432344076487168`; `9007199254740993` is not.
fn shortest_integer(v: f64) -> Option<i128> {
    let shortest = format!("{v:e}");
    let (mantissa, exponent) = shortest.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let shift = exponent - i32::try_from(fraction.len()).ok()?;
    if shift < 0 {
        return None;
    }
    let mut n: i128 = format!("{whole}{fraction}").parse().ok()?;
    for _ in 0..shift {
        n = n.checked_mul(10)?;
    }
    Some(if negative { -n } else { n })
}

/// Whether `array[row]` holds exactly `value`.
fn same_json(array: &dyn Array, row: usize, value: &Json) -> Result<(), String> {
    if matches!(value, Json::Null) {
        return if array.is_null(row) {
            Ok(())
        } else {
            Err("null became a value".into())
        };
    }
    if array.is_null(row) {
        return Err(format!("{value:?} became null"));
    }
    let ok = match (array.data_type(), value) {
        (DataType::Int64, Json::Int(i)) => array.as_primitive::<Int64Type>().value(row) == *i,
        (DataType::Float64, Json::Int(i)) => {
            shortest_integer(array.as_primitive::<Float64Type>().value(row)) == Some(i128::from(*i))
        }
        (DataType::Float64, Json::Big(b)) => {
            shortest_integer(array.as_primitive::<Float64Type>().value(row))
                == i128::try_from(*b).ok()
        }
        (DataType::Float64, Json::Float(f, _)) => {
            array.as_primitive::<Float64Type>().value(row).to_bits() == f.to_bits()
        }
        (DataType::Utf8, Json::Str(s)) => array.as_string::<i32>().value(row) == s,
        (DataType::Boolean, Json::Bool(b)) => array.as_boolean().value(row) == *b,
        (DataType::List(_), Json::List(items)) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            if values.len() != items.len() {
                return Err(format!(
                    "a list of {} came back with {}",
                    items.len(),
                    values.len()
                ));
            }
            for (i, item) in items.iter().enumerate() {
                same_json(values.as_ref(), i, item)?;
            }
            true
        }
        (DataType::Struct(fields), Json::Object(pairs)) => {
            let object = array.as_struct();
            for field in fields {
                let want = pairs
                    .iter()
                    .find(|(k, _)| k == field.name())
                    .map_or(&Json::Null, |(_, v)| v);
                same_json(
                    object.column_by_name(field.name()).unwrap().as_ref(),
                    row,
                    want,
                )?;
            }
            pairs.iter().all(|(k, _)| fields.find(k).is_some())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} came back altered as {}",
            array.data_type()
        ))
    }
}

fn write_jsonl(path: &Path, rows: &[Vec<(String, Json)>]) {
    let mut text = String::new();
    for row in rows {
        Json::Object(row.clone()).write(&mut text);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// A refusal names a line of the file and one of its keys.
fn names_line_and_key(err: &InputError, lines: usize, keys: &[&str]) -> bool {
    use tally_production::input::Location;
    match &err.location {
        Some(Location::Line {
            line,
            column: Some(column),
        }) => {
            *line >= 1
                && *line <= lines as u64
                && keys
                    .iter()
                    .any(|k| column.split(['.', '[']).next() == Some(k))
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Either every value of every line comes back exactly (a key missing from a line is
    /// null), or the file is refused naming a line and a key.
    #[test]
    fn every_json_lines_value_comes_back_exactly_or_the_file_is_refused_naming_line_and_key((rows, batch) in jsonl_case()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        write_jsonl(&path, &rows);
        let mut keys: Vec<&str> = rows.iter().flatten().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            prop_assert!(read_all(&path, Format::Jsonl, batch).is_err(), "lines without keys have no columns");
            return Ok(());
        }
        match read_all(&path, Format::Jsonl, batch) {
            Err(e) => prop_assert!(names_line_and_key(&e, rows.len(), &keys), "refused without naming a line and key: {e}"),
            Ok(read) => {
                prop_assert_eq!(read.num_rows(), rows.len());
                prop_assert_eq!(read.num_columns(), keys.len(), "a column for every key");
                for key in &keys {
                    let array = read.column_by_name(key).unwrap();
                    for (row, pairs) in rows.iter().enumerate() {
                        let want = pairs.iter().find(|(k, _)| k == key).map_or(&Json::Null, |(_, v)| v);
                        same_json(array.as_ref(), row, want).map_err(|e| TestCaseError::fail(format!("key {key} line {}: {e}", row + 1)))?;
                    }
                }
            }
        }
    }

    /// A file whose every key holds one type, its numbers exact as doubles, is never refused.
    #[test]
    fn well_typed_json_lines_are_never_refused(values in prop::collection::vec((any::<i32>(), prop::option::of("[a-z漢\"\\\\]{0,5}"), any::<bool>()), 1..40), late in 0usize..40) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let rows: Vec<Vec<(String, Json)>> = values.iter().enumerate().map(|(i, (n, s, b))| {
            let mut row = vec![("n".to_owned(), if *b { Json::Int(i64::from(*n)) } else { Json::Float(f64::from(*n) + 0.5, format!("{}.5", n)) })];
            if let Some(s) = s { row.push(("s".to_owned(), Json::Str(s.clone()))); }
            if i >= late { row.push(("z_late".to_owned(), Json::Object(vec![("b".into(), Json::Bool(*b))]))); }
            row
        }).collect();
        write_jsonl(&path, &rows);
        let read = read_all(&path, Format::Jsonl, 7).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read.num_rows(), rows.len());
    }
}

fn parquet_column(rows: usize) -> impl Strategy<Value = (Field, ArrayRef)> {
    prop_oneof![
        prop::collection::vec(prop::option::of(any::<i64>()), rows).prop_map(|v| {
            (
                Field::new("i", DataType::Int64, true),
                Arc::new(arrow::array::Int64Array::from(v)) as ArrayRef,
            )
        }),
        prop::collection::vec(prop::option::of(-1e300f64..1e300), rows).prop_map(|v| {
            (
                Field::new("f", DataType::Float64, true),
                Arc::new(arrow::array::Float64Array::from(v)) as ArrayRef,
            )
        }),
        prop::collection::vec(prop::option::of("[a-z,\"\n漢🦀]{0,6}"), rows).prop_map(|v| {
            (
                Field::new("s", DataType::Utf8, true),
                Arc::new(arrow::array::StringArray::from(v)) as ArrayRef,
            )
        }),
        prop::collection::vec(prop::option::of(any::<i64>()), rows).prop_map(|v| {
            let a = arrow::array::TimestampMicrosecondArray::from(v).with_timezone("UTC");
            (
                Field::new("t", a.data_type().clone(), true),
                Arc::new(a) as ArrayRef,
            )
        }),
        prop::collection::vec(prop::option::of(any::<i32>()), rows).prop_map(|v| {
            (
                Field::new("d", DataType::Date32, true),
                Arc::new(arrow::array::Date32Array::from(v)) as ArrayRef,
            )
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A Parquet file of publishable types comes back batch for batch, value for value.
    #[test]
    fn every_parquet_value_comes_back_exactly(columns in (0usize..40).prop_flat_map(|rows| prop::collection::vec(parquet_column(rows), 1..5)), row_group in 1usize..10, batch in 1usize..9) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.parquet");
        let fields: Vec<Field> = columns.iter().enumerate().map(|(i, (f, _))| f.clone().with_name(format!("{}{i}", f.name()))).collect();
        let schema = Arc::new(Schema::new(fields));
        let written = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let properties = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(row_group)).build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(properties)).unwrap();
        writer.write(&written).unwrap();
        writer.close().unwrap();
        let read = read_all(&path, Format::Parquet, batch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read, written);
    }
}

#[test]
fn shortest_integer_is_the_integer_a_double_prints_as() {
    assert_eq!(
        shortest_integer(2_533_432_344_076_487_168.0),
        Some(2_533_432_344_076_487_000)
    );
    assert_eq!(
        shortest_integer(-9_007_199_254_740_992.0),
        Some(-9_007_199_254_740_992)
    );
    assert_eq!(shortest_integer(0.0), Some(0));
    assert_eq!(shortest_integer(1e20), Some(100_000_000_000_000_000_000));
    assert_eq!(shortest_integer(470.25), None);
}

//! Inputs end to end: `tally_production::run` into a store on the real disk, then the
//! published Parquet files read back with the parquet crate — what users see is what is tested.
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "tests write input files and read published files on the real disk"
)]

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, TimeUnit as ParquetUnit};
use tally_production::input::Location;
use tally_production::{RunError, RunOptions, RunSummary};

async fn run(root: &Path, inputs: &[PathBuf]) -> Result<RunSummary, RunError> {
    let options = RunOptions {
        root: root.to_path_buf(),
        inputs: inputs.to_vec(),
        format: None,
        batch_rows: 4096,
        config: tally_pipeline::Config::default(),
    };
    tally_production::run(&options, &()).await
}

/// Every published table file under `root`, as one batch (without the sequence column), and
/// the Parquet logical type of `column` in the first file.
fn published(root: &Path, column: &str) -> (RecordBatch, Option<LogicalType>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "nothing published");
    let mut batches = Vec::new();
    let mut logical = None;
    for file in &files {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
        let schema = builder.metadata().file_metadata().schema_descr_ptr();
        if logical.is_none() {
            logical = (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == column)
                .and_then(|i| schema.column(i).logical_type_ref().cloned());
        }
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let keep: Vec<usize> = (0..batch.num_columns())
                .filter(|&i| batch.schema().field(i).name() != "tally_seq")
                .collect();
            batches.push(batch.project(&keep).unwrap());
        }
    }
    let schema = batches[0].schema();
    (
        arrow::compute::concat_batches(&schema, &batches).unwrap(),
        logical,
    )
}

fn sorted_by_id(batch: &RecordBatch) -> RecordBatch {
    let ids = batch.column_by_name("id").unwrap();
    let order = arrow::compute::sort_to_indices(ids, None, None).unwrap();
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &order, None).unwrap())
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

#[tokio::test]
async fn a_published_csv_keeps_late_strings_and_utc_timestamps_of_a_parquet_unit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,note,at\n");
    for i in 0..10_500u64 {
        let note = if i < 10_200 {
            String::new()
        } else {
            format!("n{i}")
        };
        text.push_str(&format!(
            "{i},{note},2024-03-01T12:00:{:02}+02:00\n",
            i % 60
        ));
    }
    std::fs::write(&input, text).unwrap();
    let root = dir.path().join("store");
    let summary = run(&root, &[input]).await.unwrap();
    assert_eq!(summary.published_rows, 10_500);
    let (batch, logical) = published(&root, "at");
    let Some(LogicalType::Timestamp(timestamp)) = logical else {
        panic!("published as {logical:?}, not a Parquet TIMESTAMP")
    };
    assert!(timestamp.is_adjusted_to_u_t_c);
    assert!(
        matches!(timestamp.unit, ParquetUnit::MILLIS),
        "{:?}",
        timestamp.unit
    );
    let batch = sorted_by_id(&batch);
    assert_eq!(batch.num_rows(), 10_500);
    let notes = batch.column_by_name("note").unwrap().as_string::<i32>();
    assert_eq!(notes.null_count(), 10_200);
    assert_eq!(notes.value(10_499), "n10499");
    let at = batch.column_by_name("at").unwrap();
    assert_eq!(
        at.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    // 12:00:59+02:00 is 10:00:59 UTC.
    assert_eq!(
        at.as_primitive::<TimestampMillisecondType>().value(59),
        1_709_287_259_000
    );
}

#[tokio::test]
async fn published_json_lines_keep_a_key_and_a_fraction_first_seen_after_line_ten_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..10_100u64 {
        if i < 10_050 {
            text.push_str(&format!("{{\"id\": {i}, \"x\": {i}}}\n"));
        } else {
            text.push_str(&format!(
                "{{\"id\": {i}, \"x\": {i}.5, \"late\": {{\"k\": \"v{i}\"}}}}\n"
            ));
        }
    }
    std::fs::write(&input, text).unwrap();
    let root = dir.path().join("store");
    run(&root, &[input]).await.unwrap();
    let (batch, _) = published(&root, "x");
    let batch = sorted_by_id(&batch);
    let x = batch
        .column_by_name("x")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(x.value(10_099), 10_099.5);
    assert_eq!(x.value(5), 5.0);
    let late = batch.column_by_name("late").unwrap().as_struct();
    assert_eq!(
        late.column_by_name("k")
            .unwrap()
            .as_string::<i32>()
            .value(10_099),
        "v10099"
    );
    assert!(late.is_null(0));
}

#[tokio::test]
async fn a_refused_input_names_line_and_column_and_publishes_none_of_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for i in 0..12_000u64 {
        text.push_str(&format!("{{\"id\": {i}, \"v\": {i}}}\n"));
    }
    text.push_str("{\"id\": 12000, \"v\": \"twelve thousand\"}\n");
    std::fs::write(&input, text).unwrap();
    let root = dir.path().join("store");
    let err = run(&root, &[input]).await.unwrap_err();
    let RunError::Input(err) = err else {
        panic!("not an input error: {err}")
    };
    assert_eq!(
        err.location,
        Some(Location::Line {
            line: 12_001,
            column: Some("v".into())
        }),
        "{err}"
    );
    let summary = tally_production::check(&root, false).await.unwrap();
    assert_eq!(summary.published_rows, 0);
}

#[tokio::test]
async fn a_later_file_whose_column_type_differs_is_refused_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "id,v\n1,2\n").unwrap();
    let b = dir.path().join("b.csv");
    std::fs::write(&b, "id,v\n2,two\n").unwrap();
    let root = dir.path().join("store");
    let err = run(&root, &[a, b]).await.unwrap_err();
    let RunError::Input(err) = err else {
        panic!("not an input error: {err}")
    };
    assert_eq!(err.location, Some(Location::Column("v".into())), "{err}");
    assert!(
        err.message.contains("Int64") && err.message.contains("Utf8"),
        "{err}"
    );
}

#[tokio::test]
async fn a_header_only_csv_after_the_columns_are_fixed_completes_its_source_with_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "id,v\n1,2\n3,4\n").unwrap();
    // Its columns would infer as strings; having no rows, it alters nothing.
    let b = dir.path().join("b.csv");
    std::fs::write(&b, "id,v\n").unwrap();
    let root = dir.path().join("store");
    let summary = run(&root, &[a, b.clone()]).await.unwrap();
    assert_eq!(summary.rows_acknowledged, 2);
    assert_eq!(summary.published_rows, 2);
    let empty = summary.sources.iter().find(|s| s.file == b).unwrap();
    assert_eq!(empty.status, "ingested", "{empty:?}");
    let (batch, _) = published(&root, "v");
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(
        batch.schema().field_with_name("v").unwrap().data_type(),
        &DataType::Int64
    );
    // A header-only file whose header differs entirely is no loss either.
    let c = dir.path().join("c.csv");
    std::fs::write(&c, "other\n").unwrap();
    run(&root, &[c]).await.unwrap();
    // And a rerun finds the empty source complete.
    let again = run(&root, &[b]).await.unwrap();
    assert_eq!(again.sources[0].status, "already-ingested", "{again:?}");
}

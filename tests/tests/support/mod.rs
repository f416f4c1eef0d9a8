//! Shared helpers for pipeline tests: rows with known identity, a small configuration that
//! reaches rotation, reservation and merges quickly, and a reader of everything on disk.

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use tally_pipeline::table::TableOptions;
use tally_pipeline::{Config, Layout, Pipeline, RecoveryReport, read};
use tally_sim::{Fs, SystemClock, World};

pub const ROOT: &str = "/db";

/// A configuration small enough that a few dozen rows seal segments, reserve new sequence
/// blocks and cascade through merge levels.
pub fn small_config() -> Config {
    Config {
        segment_bytes: 1500,
        seq_block: 16,
        merge_fan_in: 2,
        max_level: 3,
        table: TableOptions {
            row_group_rows: 5,
            zstd_level: 1,
        },
        read_batch_rows: 7,
        ..Config::default()
    }
}

/// The key of row `row` of source `source`: unique across a test.
pub fn key(source: &str, row: u64) -> String {
    format!("{source}#{row}")
}

/// Rows `first..first + n` of `source`: a unique key and a value derived from it.
pub fn rows(source: &str, first: u64, n: u64) -> RecordBatch {
    let keys: Vec<String> = (first..first + n).map(|r| key(source, r)).collect();
    let values: Vec<i64> = (first..first + n).map(|r| r as i64 * 3 - 7).collect();
    RecordBatch::try_from_iter([
        ("key", Arc::new(StringArray::from(keys)) as Arc<dyn Array>),
        (
            "value",
            Arc::new(Int64Array::from(values)) as Arc<dyn Array>,
        ),
    ])
    .unwrap()
}

pub async fn open<F: Fs>(
    fs: &F,
    config: Config,
) -> tally_pipeline::Result<(Pipeline<F, SystemClock>, RecoveryReport)> {
    Pipeline::open(World::new(fs.clone(), SystemClock), ROOT, config).await
}

/// Every row on disk — published and staged — as key → sequence numbers seen.
pub async fn rows_on_disk<F: Fs>(
    fs: &F,
    pipeline: &Pipeline<F, SystemClock>,
) -> BTreeMap<String, Vec<u64>> {
    let layout = Layout::new(ROOT);
    let manifest = pipeline.manifest().await;
    let mut found: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut add = |batch: RecordBatch| {
        let keys = batch
            .column_by_name("key")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        let seqs = tally_pipeline::table::seq_column(&batch).unwrap().clone();
        for i in 0..batch.num_rows() {
            found
                .entry(keys.value(i).to_string())
                .or_default()
                .push(seqs.value(i) as u64);
        }
        Ok(())
    };
    read::published_rows(fs, &layout, &manifest.files, 64, |_, b| add(b))
        .await
        .unwrap();
    read::staged_rows(fs, &layout, manifest.log_through, |_, b| add(b))
        .await
        .unwrap();
    found
}

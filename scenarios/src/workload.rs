//! Workloads: which sources are ingested, in what parts, with which pipeline settings; rows
//! whose content follows from their identity, so an oracle can check every value it reads.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tally_pipeline::{Config, TableOptions};

/// One source: its name and the size of each part it is ingested in, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePlan {
    pub name: String,
    pub parts: Vec<u64>,
}

impl SourcePlan {
    pub fn rows(&self) -> u64 {
        self.parts.iter().sum()
    }

    /// `(first_row, rows, last)` of each part.
    pub fn part_ranges(&self) -> Vec<(u64, u64, bool)> {
        let mut first = 0;
        let n = self.parts.len();
        self.parts
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                let part = (first, rows, i + 1 == n);
                first += rows;
                part
            })
            .collect()
    }
}

/// How the run continues after its restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resume {
    /// Each source resumes after the rows the ledger holds.
    FromLedger,
    /// Every part is ingested again from the start; the ledger makes the re-run add nothing
    /// twice.
    RerunAll,
}

/// The first thing the second process lifetime does after opening the store: which entry
/// point meets whatever the crash left half done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entry {
    /// Ingest (the workload resumes).
    #[default]
    Ingest,
    /// Stage and merge (`flush`) before ingesting anything.
    Flush,
    /// Export before ingesting anything.
    Export,
}

impl Entry {
    pub const ALL: [Entry; 3] = [Entry::Ingest, Entry::Flush, Entry::Export];
}

/// An exporter running alongside ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPlan {
    /// Each source's task exports after every this many acknowledged parts; the run exports
    /// once more after its final flush.
    pub every_parts: u32,
    /// Flush before each of those exports, so that there is something new to export even
    /// without background maintenance.
    #[serde(default)]
    pub flush_first: bool,
}

/// Checks made on copies of the final disk after the run, each damaging it in a way recovery
/// must notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// Delete a published file, truncate an acknowledged log segment: recovery must refuse,
    /// with counts. Append a malformed frame after acknowledged ones: recovery must keep the
    /// acknowledged rows and report the frame.
    Damage,
    /// An unreadable newest manifest must not brick later opens; recovery setting it aside
    /// under a persistent ENOSPC retries a bounded number of times, then reports the error.
    MalformedManifest,
    /// Another program's file appears under the next commit's version, then under the next
    /// table file's name, between open and flush: the flush must refuse naming it, leave it
    /// as it was, and publish every row once it is moved out (`probe_foreign`).
    ForeignFile,
}

/// Everything a run does, apart from its faults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub sources: Vec<SourcePlan>,
    /// Ingest each source from its own task, all at once (otherwise one task, source by source).
    pub concurrent: bool,
    /// Longest payload string of a row.
    pub payload_bytes: u32,
    pub segment_bytes: u64,
    pub seq_block: u64,
    pub merge_fan_in: usize,
    pub max_level: u32,
    pub row_group_rows: usize,
    /// Stage and merge from a background task while ingesting (otherwise only at restarts
    /// and at the end).
    pub background_maintenance: bool,
    /// A clean restart (the pipeline shut down and reopened) after this many parts of every
    /// source.
    pub restart_after_parts: Option<usize>,
    pub resume: Resume,
    /// Integer columns beyond `key`, `value` and `payload`, each a function of the key.
    #[serde(default)]
    pub extra_columns: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportPlan>,
    /// A second, read-only handle reads the store while it is written, and must always see
    /// one consistent version, never an older one than before.
    #[serde(default)]
    pub reader: bool,
    #[serde(default)]
    pub entry: Entry,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// How long a table file a commit removed is kept (milliseconds of the world's clock).
    /// 0 deletes it as soon as the commit removing it is durable, which puts vacuum's
    /// unlinks inside every merge; Delta's default (7 days) keeps every file of a run.
    #[serde(default)]
    pub retention_ms: u64,
    /// Sources loaded through the bulk path (`Pipeline::bulk_load`: straight into committed
    /// table files, as `tally run` loads a file) instead of streamed through the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bulk_sources: Vec<String>,
}

/// Delta's default retention of removed files, in milliseconds.
pub const DELTA_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

impl Workload {
    pub fn total_rows(&self) -> u64 {
        self.sources.iter().map(SourcePlan::rows).sum()
    }

    #[allow(
        clippy::needless_update,
        reason = "`Config` has one more field, `twins`, in the simulation build"
    )]
    pub fn config(&self) -> Config {
        Config {
            segment_bytes: self.segment_bytes,
            seq_block: self.seq_block,
            merge_fan_in: self.merge_fan_in,
            max_level: self.max_level,
            table: TableOptions {
                row_group_rows: self.row_group_rows,
                zstd_level: 1,
            },
            read_batch_rows: 64,
            // Small, so that most runs write checkpoints and crash inside them: the default
            // (10) is reached only by the longest workloads.
            checkpoint_interval: 4,
            recovery: tally_pipeline::RecoveryOptions {
                retention: std::time::Duration::from_millis(self.retention_ms),
                ..Default::default()
            },
            ..Config::default()
        }
    }

    /// The standard workload for `seed`: a few sources in parts of a few rows, small segments
    /// and fan-in so that staging and at least two merge levels happen, background maintenance
    /// mostly on, sometimes a clean restart halfway.
    pub fn standard(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5747_414e_4441_5244);
        let sources = (0..rng.gen_range(2..=4))
            .map(|i| SourcePlan {
                name: format!("s{i}"),
                parts: (0..rng.gen_range(4..=9))
                    .map(|_| rng.gen_range(1..=10))
                    .collect(),
            })
            .collect::<Vec<_>>();
        let min_parts = sources.iter().map(|s| s.parts.len()).min().unwrap_or(0);
        Workload {
            sources,
            concurrent: true,
            payload_bytes: rng.gen_range(0..=48),
            segment_bytes: rng.gen_range(900..=2400),
            seq_block: rng.gen_range(8..=64),
            merge_fan_in: 2,
            max_level: 3,
            row_group_rows: rng.gen_range(3..=16),
            background_maintenance: rng.gen_bool(0.75),
            restart_after_parts: rng.gen_bool(0.5).then(|| rng.gen_range(1..min_parts)),
            resume: if rng.gen_bool(0.5) {
                Resume::FromLedger
            } else {
                Resume::RerunAll
            },
            extra_columns: 0,
            export: None,
            reader: false,
            entry: Entry::Ingest,
            probes: Vec::new(),
            // Drawn last, so that every draw before it is what it was before retention.
            retention_ms: if rng.gen_bool(0.5) {
                0
            } else {
                DELTA_RETENTION_MS
            },
            bulk_sources: Vec::new(),
        }
    }

    /// The small workload of exhaustive exploration: two sources of two short parts, one
    /// task, segments small enough that two are staged and merged once.
    pub fn small() -> Self {
        Workload {
            sources: vec![
                SourcePlan {
                    name: "a".into(),
                    parts: vec![3, 2],
                },
                SourcePlan {
                    name: "b".into(),
                    parts: vec![2, 3],
                },
            ],
            concurrent: false,
            payload_bytes: 8,
            segment_bytes: 1200,
            seq_block: 4,
            merge_fan_in: 2,
            max_level: 2,
            row_group_rows: 4,
            background_maintenance: false,
            restart_after_parts: None,
            resume: Resume::FromLedger,
            extra_columns: 0,
            export: None,
            reader: false,
            entry: Entry::Ingest,
            probes: Vec::new(),
            retention_ms: 0,
            bulk_sources: Vec::new(),
        }
    }

    /// Whether `source` is loaded through the bulk path.
    pub fn is_bulk(&self, source: &str) -> bool {
        self.bulk_sources.iter().any(|s| s == source)
    }

    /// The batch of rows `first..first + n` of `source` with this workload's columns.
    pub fn batch(&self, source: &str, first: u64, n: u64) -> RecordBatch {
        batch(source, first, n, self.payload_bytes, self.extra_columns)
    }
}

/// The content fingerprint a workload binds to `source` (a function of its name alone, so the
/// oracle can check every ledger state against it).
pub fn fingerprint(source: &str) -> tally_pipeline::Fingerprint {
    tally_pipeline::Fingerprint {
        bytes: source.len() as u64,
        checksum: twox_hash::XxHash64::oneshot(0xf1f1, source.as_bytes()),
    }
}

/// The key of row `row` of `source`.
pub fn key(source: &str, row: u64) -> String {
    format!("{source}#{row}")
}

/// Splits a key into its source and row; `None` for a key no workload makes.
pub fn parse_key(key: &str) -> Option<(&str, u64)> {
    let (source, row) = key.rsplit_once('#')?;
    // Only the form `key` writes: digits, no sign, no leading zero.
    let canonical =
        row.bytes().all(|b| b.is_ascii_digit()) && (row == "0" || !row.starts_with('0'));
    canonical.then_some(())?;
    Some((source, row.parse().ok()?))
}

fn mix(key: &str) -> u64 {
    twox_hash::XxHash64::oneshot(0x7a11_7a11, key.as_bytes())
}

/// The value column of the row with `key`.
pub fn value_of(key: &str) -> i64 {
    mix(key) as i64
}

/// The payload column of the row with `key`: up to `max_bytes` letters, all following from
/// the key.
pub fn payload_of(key: &str, max_bytes: u32) -> String {
    let h = mix(key);
    let len = if max_bytes == 0 {
        0
    } else {
        (h % (u64::from(max_bytes) + 1)) as usize
    };
    let mut rng = ChaCha8Rng::seed_from_u64(h);
    (0..len)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// Extra column `i` of the row with `key`.
pub fn extra_of(key: &str, i: u32) -> i64 {
    (mix(key).rotate_left(i + 1) ^ u64::from(i)) as i64
}

/// The name of extra column `i`.
pub fn extra_name(i: u32) -> String {
    format!("x{i}")
}

/// Rows `first..first + n` of `source`: columns `key`, `value`, `payload`, then `extra`
/// integer columns `x0`, `x1`, ...
pub fn batch(source: &str, first: u64, n: u64, payload_bytes: u32, extra: u32) -> RecordBatch {
    let keys: Vec<String> = (first..first + n).map(|r| key(source, r)).collect();
    let values: Vec<i64> = keys.iter().map(|k| value_of(k)).collect();
    let payloads: Vec<String> = keys.iter().map(|k| payload_of(k, payload_bytes)).collect();
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("value".into(), Arc::new(Int64Array::from(values))),
        ("payload".into(), Arc::new(StringArray::from(payloads))),
    ];
    for i in 0..extra {
        let xs: Vec<i64> = keys.iter().map(|k| extra_of(k, i)).collect();
        columns.push((extra_name(i), Arc::new(Int64Array::from(xs))));
    }
    columns.insert(0, ("key".into(), Arc::new(StringArray::from(keys))));
    RecordBatch::try_from_iter(columns).expect("columns of equal length")
}

/// One row as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRead {
    pub key: String,
    pub value: i64,
    pub payload: String,
    pub seq: u64,
    /// The extra columns, in order.
    pub extra: Vec<i64>,
}

/// The rows of a batch read back from the store; `None` if its columns are not the workload's.
pub fn rows_of(batch: &RecordBatch) -> Option<Vec<RowRead>> {
    let keys = batch
        .column_by_name("key")?
        .as_any()
        .downcast_ref::<StringArray>()?;
    let values = batch
        .column_by_name("value")?
        .as_any()
        .downcast_ref::<Int64Array>()?;
    let payloads = batch
        .column_by_name("payload")?
        .as_any()
        .downcast_ref::<StringArray>()?;
    let seqs = tally_pipeline::table::seq_column(batch)?;
    let mut extras = Vec::new();
    for i in 0.. {
        match batch.column_by_name(&extra_name(i)) {
            Some(c) => extras.push(c.as_any().downcast_ref::<Int64Array>()?),
            None => break,
        }
    }
    Some(
        (0..batch.num_rows())
            .map(|i| RowRead {
                key: keys.value(i).to_owned(),
                value: values.value(i),
                payload: payloads.value(i).to_owned(),
                seq: seqs.value(i) as u64,
                extra: extras.iter().map(|x| x.value(i)).collect(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_content_follows_from_the_key() {
        let b = batch("s1", 5, 3, 20, 2);
        let rows = rows_of(
            &tally_pipeline::table::with_seq(
                &b,
                100,
                &tally_pipeline::table::stored_schema(&b.schema()),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].key, "s1#6");
        assert_eq!(rows[1].value, value_of("s1#6"));
        assert_eq!(rows[1].payload, payload_of("s1#6", 20));
        assert_eq!(rows[2].seq, 102);
        assert_eq!(
            rows[1].extra,
            vec![extra_of("s1#6", 0), extra_of("s1#6", 1)]
        );
        assert_ne!(extra_of("s1#6", 0), extra_of("s1#6", 1));
        assert_eq!(parse_key("s1#6"), Some(("s1", 6)));
        assert_eq!(parse_key("nonsense"), None);
    }

    #[test]
    fn part_ranges_are_contiguous_and_the_last_is_marked() {
        let s = SourcePlan {
            name: "x".into(),
            parts: vec![2, 3, 1],
        };
        assert_eq!(
            s.part_ranges(),
            vec![(0, 2, false), (2, 3, false), (5, 1, true)]
        );
    }
}

//! The export directory against the published rows: every published row below the watermark
//! in exactly one committed batch, with its published values and sequence number; no
//! committed row at or above the watermark; at the end, everything exported.

use std::collections::BTreeMap;
use std::path::Path;

use tally_sim::Fs;

use super::expect::Expectation;
use super::invariant::{self, Breach, Invariant};
use crate::workload::{RowRead, rows_of};

/// How many times each key was exported.
type Exported<'a> = BTreeMap<&'a str, u32>;

/// Checks the export in `dir` against `published`, each clause of `export-exactly-once` in
/// turn; the first broken one is reported.
pub(super) async fn check_export<F: Fs>(
    fs: &F,
    dir: &Path,
    published: &[RowRead],
    expect: &Expectation,
) -> Result<(), Breach> {
    let (exported, watermark) = read_export(fs, dir).await?;
    let times = times_exported(&exported);
    exported_at_most_once(&times)?;
    exported_as_published(&exported, published)?;
    nothing_committed_at_or_above(&exported, watermark)?;
    published_rows_exported(published, &times, watermark, expect.final_state)
}

/// Every committed row of the export, and its watermark (0 before the first export).
async fn read_export<F: Fs>(fs: &F, dir: &Path) -> Result<(Vec<RowRead>, u64), Breach> {
    let mut exported: Vec<RowRead> = Vec::new();
    let mut bad_columns = false;
    let watermark = if fs.exists(dir).await.unwrap_or(false) {
        tally_pipeline::export::read_committed(fs, dir, 256, |_, batch| {
            match rows_of(&batch) {
                Some(rows) => exported.extend(rows),
                None => bad_columns = true,
            }
            Ok(())
        })
        .await
        .map_err(|e| breach(&format!("reading the export: {e}")))?
    } else {
        0
    };
    if bad_columns {
        return Err(breach("an export batch without the workload's columns"));
    }
    Ok((exported, watermark))
}

/// How many committed batches hold each key.
pub(super) fn times_exported(exported: &[RowRead]) -> Exported<'_> {
    let mut times: Exported = BTreeMap::new();
    for row in exported {
        *times.entry(&row.key).or_default() += 1;
    }
    times
}

fn breach(detail: &str) -> Breach {
    Breach::new(Invariant::ExportExactlyOnce, vec![], detail)
}

/// Holds when no row is in `keys`; otherwise the breach, `detail` given how many.
fn no_rows(keys: &[String], detail: impl FnOnce(usize) -> String) -> Result<(), Breach> {
    invariant::no_rows(Invariant::ExportExactlyOnce, keys, detail)
}

/// The keys of the rows of `rows` that `holds` holds for, in order.
fn keys_where(rows: &[RowRead], holds: impl Fn(&RowRead) -> bool) -> Vec<String> {
    rows.iter()
        .filter(|r| holds(r))
        .map(|r| r.key.clone())
        .collect()
}

/// No row is in two committed batches.
pub(super) fn exported_at_most_once(times: &Exported) -> Result<(), Breach> {
    let twice: Vec<String> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    no_rows(&twice, |n| format!("{n} rows exported more than once"))
}

/// Every exported row is a published row, with its values and sequence number.
pub(super) fn exported_as_published(
    exported: &[RowRead],
    published: &[RowRead],
) -> Result<(), Breach> {
    let by_seq: BTreeMap<u64, &RowRead> = published.iter().map(|r| (r.seq, r)).collect();
    let foreign = keys_where(exported, |r| by_seq.get(&r.seq).is_none_or(|p| *p != r));
    no_rows(&foreign, |n| {
        format!("{n} exported rows are not published as exported (value or sequence number differ)")
    })
}

/// No committed row at or above the watermark: the watermark covers every committed batch.
pub(super) fn nothing_committed_at_or_above(
    exported: &[RowRead],
    watermark: u64,
) -> Result<(), Breach> {
    let above = keys_where(exported, |r| r.seq >= watermark);
    no_rows(&above, |n| {
        format!("{n} committed export rows are at or above the watermark {watermark}")
    })
}

/// Every published row below the watermark is exported; at the end of a run, every published
/// row.
pub(super) fn published_rows_exported(
    published: &[RowRead],
    times: &Exported,
    watermark: u64,
    final_state: bool,
) -> Result<(), Breach> {
    let bound = if final_state { u64::MAX } else { watermark };
    let missing = keys_where(published, |r| {
        r.seq < bound && !times.contains_key(r.key.as_str())
    });
    no_rows(&missing, |n| {
        if final_state {
            format!("{n} published rows never exported by the end of the run")
        } else {
            format!("{n} published rows below the watermark {watermark} are in no committed batch")
        }
    })
}

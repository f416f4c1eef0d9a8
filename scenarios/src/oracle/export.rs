//! The export directory against the published rows: every published row below the watermark
//! in exactly one committed batch, with its published values and sequence number; no
//! committed row at or above the watermark; at the end, everything exported.

use std::collections::BTreeMap;
use std::path::Path;

use tally_sim::Fs;

use super::expect::Expectation;
use super::invariant::{Breach, Invariant, first_keys};
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
        .map_err(|e| breach(vec![], format!("reading the export: {e}")))?
    } else {
        0
    };
    if bad_columns {
        return Err(breach(
            vec![],
            "an export batch without the workload's columns".into(),
        ));
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

fn breach(rows: Vec<String>, detail: String) -> Breach {
    Breach::new(Invariant::ExportExactlyOnce, rows, detail)
}

/// No row is in two committed batches.
pub(super) fn exported_at_most_once(times: &Exported) -> Result<(), Breach> {
    let twice: Vec<String> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    if twice.is_empty() {
        return Ok(());
    }
    Err(breach(
        first_keys(&twice),
        format!("{} rows exported more than once", twice.len()),
    ))
}

/// Every exported row is a published row, with its values and sequence number.
pub(super) fn exported_as_published(
    exported: &[RowRead],
    published: &[RowRead],
) -> Result<(), Breach> {
    let by_seq: BTreeMap<u64, &RowRead> = published.iter().map(|r| (r.seq, r)).collect();
    let foreign: Vec<String> = exported
        .iter()
        .filter(|r| by_seq.get(&r.seq).is_none_or(|p| **p != **r))
        .map(|r| r.key.clone())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(breach(
        first_keys(&foreign),
        format!(
            "{} exported rows are not published as exported (value or sequence number differ)",
            foreign.len()
        ),
    ))
}

/// No committed row at or above the watermark: the watermark covers every committed batch.
pub(super) fn nothing_committed_at_or_above(
    exported: &[RowRead],
    watermark: u64,
) -> Result<(), Breach> {
    let above: Vec<String> = exported
        .iter()
        .filter(|r| r.seq >= watermark)
        .map(|r| r.key.clone())
        .collect();
    if above.is_empty() {
        return Ok(());
    }
    Err(breach(
        first_keys(&above),
        format!(
            "{} committed export rows are at or above the watermark {watermark}",
            above.len()
        ),
    ))
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
    let missing: Vec<String> = published
        .iter()
        .filter(|r| r.seq < bound && !times.contains_key(r.key.as_str()))
        .map(|r| r.key.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = if final_state {
        "published rows never exported by the end of the run".to_owned()
    } else {
        format!("published rows below the watermark {watermark} are in no committed batch")
    };
    Err(breach(
        first_keys(&missing),
        format!("{} {what}", missing.len()),
    ))
}

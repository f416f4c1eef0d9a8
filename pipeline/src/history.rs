//! The versions of the table, as `tally inspect` lists them: what each commit did, and
//! whether the version can still be read back (every file it holds is still on disk). Reads the
//! log without changing anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tally_sim::Fs;

use crate::delta::{self, action::Action, commit};
use crate::error::Result;
use crate::layout::{self, Layout};

/// One commit of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    pub version: u64,
    /// When it was made: milliseconds since the Unix epoch (the writer's clock).
    pub timestamp_ms: i64,
    /// `CREATE TABLE`, `WRITE` (rows added) or `OPTIMIZE` (a merge).
    pub operation: String,
    pub files_added: usize,
    pub files_removed: usize,
    /// Rows the commit added to the table (a merge adds none: it only rearranges rows).
    pub rows_added: u64,
    /// Rows and files of the table at this version.
    pub rows: u64,
    pub files: usize,
    /// Files of this version no longer on disk (vacuumed after their retention, or lost): a
    /// version with any cannot be read back.
    pub files_missing: usize,
}

/// Every readable commit, oldest first; the listing stops at the first commit that cannot be
/// read (the store's damage is what `verify` reports).
pub async fn versions<F: Fs>(fs: &F, layout: &Layout) -> Result<Vec<VersionSummary>> {
    let on_disk: BTreeSet<String> = match fs.list_dir(&layout.data_dir()).await {
        Ok(entries) => entries.into_iter().map(|e| e.name).collect(),
        Err(e) if crate::fsutil::is_not_found(&e) => BTreeSet::new(),
        Err(e) => return Err(e.into()),
    };
    // Live files of the version replayed so far, with their rows.
    let mut live: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for (at, version) in delta::commit_versions(fs, layout)
        .await?
        .into_iter()
        .enumerate()
    {
        if version != at as u64 {
            break;
        }
        let Ok(actions) = commit::decode(&fs.read(&layout.commit(version)).await?) else {
            break;
        };
        let mut summary = summarize(version, &actions, &mut live);
        summary.files_missing = live
            .keys()
            .filter(|(level, id)| !on_disk.contains(&layout::table_file_name(*level, *id)))
            .count();
        out.push(summary);
    }
    Ok(out)
}

/// What commit `version` did, applied to the live files it changes.
fn summarize(
    version: u64,
    actions: &[Action],
    live: &mut BTreeMap<(u32, u64), u64>,
) -> VersionSummary {
    let mut summary = VersionSummary {
        version,
        timestamp_ms: 0,
        operation: String::new(),
        files_added: 0,
        files_removed: 0,
        rows_added: 0,
        rows: 0,
        files: 0,
        files_missing: 0,
    };
    for action in actions {
        match action {
            Action::CommitInfo(info) => {
                summary.timestamp_ms = info.timestamp;
                summary.operation.clone_from(&info.operation);
            }
            Action::Add(add) => {
                let rows = serde_json::from_str::<delta::action::Stats>(&add.stats)
                    .map_or(0, |s| s.num_records);
                summary.files_added += 1;
                if add.data_change {
                    summary.rows_added += rows;
                }
                if let Some(key) = layout::parse_table_file_path(&add.path) {
                    live.insert(key, rows);
                }
            }
            Action::Remove(remove) => {
                summary.files_removed += 1;
                if let Some(key) = layout::parse_table_file_path(&remove.path) {
                    live.remove(&key);
                }
            }
            _ => {}
        }
    }
    summary.rows = live.values().sum();
    summary.files = live.len();
    summary
}

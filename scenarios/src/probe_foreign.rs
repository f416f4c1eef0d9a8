//! The foreign-file probe: another program's file appears, while the pipeline runs, under the
//! name the pipeline is about to take — the next commit's version, or the next table file's
//! name. One writer per root holds the lock, so only a second writer that ignores it (or a
//! user's copy) can do that; a sweep never does, so this probe does it on copies of the final
//! disk. The pipeline must refuse to publish, naming the file; must leave the foreign file as
//! it found it; and once the file is moved out (the way out its error names), recovery must
//! publish every acknowledged row.

use std::path::{Path, PathBuf};

use tally_pipeline::{Config, Layout, Result as PipelineResult, layout, read};
use tally_sim::{CreateMode, Fs, FsFile, SimFs};

use super::oracle::{Breach, Invariant, ROOT};
use super::probe_store::open;
use super::trace::Trace;
use super::workload::Workload;

const PROBE_SOURCE: &str = "foreign-probe";
const PROBE_ROWS: u64 = 3;
/// What the other program wrote: a line any Delta reader would parse as a commit.
const FOREIGN: &[u8] =
    b"{\"commitInfo\":{\"operation\":\"WRITE\",\"engine\":\"another writer\"}}\n";

/// Which name the foreign file takes.
#[derive(Clone, Copy, Debug)]
enum Taken {
    /// The next commit's version in `_delta_log/`.
    CommitVersion,
    /// The next table file's name in `data/` (the level-0 file the flush stages).
    TableName,
}

/// Runs the probe for both names on copies of `disk`.
pub async fn foreign_files(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    trace: &Trace,
) -> Result<(), Breach> {
    for taken in [Taken::CommitVersion, Taken::TableName] {
        one_name(disk, config, workload, taken, trace).await?;
    }
    Ok(())
}

/// What the probe saw, for [`judge`].
#[derive(Debug)]
struct Seen {
    /// The path taken, relative to the root.
    name: String,
    /// The flush's error message, or `None` if it reported success.
    refused: Option<String>,
    /// The foreign file's bytes after the flush.
    foreign_after: Option<Vec<u8>>,
    /// Rows published before the probe, and after moving the file out, reopening and flushing.
    rows_before: u64,
    rows_after: PipelineResult<u64>,
}

async fn one_name(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    taken: Taken,
    trace: &Trace,
) -> Result<(), Breach> {
    let layout = Layout::new(ROOT);
    let copy = disk.snapshot();
    let next_id = next_file_id(&copy, &layout).await?;
    let pipeline = open(&copy, config)
        .await
        .map_err(|e| failed("opening", e))?;
    let before = pipeline.snapshot().await;
    pipeline
        .ingest(PROBE_SOURCE, workload.batch(PROBE_SOURCE, 0, PROBE_ROWS))
        .await
        .map_err(|e| failed("ingesting into", e))?;
    let path = match taken {
        Taken::CommitVersion => layout.commit(before.version + 1),
        Taken::TableName => layout.table_file(0, next_id),
    };
    write_foreign(&copy, &path).await?;
    let refused = pipeline.flush().await.err().map(|e| e.to_string());
    drop(pipeline);
    let foreign_after = copy.read(&path).await.ok();
    let _ = copy.unlink(&path).await;
    let rows_after = reopen_and_flush(&copy, config).await;
    let seen = Seen {
        name: layout.relative(&path),
        refused,
        foreign_after,
        rows_before: before.rows,
        rows_after,
    };
    judge(&seen)?;
    trace.line(format!(
        "probe foreign file at {}: refused ({}), left as found; moved out, every row published",
        seen.name,
        seen.refused.as_deref().unwrap_or_default()
    ));
    Ok(())
}

/// `fails-closed`: the flush refused naming the file, the file is as the other program left
/// it, and after it is moved out the published rows are those before plus the probe's.
fn judge(seen: &Seen) -> Result<(), Breach> {
    let breach = |what: String| {
        Breach::new(
            Invariant::FailsClosed,
            vec![],
            format!("foreign file at {}: {what}", seen.name),
        )
    };
    match &seen.refused {
        None => return Err(breach("the flush reported success".into())),
        Some(e) if !e.contains(&seen.name) => {
            return Err(breach(format!("the refusal does not name the file: {e}")));
        }
        Some(_) => {}
    }
    if seen.foreign_after.as_deref() != Some(FOREIGN) {
        return Err(breach(
            "tally wrote over or removed the other program's file".into(),
        ));
    }
    match &seen.rows_after {
        Ok(rows) if *rows == seen.rows_before + PROBE_ROWS => Ok(()),
        Ok(rows) => Err(breach(format!(
            "with the file moved out, {rows} rows are published; expected {} before and {PROBE_ROWS} acknowledged",
            seen.rows_before
        ))),
        Err(e) => Err(breach(format!(
            "with the file moved out, the store does not open and flush: {e}"
        ))),
    }
}

/// The id the next table file takes, as recovery computes it: past the published table's
/// `next_file_id` and past every table file in `data/` (an orphan's id is never reused).
async fn next_file_id(disk: &SimFs, layout: &Layout) -> Result<u64, Breach> {
    let manifest = read::newest_manifest(disk, layout)
        .await
        .map_err(|e| failed("reading the table of", e))?;
    let names = disk
        .list_dir(&layout.data_dir())
        .await
        .map_err(|e| failed("listing data/ of", e.into()))?;
    let orphans = names
        .iter()
        .filter_map(|entry| layout::parse_table_file_name(&entry.name))
        .map(|(_, id)| id + 1);
    Ok(orphans.fold(manifest.next_file_id, u64::max))
}

async fn write_foreign(disk: &SimFs, path: &Path) -> Result<(), Breach> {
    let io = |e: std::io::Error| {
        Breach::new(
            Invariant::FailsClosed,
            vec![],
            format!("probe: writing a foreign file at {}: {e}", path.display()),
        )
    };
    let file = disk.create(path, CreateMode::Exclusive).await.map_err(io)?;
    file.write_at(0, FOREIGN).await.map_err(io)?;
    file.sync().await.map_err(io)?;
    let dir: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    disk.sync_dir(&dir).await.map_err(io)
}

async fn reopen_and_flush(disk: &SimFs, config: &Config) -> PipelineResult<u64> {
    let pipeline = open(disk, config).await?;
    pipeline.flush().await?;
    Ok(pipeline.snapshot().await.rows)
}

fn failed(what: &str, e: tally_pipeline::Error) -> Breach {
    Breach::new(
        Invariant::RecoverySucceeds,
        vec![],
        format!("foreign-file probe: {what} the final disk: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::{FOREIGN, PROBE_ROWS, Seen, judge};

    fn seen() -> Seen {
        Seen {
            name: "_delta_log/00000000000000000007.json".into(),
            refused: Some(
                "/store/_delta_log/00000000000000000007.json: a commit already exists".into(),
            ),
            foreign_after: Some(FOREIGN.to_vec()),
            rows_before: 40,
            rows_after: Ok(40 + PROBE_ROWS),
        }
    }

    #[test]
    fn the_foreign_file_judge_passes_a_refusal_and_fails_every_other_outcome() {
        assert!(judge(&seen()).is_ok());
        let mut success = seen();
        success.refused = None;
        let mut unnamed = seen();
        unnamed.refused = Some("I/O error: file exists".into());
        let mut overwritten = seen();
        overwritten.foreign_after = Some(b"tally's commit".to_vec());
        let mut removed = seen();
        removed.foreign_after = None;
        let mut lost = seen();
        lost.rows_after = Ok(40);
        for (what, s) in [
            ("success", success),
            ("unnamed", unnamed),
            ("overwritten", overwritten),
            ("removed", removed),
            ("lost rows", lost),
        ] {
            assert!(judge(&s).is_err(), "{what} must fail the probe");
        }
    }
}

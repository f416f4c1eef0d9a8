//! What another engine sees of the store, read through the harness's own Delta reader
//! ([`super::delta`]): the newest version whole, before recovery and after it
//! (`delta-version-complete`); after recovery, exactly the rows tally says are published
//! (`delta-rows-match`); every version a reader is owed still whole (`delta-time-travel`).

use std::path::Path;

use tally_sim::Fs;

use super::delta::{DeltaCache, DeltaLog, VersionRead, read_log, read_version};
use super::invariant::{Breach, Invariant, SHOWN_ROWS};
use crate::workload::RowRead;

/// `delta-version-complete`: the newest version the Delta reader finds at `root` reads whole
/// (no table at all is fine: nothing was committed yet). `when` names the moment for the
/// breach. Returns the log and what the newest version holds.
pub(super) async fn newest_version_complete<F: Fs>(
    fs: &F,
    root: &Path,
    cache: &DeltaCache,
    when: &str,
) -> Result<Option<(DeltaLog, VersionRead)>, Breach> {
    let breach = |e: super::delta::DeltaError| {
        Breach::new(
            Invariant::DeltaVersionComplete,
            vec![],
            format!("{when}, a Delta reader of the newest version: {e}"),
        )
    };
    let Some(log) = read_log(fs, root, cache).await.map_err(breach)? else {
        return Ok(None);
    };
    let read = read_version(fs, root, &log, log.newest(), cache)
        .await
        .map_err(breach)?;
    Ok(Some((log, read)))
}

/// `delta-rows-match`: after recovery the newest version a Delta reader finds is the one the
/// pipeline opened (`version`), and it holds exactly the `published` rows: none missing, none
/// extra.
pub(super) fn delta_rows_match(
    read: Option<&VersionRead>,
    version: u64,
    published: &[RowRead],
) -> Result<(), Breach> {
    let Some(read) = read else {
        return Err(Breach::new(
            Invariant::DeltaRowsMatch,
            vec![],
            format!("a Delta reader finds no table; the pipeline opened version {version}"),
        ));
    };
    if read.version != version {
        return Err(Breach::new(
            Invariant::DeltaRowsMatch,
            vec![],
            format!(
                "a Delta reader finds version {} as the newest; the pipeline opened version {version}",
                read.version
            ),
        ));
    }
    let missing: Vec<String> = published
        .iter()
        .filter(|row| {
            i64::try_from(row.seq).map_or(true, |seq| read.seqs.binary_search(&seq).is_err())
        })
        .map(|row| row.key.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Breach::new(
            Invariant::DeltaRowsMatch,
            missing.iter().take(SHOWN_ROWS).cloned().collect(),
            format!(
                "{} published rows are not in version {version} as a Delta reader reads it",
                missing.len()
            ),
        ));
    }
    if read.seqs.len() != published.len() {
        let mut ours: Vec<u64> = published.iter().map(|r| r.seq).collect();
        ours.sort_unstable();
        let extra: Vec<String> = read
            .seqs
            .iter()
            .filter(|&&seq| u64::try_from(seq).map_or(true, |s| ours.binary_search(&s).is_err()))
            .take(SHOWN_ROWS)
            .map(|seq| format!("tally_seq {seq}"))
            .collect();
        return Err(Breach::new(
            Invariant::DeltaRowsMatch,
            extra,
            format!(
                "a Delta reader reads {} rows from version {version}; {} are published",
                read.seqs.len(),
                published.len()
            ),
        ));
    }
    Ok(())
}

/// `delta-time-travel`: every version a reader is owed under `retention_ms`
/// ([`DeltaLog::within_retention`]) reads whole. Returns how many versions were read.
pub(super) async fn versions_within_retention_complete<F: Fs>(
    fs: &F,
    root: &Path,
    log: &DeltaLog,
    retention_ms: u64,
    cache: &DeltaCache,
) -> Result<u64, Breach> {
    let mut read = 0;
    for version in 0..log.newest() {
        if !log.within_retention(version, retention_ms) {
            continue;
        }
        read_version(fs, root, log, version, cache)
            .await
            .map_err(|e| time_travel_breach(version, retention_ms, &e))?;
        read += 1;
    }
    Ok(read)
}

/// The breach of a version a reader is owed that does not read whole.
pub(crate) fn time_travel_breach(
    version: u64,
    retention_ms: u64,
    e: &super::delta::DeltaError,
) -> Breach {
    Breach::new(
        Invariant::DeltaTimeTravel,
        vec![],
        format!(
            "version {version}, whose removed files are all within the retention of {retention_ms} ms, does not read: {e}"
        ),
    )
}

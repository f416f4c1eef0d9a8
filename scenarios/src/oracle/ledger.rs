//! The ledger against the rows on disk: per source, it counts exactly the rows there, at least
//! the acknowledged ones, and at the end every row of a complete source.

use std::collections::{BTreeMap, BTreeSet};

use tally_pipeline::SourceState;

use super::expect::Expectation;
use super::invariant::{Breach, Invariant};
use crate::workload::{RowRead, parse_key};

/// Checks the ledger source by source (in name order), each invariant in turn; the first
/// broken one is reported.
pub(super) fn check_ledger(
    rows: &[RowRead],
    ledger: &BTreeMap<String, SourceState>,
    expect: &Expectation,
) -> Result<(), Breach> {
    let on_disk = rows_per_source(rows);
    let names = ledger
        .keys()
        .map(String::as_str)
        .chain(on_disk.keys().copied())
        .collect::<BTreeSet<_>>();
    for name in names {
        let counted = ledger.get(name).map_or(0, |s| s.rows);
        let found = on_disk.get(name).copied().unwrap_or(0);
        ledger_counts_disk(name, counted, found)?;
        ledger_keeps_fingerprint(name, ledger.get(name))?;
        ledger_holds_acked(name, counted, expect)?;
        if expect.final_state {
            source_complete_at_end(name, ledger.get(name), expect)?;
        }
    }
    Ok(())
}

/// How many rows of each source are on disk.
fn rows_per_source(rows: &[RowRead]) -> BTreeMap<&str, u64> {
    let mut on_disk: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        if let Some((source, _)) = parse_key(&row.key) {
            *on_disk.entry(source).or_default() += 1;
        }
    }
    on_disk
}

/// `ledger-matches`: the ledger counts exactly the rows of the source on disk.
fn ledger_counts_disk(name: &str, counted: u64, found: u64) -> Result<(), Breach> {
    if counted == found {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::LedgerMatches,
        vec![],
        format!("source {name}: the ledger counts {counted} rows, the disk holds {found}"),
    ))
}

/// `ledger-matches`: a source the ledger knows carries the fingerprint its parts were
/// ingested with (workloads bind `workload::fingerprint`), through every crash and recovery.
fn ledger_keeps_fingerprint(name: &str, state: Option<&SourceState>) -> Result<(), Breach> {
    let Some(state) = state.filter(|s| s.is_known()) else {
        return Ok(());
    };
    let want = crate::workload::fingerprint(name);
    if state.fingerprint == Some(want) {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::LedgerMatches,
        vec![],
        format!(
            "source {name}: the ledger binds content {:?}, its parts were ingested as {want}",
            state.fingerprint
        ),
    ))
}

/// `ledger-matches`: the ledger holds at least the acknowledged rows.
fn ledger_holds_acked(name: &str, counted: u64, expect: &Expectation) -> Result<(), Breach> {
    let acked = expect.sources.get(name).map_or(0, |p| p.acked);
    if counted >= acked {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::LedgerMatches,
        vec![],
        format!("source {name}: the ledger counts {counted} rows, {acked} were acknowledged"),
    ))
}

/// `run-completes`: at the end of a run, the ledger counts every row attempted and marks the
/// source complete.
fn source_complete_at_end(
    name: &str,
    state: Option<&SourceState>,
    expect: &Expectation,
) -> Result<(), Breach> {
    let counted = state.map_or(0, |s| s.rows);
    let attempted = expect.sources.get(name).map_or(0, |p| p.attempted);
    let complete = state.is_some_and(|s| s.complete);
    if complete && counted == attempted {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::RunCompletes,
        vec![],
        format!(
            "source {name}: at the end the ledger counts {counted} of {attempted} rows, complete: {complete}"
        ),
    ))
}

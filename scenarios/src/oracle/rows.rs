//! The rows on disk against what was ingested: nothing invented, values as ingested, at most
//! once, every acknowledged row (at the end, every row of the run) present, sequence numbers
//! unique.

use std::collections::BTreeMap;

use super::expect::{Expectation, SourceProgress};
use super::invariant::{Breach, Invariant, SHOWN_ROWS, no_rows};
use crate::workload::{RowRead, key, parse_key};

/// Row numbers present, per source, sorted: rows present twice and rows missing are found from
/// these without making the key of every expected row.
type Present<'a> = BTreeMap<&'a str, Vec<u64>>;

/// Checks the rows read against the expectation, each invariant in turn; the first broken one
/// is reported. `altered` holds the keys of the rows whose columns differ from what the
/// workload ingests under their key ([`super::on_disk::altered_keys`]).
pub(super) fn check_rows(
    rows: &[RowRead],
    altered: &[String],
    expect: &Expectation,
) -> Result<(), Breach> {
    let (mut present, invented) = row_numbers(rows, expect);
    nothing_invented(&invented)?;
    values_as_ingested(altered)?;
    at_most_once(&present)?;
    for numbers in present.values_mut() {
        numbers.dedup();
    }
    if expect.final_state {
        all_rows_present_at_end(&present, expect)?;
    } else {
        acked_rows_present(&present, expect)?;
    }
    unique_seq(rows)
}

/// The row numbers of `rows` per source (sorted), and the keys of rows that were never
/// attempted: keys no workload makes, of sources not in the run, or past what was attempted.
fn row_numbers<'a>(rows: &'a [RowRead], expect: &Expectation) -> (Present<'a>, Vec<String>) {
    let mut invented = Vec::new();
    let mut present: Present = BTreeMap::new();
    for row in rows {
        match parse_key(&row.key) {
            Some((source, n)) if expect.sources.get(source).is_some_and(|p| n < p.attempted) => {
                present.entry(source).or_default().push(n);
            }
            _ => invented.push(row.key.clone()),
        }
    }
    for numbers in present.values_mut() {
        numbers.sort_unstable();
    }
    (present, invented)
}

/// `nothing-invented`: no row that was never handed to `ingest`.
fn nothing_invented(invented: &[String]) -> Result<(), Breach> {
    no_rows(Invariant::NothingInvented, invented, |n| {
        format!("{n} rows that were never ingested")
    })
}

/// `nothing-invented`: every row with the values it was handed to `ingest` with.
fn values_as_ingested(altered: &[String]) -> Result<(), Breach> {
    no_rows(Invariant::NothingInvented, altered, |n| {
        format!("{n} rows whose values differ from those ingested")
    })
}

/// `at-most-once`: no row number of a source present twice.
fn at_most_once(present: &Present) -> Result<(), Breach> {
    let mut twice = Vec::new();
    for (source, numbers) in present {
        for run in numbers.chunk_by(|a, b| a == b) {
            if run.len() > 1 {
                twice.push(key(source, run[0]));
            }
        }
    }
    twice.sort_unstable();
    no_rows(Invariant::AtMostOnce, &twice, |n| {
        format!("{n} rows present more than once")
    })
}

/// `acked-rows-present`: every acknowledged row is on disk. (At the end of a run,
/// [`all_rows_present_at_end`] asks for more and is checked instead.)
fn acked_rows_present(present: &Present, expect: &Expectation) -> Result<(), Breach> {
    missing(present, expect, |p| p.acked)
        .none(Invariant::AckedRowsPresent, "acknowledged rows missing")
}

/// `run-completes`: at the end of a run, every row attempted is on disk.
fn all_rows_present_at_end(present: &Present, expect: &Expectation) -> Result<(), Breach> {
    missing(present, expect, |p| p.attempted).none(
        Invariant::RunCompletes,
        "rows of the run missing at its end",
    )
}

/// Rows missing: the first few keys, and how many in all.
struct Missing {
    shown: Vec<String>,
    count: u64,
}

impl Missing {
    /// Holds when no row is missing; otherwise a breach of `invariant`, counting `what`.
    fn none(self, invariant: Invariant, what: &str) -> Result<(), Breach> {
        if self.count == 0 {
            return Ok(());
        }
        let count = self.count;
        Err(Breach::new(
            invariant,
            self.shown,
            format!("{count} {what}"),
        ))
    }
}

/// The rows `0..wanted` of each source that are not present.
fn missing(
    present: &Present,
    expect: &Expectation,
    wanted: impl Fn(&SourceProgress) -> u64,
) -> Missing {
    let mut lost = Vec::new();
    let mut lost_count = 0u64;
    for (source, progress) in &expect.sources {
        let wanted = wanted(progress);
        let numbers = present.get(source.as_str()).map_or(&[][..], Vec::as_slice);
        // Counting what is found below `wanted` by bisection needs them sorted and distinct.
        debug_assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(numbers.last().is_none_or(|&n| n < progress.attempted));
        let found = numbers.partition_point(|&n| n < wanted);
        if found as u64 == wanted {
            continue;
        }
        lost_count += wanted - found as u64;
        let mut next = numbers.iter().peekable();
        for n in 0..wanted {
            if lost.len() >= SHOWN_ROWS {
                break;
            }
            if next.next_if_eq(&&n).is_none() {
                lost.push(key(source, n));
            }
        }
    }
    Missing {
        shown: lost,
        count: lost_count,
    }
}

/// `unique-seq`: no sequence number given to two rows.
fn unique_seq(rows: &[RowRead]) -> Result<(), Breach> {
    let mut seqs: BTreeMap<u64, &str> = BTreeMap::new();
    for row in rows {
        if let Some(other) = seqs.insert(row.seq, &row.key) {
            return Err(Breach::new(
                Invariant::UniqueSeq,
                vec![other.to_owned(), row.key.clone()],
                format!("sequence number {} given to two rows", row.seq),
            ));
        }
    }
    Ok(())
}

/// `run-completes`: at the end of a run nothing is left staged: the final flush published it.
pub(super) fn nothing_staged_at_end(staged_rows: u64) -> Result<(), Breach> {
    if staged_rows == 0 {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::RunCompletes,
        vec![],
        format!("{staged_rows} rows still staged after the final flush"),
    ))
}

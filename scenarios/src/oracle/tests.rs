//! Each check can fail: the oracle is fed rows that break exactly one invariant.

use std::collections::BTreeMap;

use super::expect::{Expectation, SourceProgress};
use super::export::{
    exported_as_published, exported_at_most_once, nothing_committed_at_or_above,
    published_rows_exported, times_exported,
};
use super::invariant::{Breach, Invariant};
use super::ledger::check_ledger;
use super::on_disk::altered_keys;
use super::rows::check_rows;
use crate::workload::{RowRead, key, payload_of, value_of};

fn row(source: &str, n: u64, seq: u64) -> RowRead {
    let key = key(source, n);
    RowRead {
        value: value_of(&key),
        payload: payload_of(&key, 8),
        key,
        seq,
        extra: vec![],
    }
}

fn expect(acked: u64, attempted: u64) -> Expectation {
    Expectation {
        sources: BTreeMap::from([("s".to_owned(), SourceProgress { acked, attempted })]),
        payload_bytes: 8,
        final_state: false,
        ..Expectation::default()
    }
}

fn good() -> Vec<RowRead> {
    (0..4).map(|n| row("s", n, 10 + n)).collect()
}

/// The row checks as the oracle runs them.
fn judge(rows: &[RowRead], e: &Expectation) -> Result<(), Breach> {
    check_rows(rows, &altered_keys(rows, e), e)
}

fn invariant(result: Result<(), Breach>) -> Invariant {
    result.expect_err("the check must fail").invariant
}
#[test]
fn intact_rows_pass() {
    judge(&good(), &expect(4, 4)).unwrap();
    judge(&good()[..3], &expect(3, 4)).unwrap();
}

#[test]
fn a_lost_acknowledged_row_is_caught() {
    let mut rows = good();
    rows.remove(1);
    let breach = judge(&rows, &expect(4, 4)).unwrap_err();
    assert_eq!(breach.invariant, Invariant::AckedRowsPresent);
    assert_eq!(breach.rows, vec!["s#1"]);
}

#[test]
fn lost_rows_are_counted_and_the_first_named() {
    let rows: Vec<RowRead> = (0..20)
        .filter(|n| n % 3 == 0)
        .map(|n| row("s", n, n))
        .collect();
    let breach = judge(&rows, &expect(20, 20)).unwrap_err();
    assert_eq!(breach.invariant, Invariant::AckedRowsPresent);
    assert_eq!(breach.rows, vec!["s#1", "s#2", "s#4", "s#5", "s#7"]);
    assert!(breach.detail.starts_with("13 "), "{}", breach.detail);
}

#[test]
fn a_key_no_workload_makes_is_invented_even_if_it_names_a_row() {
    let mut rows = good();
    let mut odd = row("s", 1, 99);
    odd.key = "s#01".to_owned();
    odd.value = value_of(&odd.key);
    odd.payload = payload_of(&odd.key, 8);
    rows[1] = odd;
    assert_eq!(
        invariant(judge(&rows, &expect(4, 4))),
        Invariant::NothingInvented
    );
}

#[test]
fn a_duplicate_row_is_caught() {
    let mut rows = good();
    rows.push(row("s", 2, 99));
    rows.push(row("s", 2, 98));
    rows.push(row("s", 0, 97));
    let breach = judge(&rows, &expect(4, 4)).unwrap_err();
    assert_eq!(breach.invariant, Invariant::AtMostOnce);
    assert_eq!(breach.rows, vec!["s#0", "s#2"]);
}

#[test]
fn an_invented_row_is_caught() {
    let mut rows = good();
    rows.push(row("s", 7, 99));
    assert_eq!(
        invariant(judge(&rows, &expect(4, 4))),
        Invariant::NothingInvented
    );
    let mut rows = good();
    rows.push(row("other", 0, 99));
    assert_eq!(
        invariant(judge(&rows, &expect(4, 4))),
        Invariant::NothingInvented
    );
}

#[test]
fn an_altered_value_is_caught() {
    let mut rows = good();
    rows[2].value ^= 1;
    assert_eq!(
        invariant(judge(&rows, &expect(4, 4))),
        Invariant::NothingInvented
    );
    let mut rows = good();
    rows[0].payload.push('x');
    assert_eq!(
        invariant(judge(&rows, &expect(4, 4))),
        Invariant::NothingInvented
    );
}

#[test]
fn a_reused_sequence_number_is_caught() {
    let mut rows = good();
    rows[3].seq = rows[0].seq;
    assert_eq!(invariant(judge(&rows, &expect(4, 4))), Invariant::UniqueSeq);
}

#[test]
fn an_unfinished_run_is_caught_at_its_end() {
    let mut e = expect(3, 4);
    e.final_state = true;
    assert_eq!(invariant(judge(&good()[..3], &e)), Invariant::RunCompletes);
}

#[test]
fn a_ledger_that_disagrees_with_the_disk_is_caught() {
    use tally_pipeline::SourceState;
    let state = |rows, complete| SourceState {
        rows,
        complete,
        fingerprint: Some(crate::workload::fingerprint("s")),
    };
    let ledger = |rows, complete| BTreeMap::from([("s".to_owned(), state(rows, complete))]);
    check_ledger(&good(), &ledger(4, false), &expect(4, 4)).unwrap();
    for fingerprint in [None, Some(crate::workload::fingerprint("t"))] {
        let other = SourceState {
            fingerprint,
            ..state(4, false)
        };
        let ledger = BTreeMap::from([("s".to_owned(), other)]);
        assert_eq!(
            invariant(check_ledger(&good(), &ledger, &expect(4, 4))),
            Invariant::LedgerMatches,
            "a ledger that lost or changed a source's fingerprint"
        );
    }
    for wrong in [3, 5] {
        assert_eq!(
            invariant(check_ledger(&good(), &ledger(wrong, false), &expect(3, 4))),
            Invariant::LedgerMatches
        );
    }
    assert_eq!(
        invariant(check_ledger(&good()[..2], &ledger(2, false), &expect(3, 4))),
        Invariant::LedgerMatches,
        "a ledger below what was acknowledged"
    );
    let mut e = expect(4, 4);
    e.final_state = true;
    assert_eq!(
        invariant(check_ledger(&good(), &ledger(4, false), &e)),
        Invariant::RunCompletes,
        "a source not complete at the end"
    );
}

#[test]
fn a_row_in_two_committed_batches_is_caught() {
    let mut exported = good();
    exported.push(row("s", 1, 11));
    assert_eq!(
        invariant(exported_at_most_once(&times_exported(&exported))),
        Invariant::ExportExactlyOnce
    );
    exported_at_most_once(&times_exported(&good())).unwrap();
}

#[test]
fn an_exported_row_unlike_its_published_one_is_caught() {
    let published = good();
    exported_as_published(&published[..2], &published).unwrap();
    let mut altered = published[..2].to_vec();
    altered[1].value ^= 1;
    assert_eq!(
        invariant(exported_as_published(&altered, &published)),
        Invariant::ExportExactlyOnce
    );
    let mut moved = published[..2].to_vec();
    moved[0].seq = 99;
    assert_eq!(
        invariant(exported_as_published(&moved, &published)),
        Invariant::ExportExactlyOnce,
        "a sequence number nothing was published under"
    );
}

#[test]
fn a_committed_row_at_or_above_the_watermark_is_caught() {
    let exported = &good()[..2];
    nothing_committed_at_or_above(exported, 12).unwrap();
    assert_eq!(
        invariant(nothing_committed_at_or_above(exported, 11)),
        Invariant::ExportExactlyOnce
    );
}

#[test]
fn a_published_row_left_unexported_is_caught_below_the_watermark_and_at_the_end() {
    let published = good();
    let exported = &published[..2];
    let times = times_exported(exported);
    published_rows_exported(&published, &times, 12, false).unwrap();
    assert_eq!(
        invariant(published_rows_exported(&published, &times, 13, false)),
        Invariant::ExportExactlyOnce
    );
    let breach = published_rows_exported(&published, &times, 12, true).unwrap_err();
    assert_eq!(
        breach.rows,
        vec!["s#2", "s#3"],
        "at the end, every published row"
    );
}

#[test]
fn a_repaired_sequence_reservation_is_a_violation_unless_a_control_makes_the_disk_lie() {
    let mut report = tally_pipeline::RecoveryReport::default();
    let honest = expect(1, 1);
    super::recovery::repairs_explained(&report, &honest).unwrap();
    report.seq_reservation_repaired = Some((32, 40));
    let breach = super::recovery::repairs_explained(&report, &honest).unwrap_err();
    assert_eq!(breach.invariant, Invariant::RepairsExplained);
    assert!(breach.detail.contains("numbers used up to 39"), "{breach}");
    let lying = Expectation {
        disk_may_lie: true,
        ..honest
    };
    super::recovery::repairs_explained(&report, &lying).unwrap();
}

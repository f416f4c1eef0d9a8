//! The bulk load's promises (protocol "Bulk load"), one claim per test, on the simulated disk:
//! each row written once, straight into table files, each file committed with its source's
//! ledger; resumable from the ledger; published in sequence order beside streamed rows.

mod support;

use std::collections::BTreeSet;

use tally_pipeline::{Error, Fingerprint, Layout};
use tally_sim::{CrashModel, Fs, SimFs};

use support::{ROOT, key, open, rows, rows_on_disk, small_config};

fn content(n: u64) -> Option<Fingerprint> {
    Some(Fingerprint {
        bytes: n,
        checksum: n ^ 0x5eed,
    })
}

/// Loads rows `from..to` of `source` in batches of `batch`, committing with `last`.
async fn load<F: Fs>(
    p: &tally_pipeline::Pipeline<F, tally_sim::SystemClock>,
    source: &str,
    (from, to, batch): (u64, u64, u64),
    last: bool,
) -> tally_pipeline::Result<u64> {
    let mut load = p.bulk_load(source, content(7)).await?;
    let mut written = 0;
    let mut first = from;
    while first < to {
        let n = batch.min(to - first);
        if let Some(ack) = load.write(first, rows(source, first, n)).await? {
            written += ack.rows_written;
        }
        first += n;
    }
    Ok(written + load.commit(last).await?.rows_written)
}

#[tokio::test]
async fn a_bulk_load_writes_no_log_and_commits_each_file_with_its_ledger() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let written = load(&p, "bulk", (0, 120, 9), true).await.unwrap();
    assert_eq!(written, 120);
    let stats = p.stats();
    assert!(
        stats.bulk_files >= 2,
        "segments of 1500 bytes roll over: {stats:?}"
    );
    assert_eq!((stats.group_commits, stats.parts_committed), (0, 0));
    let state = p.source_state("bulk").await;
    assert_eq!((state.rows, state.complete), (120, true));
    let found = rows_on_disk(&fs, &p).await;
    let expected: BTreeSet<String> = (0..120).map(|r| key("bulk", r)).collect();
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(found.values().all(|seqs| seqs.len() == 1));
    let log = fs.list_dir(&Layout::new(ROOT).log_dir()).await.unwrap();
    assert!(log.is_empty(), "no log segment: {log:?}");
    // Every commit after the first published a file and the ledger together.
    let manifest = p.manifest().await;
    assert_eq!(manifest.sources["bulk"].rows, 120);
    assert_eq!(manifest.rows(), 120);
}

/// A bulk load drains the log before each file but merges nothing: a merge would hold its own
/// reader and writer beside the load's batches. The files wait for the next flush.
#[tokio::test]
async fn a_bulk_load_merges_nothing_until_the_flush_after_it() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let fan_in = small_config().merge_fan_in as u64;
    load(&p, "bulk", (0, 400, 9), true).await.unwrap();
    let stats = p.stats();
    assert!(
        stats.bulk_files > fan_in,
        "more level-0 files than a merge takes: {stats:?}"
    );
    assert_eq!(stats.merges, 0, "{stats:?}");
    p.flush().await.unwrap();
    assert!(p.stats().merges > 0, "the flush merges: {:?}", p.stats());
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 400);
    assert!(found.values().all(|seqs| seqs.len() == 1));
}

#[tokio::test]
async fn a_bulk_load_resumes_from_the_ledger_and_skips_acknowledged_rows() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    assert_eq!(load(&p, "s", (0, 50, 10), false).await.unwrap(), 50);
    // A part beyond the rows acknowledged is refused.
    let mut again = p.bulk_load("s", content(7)).await.unwrap();
    let gap = again.write(51, rows("s", 51, 3)).await.unwrap_err();
    assert!(matches!(gap, Error::SourceGap { .. }), "{gap}");
    drop(again);
    // A rerun from row 0: only rows 50.. are written.
    assert_eq!(load(&p, "s", (0, 80, 7), true).await.unwrap(), 30);
    // Complete: nothing more, even past its end.
    assert_eq!(load(&p, "s", (0, 90, 90), true).await.unwrap(), 0);
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 80);
    assert!(found.values().all(|seqs| seqs.len() == 1));
}

#[tokio::test]
async fn a_bulk_load_of_changed_content_is_refused_before_anything_is_written() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    load(&p, "s", (0, 20, 20), false).await.unwrap();
    let version = p.snapshot().await.version;
    let refused = p.bulk_load("s", content(8)).await.unwrap_err();
    assert!(matches!(refused, Error::SourceChanged { .. }), "{refused}");
    assert_eq!(p.snapshot().await.version, version);
}

#[tokio::test]
async fn an_empty_bulk_load_completes_its_source_with_no_rows() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let ack = p
        .bulk_load("empty", content(0))
        .await
        .unwrap()
        .commit(true)
        .await
        .unwrap();
    assert!(ack.source_complete);
    let state = p.source_state("empty").await;
    assert_eq!((state.rows, state.complete), (0, true));
    assert!(p.manifest().await.sources["empty"].complete);
}

#[tokio::test]
async fn a_bulk_load_of_a_complete_source_writes_nothing() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    load(&p, "s", (0, 20, 20), true).await.unwrap();
    let version = p.snapshot().await.version;
    let mut more = p.bulk_load("s", content(7)).await.unwrap();
    assert_eq!(more.write(20, rows("s", 20, 5)).await.unwrap(), None);
    assert_eq!(more.commit(false).await.unwrap().rows_written, 0);
    assert_eq!(p.snapshot().await.version, version);
    assert_eq!(p.source_state("s").await.rows, 20);
}

/// A load that read the ledger before another caller acknowledged rows of its source starts
/// its file from the ledger as it is when the file opens: nothing is written twice, and the
/// pipeline is not stopped by a refused commit.
#[tokio::test]
async fn a_bulk_load_reads_the_ledger_again_when_it_opens_a_file() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    let mut late = p.bulk_load("s", content(7)).await.unwrap();
    assert_eq!(load(&p, "s", (0, 20, 20), false).await.unwrap(), 20);
    assert_eq!(late.write(0, rows("s", 0, 30)).await.unwrap(), None);
    assert_eq!(late.commit(true).await.unwrap().rows_written, 10);
    let found = rows_on_disk(&fs, &p).await;
    assert_eq!(found.len(), 30);
    assert!(found.values().all(|seqs| seqs.len() == 1));
    assert!(p.source_state("s").await.complete);
}

/// Rows streamed before a bulk load are published before it, and the bulk rows are numbered
/// after them: the table's rows are published in sequence order, which an exporter's
/// watermark relies on.
#[tokio::test]
async fn streamed_rows_are_published_before_a_bulk_load_numbered_after_them() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    p.ingest_part("streamed", 0, rows("streamed", 0, 6), false)
        .await
        .unwrap();
    let before = p.snapshot().await.rows;
    assert_eq!(before, 0, "streamed rows wait in the log");
    load(&p, "bulk", (0, 30, 10), true).await.unwrap();
    let manifest = p.manifest().await;
    assert_eq!(manifest.sources["streamed"].rows, 6, "staged first");
    let found = rows_on_disk(&fs, &p).await;
    let streamed_max = (0..6).map(|r| found[&key("streamed", r)][0]).max().unwrap();
    let bulk_min = (0..30).map(|r| found[&key("bulk", r)][0]).min().unwrap();
    assert!(streamed_max < bulk_min, "{streamed_max} vs {bulk_min}");
    p.ingest_part("streamed", 6, rows("streamed", 6, 4), true)
        .await
        .unwrap();
    p.flush().await.unwrap();
    assert_eq!(p.snapshot().await.rows, 40);
}

/// A crash at any call of a bulk load leaves, after recovery, the source's rows of the files
/// whose commits were durable, each once, and the ledger saying exactly that: a rerun from
/// the ledger then completes the source exactly.
#[tokio::test]
async fn every_crash_point_of_a_bulk_load_recovers_to_a_committed_prefix() {
    let fs = SimFs::new();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    drop(p);
    let start = fs.op_count();
    let (p, _) = open(&fs, small_config()).await.unwrap();
    load(&p, "s", (0, 60, 8), true).await.unwrap();
    drop(p);
    let total_ops = fs.op_count();
    // Replay the same load on copies, crashing after every call under two models.
    let (mut checked, mut prefixes) = (0, BTreeSet::new());
    for stop in start..total_ops {
        for model in [CrashModel::Strict, CrashModel::Kill] {
            let image = crash_after(stop, model).await;
            let (p, _) = open(&image, small_config()).await.unwrap();
            let state = p.source_state("s").await;
            let found = rows_on_disk(&image, &p).await;
            assert_eq!(found.len() as u64, state.rows, "call {stop} {model}");
            prefixes.insert(state.rows);
            assert!(found.values().all(|seqs| seqs.len() == 1));
            load(&p, "s", (0, 60, 8), true).await.unwrap();
            let found = rows_on_disk(&image, &p).await;
            assert_eq!(found.len(), 60, "call {stop} {model}: rerun completes");
            assert!(found.values().all(|seqs| seqs.len() == 1));
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} crash images");
    // The crashes land before, between and after the file commits.
    assert!(prefixes.len() >= 3, "committed prefixes seen: {prefixes:?}");
}

/// The disk a crash leaves after `stop` calls of the run above, under `model`.
async fn crash_after(stop: u64, model: CrashModel) -> SimFs {
    let fs = SimFs::new();
    let stopped = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = stopped.clone();
    fs.set_observer(move |disk, record| {
        if record.index + 1 == stop {
            *seen.lock().unwrap() = Some(disk.crash(model, stop));
        }
    });
    let (p, _) = open(&fs, small_config()).await.unwrap();
    drop(p);
    let (p, _) = open(&fs, small_config()).await.unwrap();
    load(&p, "s", (0, 60, 8), true).await.unwrap();
    drop(p);
    let image = stopped.lock().unwrap().take();
    image.unwrap_or_else(|| fs.crash(model, stop))
}

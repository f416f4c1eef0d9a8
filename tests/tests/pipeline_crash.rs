//! A crash after every mutating filesystem operation of a workload that exercises every
//! protocol step (segment creation, group commit, sequence reservation, staging, merging,
//! publishing, cleanup), under every crash model. For each crash image: the real recovery
//! runs, every acknowledged row must be there exactly once and nothing else may appear;
//! recovering again must change nothing; and a re-run of the whole workload on the recovered
//! disk must end with every row exactly once.
//!
//! The negative control runs the same check over a disk whose `sync` lies: it must fail.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tally_faults::{Control, FaultFs, FaultPlan};
use tally_sim::{CrashModel, Fs, SimFs};

use support::{key, open, rows, rows_on_disk, small_config};

const SOURCES: u64 = 4;
const ROUNDS: u64 = 3;
const PART: u64 = 4;

fn universe() -> BTreeSet<String> {
    (0..SOURCES)
        .flat_map(|s| (0..ROUNDS * PART).map(move |r| key(&format!("s{s}"), r)))
        .collect()
}

/// Runs the workload, recording each row's key once its part is acknowledged.
async fn workload<F: Fs>(fs: &F, acked: &Mutex<Vec<String>>) -> tally_pipeline::Result<()> {
    let (p, _) = open(fs, small_config()).await?;
    for round in 0..ROUNDS {
        for s in 0..SOURCES {
            let source = format!("s{s}");
            let first = round * PART;
            p.ingest_part(
                &source,
                first,
                rows(&source, first, PART),
                round + 1 == ROUNDS,
            )
            .await?;
            acked
                .lock()
                .unwrap()
                .extend((first..first + PART).map(|r| key(&source, r)));
        }
        p.flush().await?;
    }
    Ok(())
}

/// Re-runs the whole workload on a recovered disk, as a user re-running the same command would.
async fn rerun<F: Fs>(fs: &F) -> tally_pipeline::Result<()> {
    let (p, _) = open(fs, small_config()).await?;
    for s in 0..SOURCES {
        let source = format!("s{s}");
        p.ingest_part(&source, 0, rows(&source, 0, ROUNDS * PART), true)
            .await?;
    }
    p.flush().await?;
    Ok(())
}

struct CrashPoint {
    op: String,
    image: SimFs,
    acked: usize,
}

/// Checks one crash image; returns a description of the first violation.
async fn check(point: &CrashPoint, acked: &[String]) -> Result<(), String> {
    let image = &point.image;
    let (p, _) = open(image, small_config())
        .await
        .map_err(|e| format!("recovery failed: {e}"))?;
    let found = rows_on_disk(image, &p).await;
    drop(p);
    let universe = universe();
    for key in &acked[..point.acked] {
        match found.get(key).map(Vec::len) {
            Some(1) => {}
            n => {
                return Err(format!(
                    "acknowledged row {key} found {} times",
                    n.unwrap_or(0)
                ));
            }
        }
    }
    if let Some((key, seqs)) = found.iter().find(|(_, seqs)| seqs.len() > 1) {
        return Err(format!("row {key} found {} times", seqs.len()));
    }
    if let Some(key) = found.keys().find(|k| !universe.contains(*k)) {
        return Err(format!("row {key} was never ingested"));
    }
    let tree = image.tree();
    let (_, again) = open(image, small_config())
        .await
        .map_err(|e| format!("second recovery failed: {e}"))?;
    if !again.is_clean() || image.tree() != tree {
        return Err(format!("second recovery changed something: {again}"));
    }
    rerun(image)
        .await
        .map_err(|e| format!("re-run failed: {e}"))?;
    let (p, _) = open(image, small_config())
        .await
        .map_err(|e| format!("recovery after the re-run failed: {e}"))?;
    let found = rows_on_disk(image, &p).await;
    if found.keys().cloned().collect::<BTreeSet<_>>() != universe
        || found.values().any(|s| s.len() != 1)
    {
        return Err("after the re-run the table does not hold every row exactly once".into());
    }
    Ok(())
}

/// Runs the workload on `disk` (through a negative `control`, if any), taking a crash image under `model`
/// after every mutating operation, and checks every image. Returns (crash points, violations).
async fn sweep(model: CrashModel, control: Option<Control>) -> (usize, Vec<String>) {
    let disk = SimFs::new();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let points = Arc::new(Mutex::new(Vec::new()));
    {
        let acked = acked.clone();
        let points = points.clone();
        disk.set_observer(move |disk, op| {
            if op.kind.is_mutating() {
                points.lock().unwrap().push(CrashPoint {
                    op: op.to_string(),
                    image: disk.crash(model, op.index),
                    acked: acked.lock().unwrap().len(),
                });
            }
        });
    }
    match control {
        None => workload(&disk, &acked).await.unwrap(),
        Some(control) => {
            let plan = FaultPlan {
                controls: vec![control],
                ..FaultPlan::default()
            };
            let lying = FaultFs::new(disk.clone(), plan).expect("no patterns to compile");
            workload(&lying, &acked).await.unwrap()
        }
    }
    disk.set_observer(|_, _| {});
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), universe().len());
    let points = std::mem::take(&mut *points.lock().unwrap());
    let mut violations = Vec::new();
    for point in &points {
        if let Err(e) = check(point, &acked).await {
            violations.push(format!("crash after {}: {e}", point.op));
        }
    }
    (points.len(), violations)
}

#[tokio::test]
async fn every_crash_point_recovers_every_acknowledged_row_exactly_once() {
    for model in CrashModel::ALL {
        let (points, violations) = sweep(model, None).await;
        eprintln!("{model}: {points} crash points checked");
        assert!(points > 100, "{model}: only {points} crash points");
        assert!(
            violations.is_empty(),
            "{model}: {} of {points} crash points violate:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
}

#[tokio::test]
async fn a_lying_sync_is_caught() {
    let (points, violations) = sweep(CrashModel::Strict, Some(Control::LyingSync)).await;
    eprintln!(
        "lying sync: {} of {points} crash points violate; first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(
        !violations.is_empty(),
        "no violation in {points} crash points under a lying sync"
    );
}

#[tokio::test]
async fn a_lying_directory_sync_is_caught() {
    let (points, violations) = sweep(CrashModel::Strict, Some(Control::LyingSyncDir)).await;
    eprintln!(
        "lying sync_dir: {} of {points} crash points violate; first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(
        !violations.is_empty(),
        "no violation in {points} crash points under a lying sync_dir"
    );
}

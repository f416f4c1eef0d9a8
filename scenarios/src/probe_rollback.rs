//! The rollback probe: `tally recover --accept-loss` over an unreadable newest commit is itself
//! crash-safe. A crash image is taken after every mutating call of the rollback (under the
//! run's crash model) and each must leave a store that either still refuses, the damage in
//! place, or opens at the last good version; accepting the loss again then finishes, and
//! everything the rollback sets aside — the damaged commit and the table files only it may
//! reference — is under `_tally/quarantine/` byte for byte, never deleted as an orphan.

use std::collections::BTreeMap;

use tally_pipeline::{Config, Error, Layout, Pipeline};
use tally_sim::{CrashModel, Fs, SimClock, SimFs};

use super::coverage::crash_probe;
use super::oracle::{Breach, Invariant, ROOT};
use super::probe_store::{accepting_loss, open_reporting as open};
use super::trace::Trace;

/// The crash model of a run, and the seed of its crash image after the call of a given index.
pub type Crashes<'a> = (CrashModel, &'a (dyn Fn(u64) -> u64 + Sync));

/// The store a rollback over the planted commit must leave, from an uncrashed rollback.
struct Expected {
    /// The commit planted unreadable, as an error names it (`_delta_log/<v>.json`).
    planted: String,
    /// Rows of the last good version.
    rows: u64,
    /// Every file the rollback sets aside, by its path under the root, with its bytes.
    set_aside: BTreeMap<String, Vec<u8>>,
}

fn breach(detail: String) -> Breach {
    Breach::new(Invariant::RollbackCrashSafe, vec![], detail)
}

/// Runs the rollback on `planted` (a settled disk whose newest commit, `planted_name`, is
/// unreadable; `good_rows` rows at the version before it) with a crash image after each of its
/// mutating calls under `model`, and checks every image. Returns the crash-point probes of
/// the images checked.
pub async fn crashes(
    planted: &SimFs,
    planted_name: &str,
    good_rows: u64,
    config: &Config,
    (model, point_seed): Crashes<'_>,
    trace: &Trace,
) -> Result<Vec<String>, Breach> {
    let expected = expected(planted, planted_name, good_rows, config).await?;
    let running = planted.snapshot();
    // Every mutating call's op, with the disk it left; imaged once the rollback is over.
    let disks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let disks = disks.clone();
        running.set_observer(move |disk, op| {
            if op.kind.is_mutating() {
                let mut disks = disks.lock().unwrap_or_else(|p| p.into_inner());
                disks.push((op.clone(), disk.snapshot()));
            }
        });
    }
    let finished = open(&running, &accepting_loss(config)).await;
    running.set_observer(|_, _| {});
    if let Err(e) = finished {
        return Err(breach(format!(
            "the rollback over {planted_name} failed: {e}"
        )));
    }
    let disks = std::mem::take(&mut *disks.lock().unwrap_or_else(|p| p.into_inner()));
    let mut probes = Vec::with_capacity(disks.len());
    for (op, disk) in disks {
        for (i, model) in models(model).into_iter().enumerate() {
            let image = disk.crash(model, point_seed(op.index).wrapping_add(i as u64));
            probes.push(crash_probe(model, &op));
            check_image(&image, &expected, config)
                .await
                .map_err(|detail| {
                    breach(format!(
                        "a crash ({}) at {op} of the rollback over {planted_name}: {detail}",
                        model.name()
                    ))
                })?;
        }
    }
    trace.line(format!(
        "probe rollback under crashes{}: {} images ({} and {}), each refused or at {good_rows} rows, then rolled back with {} files kept aside",
        if planted.options().no_hard_links { " on a disk without hard links" } else { "" },
        probes.len(),
        model.name(),
        models(model)[1..].iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
        expected.set_aside.len()
    ));
    Ok(probes)
}

/// The models each call's images are taken under: the run's, then `subset` and `prefix`
/// (unless it is one of them), the two that can keep one half of a pending move and not the
/// other — what a move that loses the file needs to be caught.
fn models(run: CrashModel) -> Vec<CrashModel> {
    let mut models = vec![run];
    for model in [CrashModel::Subset, CrashModel::Prefix] {
        if model != run {
            models.push(model);
        }
    }
    models
}

/// What an uncrashed rollback on a copy of `planted` sets aside and keeps.
async fn expected(
    planted: &SimFs,
    planted_name: &str,
    good_rows: u64,
    config: &Config,
) -> Result<Expected, Breach> {
    let copy = planted.snapshot();
    let report = match open(&copy, &accepting_loss(config)).await {
        Ok((_, report)) => report,
        Err(e) => {
            return Err(breach(format!(
                "the rollback over {planted_name} failed: {e}"
            )));
        }
    };
    let layout = Layout::new(ROOT);
    let mut set_aside = BTreeMap::new();
    for q in &report.quarantined {
        let bytes = planted
            .read(&layout.root.join(&q.file))
            .await
            .map_err(|e| breach(format!("reading {} before the rollback: {e}", q.file)))?;
        set_aside.insert(q.file.clone(), bytes);
    }
    if !set_aside.contains_key(planted_name) {
        return Err(breach(format!(
            "the rollback did not set {planted_name} aside: {report}"
        )));
    }
    Ok(Expected {
        planted: planted_name.to_owned(),
        rows: good_rows,
        set_aside,
    })
}

/// A crash image of the rollback, as a user meets it: a plain open refuses over the damage
/// still in place or opens at the last good version; accepting the loss then opens at it; and
/// every file the rollback sets aside is in quarantine, unchanged.
async fn check_image(image: &SimFs, expected: &Expected, config: &Config) -> Result<(), String> {
    match open(image, config).await {
        Err(e @ Error::Damaged(_)) if e.to_string().contains(&expected.planted) => {}
        Err(e) => return Err(format!("a plain open failed otherwise: {e}")),
        Ok((p, _)) => rows_of_last_good(&p, expected, "a plain open").await?,
    }
    match open(image, &accepting_loss(config)).await {
        Ok((p, _)) => rows_of_last_good(&p, expected, "accepting the loss again").await?,
        Err(e) => return Err(format!("accepting the loss again failed: {e}")),
    }
    kept_aside(image, expected).await
}

async fn rows_of_last_good(
    p: &Pipeline<SimFs, SimClock>,
    expected: &Expected,
    what: &str,
) -> Result<(), String> {
    let rows = p.snapshot().await.rows;
    if rows == expected.rows {
        return Ok(());
    }
    Err(format!(
        "{what} published {rows} rows; the last good version holds {}",
        expected.rows
    ))
}

/// Every file of `expected.set_aside` is in the quarantine directory under its own name
/// (`<name>.<n>`, whatever `n` a repeated rollback gave it) with its bytes.
async fn kept_aside(image: &SimFs, expected: &Expected) -> Result<(), String> {
    let qdir = Layout::new(ROOT).quarantine_dir();
    let mut kept = Vec::new();
    for entry in image
        .list_dir(&qdir)
        .await
        .map_err(|e| format!("listing the quarantine: {e}"))?
    {
        let bytes = image
            .read(&qdir.join(&entry.name))
            .await
            .map_err(|e| format!("reading {}: {e}", entry.name))?;
        kept.push((entry.name, bytes));
    }
    for (file, bytes) in &expected.set_aside {
        let base = file.rsplit('/').next().unwrap_or(file);
        let under_its_name = |name: &str| {
            name.strip_prefix(base)
                .and_then(|n| n.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if !kept
            .iter()
            .any(|(name, b)| under_its_name(name) && b == bytes)
        {
            return Err(format!(
                "{file}, set aside by the rollback, is not in the quarantine: it was lost"
            ));
        }
    }
    Ok(())
}

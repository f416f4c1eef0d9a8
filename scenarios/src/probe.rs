//! Probes: after a run, copies of its final disk are damaged in ways a correct pipeline must
//! notice, and recovery is run on each. They are how a scenario shows that recovery refuses
//! (with counts) rather than reporting success over lost rows, reports malformed frames, and
//! survives an unreadable manifest even when setting it aside keeps failing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tally_faults::{CallKind, Effect, ErrorKind, Fault, FaultFs, FaultPlan, Trigger};
use tally_pipeline::{Config, Error, Layout, Pipeline, frame, layout, log, read};
use tally_sim::{Fs, FsFile, OpenMode, SimFs, SystemClock, World};

use super::oracle::{Breach, Invariant, ROOT};
use super::trace::Trace;
use super::workload::{Probe, Workload};

/// The source a probe ingests into a copy of the disk.
const PROBE_SOURCE: &str = "probe";
const PROBE_ROWS: u64 = 3;

/// Runs `probe` on copies of `disk`; returns what it found wrong.
pub async fn run(
    probe: Probe,
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    trace: &Trace,
) -> Vec<Breach> {
    let result = match probe {
        Probe::Damage => damage(disk, config, workload, trace).await,
        Probe::MalformedManifest => malformed_manifest(disk, config, trace).await,
    };
    result.err().into_iter().collect()
}

async fn open(
    disk: &SimFs,
    config: &Config,
) -> tally_pipeline::Result<Pipeline<SimFs, SystemClock>> {
    let world = World::new(disk.clone(), SystemClock);
    Pipeline::open(world, ROOT, config.clone())
        .await
        .map(|(p, _)| p)
}

/// Recovery on `disk` must refuse with `MissingRows`, counting fewer rows found than
/// acknowledged.
async fn must_refuse(
    disk: &SimFs,
    config: &Config,
    damage: &str,
    trace: &Trace,
) -> Result<(), Breach> {
    match open(disk, config).await {
        Err(Error::MissingRows {
            acknowledged,
            found,
            ..
        }) if found < acknowledged => {
            trace.line(format!(
                "probe {damage}: recovery refused ({acknowledged} acknowledged, {found} found)"
            ));
            Ok(())
        }
        Err(e) => Err(Breach::new(
            Invariant::FailsClosed,
            vec![],
            format!("after {damage}, recovery failed without counting the loss: {e}"),
        )),
        Ok(p) => Err(Breach::new(
            Invariant::FailsClosed,
            vec![],
            format!(
                "after {damage}, recovery reported success ({} rows published)",
                p.snapshot().await.rows
            ),
        )),
    }
}

async fn damage(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    trace: &Trace,
) -> Result<(), Breach> {
    let io = |what: &str, e: std::io::Error| {
        Breach::new(Invariant::FailsClosed, vec![], format!("probe {what}: {e}"))
    };
    let layout = Layout::new(ROOT);

    // A published file deleted after the fact.
    let copy = disk.snapshot();
    let manifest = read::newest_manifest(&copy, &layout)
        .await
        .map_err(|e| io("reading the manifest", std::io::Error::other(e.to_string())))?;
    if let Some(file) = manifest.files.iter().max_by_key(|f| (f.rows, f.id)) {
        let name = layout::table_file_name(file.level, file.id);
        copy.unlink(&layout.table_file(file.level, file.id))
            .await
            .map_err(|e| io("deleting a published file", e))?;
        must_refuse(
            &copy,
            config,
            &format!("deleting {name} ({} rows)", file.rows),
            trace,
        )
        .await?;
    }

    // Rows acknowledged into a log segment, then the segment truncated after its header.
    let staged = disk.snapshot();
    let pipeline = open(&staged, config).await.map_err(|e| {
        Breach::new(
            Invariant::RecoverySucceeds,
            vec![],
            format!("probe: opening the final disk: {e}"),
        )
    })?;
    pipeline
        .ingest(PROBE_SOURCE, workload.batch(PROBE_SOURCE, 0, PROBE_ROWS))
        .await
        .map_err(|e| {
            Breach::new(
                Invariant::RecoverySucceeds,
                vec![],
                format!("probe: ingesting into the final disk: {e}"),
            )
        })?;
    drop(pipeline);
    let log_path = newest_log(&staged, &layout)
        .await
        .map_err(|e| io("listing the log", e))?;
    let bytes = staged
        .read(&log_path)
        .await
        .map_err(|e| io("reading the log", e))?;
    let segment = match layout::parse_segment_name(&file_name(&log_path)) {
        Some(layout::SegmentFile::Log(n)) => n,
        _ => unreachable!("newest_log returns a log segment"),
    };
    let scan = log::scan_log(&bytes, segment);
    let first_frame = scan
        .items
        .first()
        .map_or(scan.valid_len, |p| p.frame.offset);
    let truncated = staged.snapshot();
    set_len(&truncated, &log_path, first_frame)
        .await
        .map_err(|e| io("truncating the log", e))?;
    must_refuse(
        &truncated,
        config,
        &format!(
            "truncating {} to its header ({} acknowledged rows in it)",
            file_name(&log_path),
            PROBE_ROWS
        ),
        trace,
    )
    .await?;

    // A frame whose checksum holds but whose body is no part, after the acknowledged ones.
    let malformed = staged.snapshot();
    let garbage = frame::encode(b"\x7fnot a part");
    let f = malformed
        .open(&log_path, OpenMode::Write)
        .await
        .map_err(|e| io("opening the log", e))?;
    f.write_at(bytes.len() as u64, &garbage)
        .await
        .map_err(|e| io("appending to the log", e))?;
    f.sync().await.map_err(|e| io("syncing the log", e))?;
    drop(f);
    let world = World::new(malformed.clone(), SystemClock);
    let reported = match Pipeline::open(world, ROOT, config.clone()).await {
        Ok((pipeline, report)) => {
            let kept = pipeline.source_state(PROBE_SOURCE).await.rows;
            let torn = report
                .torn_tails
                .iter()
                .find(|t| t.malformed.is_some() && t.bytes == garbage.len() as u64);
            match torn {
                Some(t) if kept == PROBE_ROWS => {
                    trace.line(format!(
                        "probe malformed frame: reported ({} frames, {} bytes: {}), {kept} acknowledged rows kept",
                        t.frames,
                        t.bytes,
                        t.malformed.as_deref().unwrap_or_default()
                    ));
                    Ok(())
                }
                _ => Err(format!(
                    "{kept} of {PROBE_ROWS} acknowledged rows kept; recovery reported: {}",
                    report.to_string().trim()
                )),
            }
        }
        Err(e) => Err(format!("recovery failed: {e}")),
    };
    reported.map_err(|why| {
        Breach::new(
            Invariant::DamageReported,
            vec![],
            format!("a malformed frame appended after acknowledged ones: {why}"),
        )
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn newest_log(disk: &SimFs, layout: &Layout) -> std::io::Result<std::path::PathBuf> {
    let newest = disk
        .list_dir(&layout.log_dir())
        .await?
        .iter()
        .filter_map(|e| match layout::parse_segment_name(&e.name) {
            Some(layout::SegmentFile::Log(n)) => Some(n),
            _ => None,
        })
        .max();
    newest
        .map(|n| layout.segment_log(n))
        .ok_or_else(|| std::io::Error::other("no log segment after ingesting"))
}

async fn set_len(disk: &SimFs, path: &Path, len: u64) -> std::io::Result<()> {
    let f = disk.open(path, OpenMode::Write).await?;
    f.set_len(len).await?;
    f.sync().await
}

/// Writes an unreadable manifest one version above the newest.
async fn plant_bad_manifest(disk: &SimFs, layout: &Layout) -> std::io::Result<String> {
    let manifest = read::newest_manifest(disk, layout)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut bytes = manifest.encode();
    // Torn in the middle, as a crash during its write without the sync would leave it.
    bytes.truncate(bytes.len() / 2);
    let path = layout.manifest(manifest.version + 1);
    let f = disk.create(&path, tally_sim::CreateMode::Truncate).await?;
    f.write_at(0, &bytes).await?;
    f.sync().await?;
    disk.sync_dir(&layout.root).await?;
    Ok(file_name(&path))
}

async fn malformed_manifest(disk: &SimFs, config: &Config, trace: &Trace) -> Result<(), Breach> {
    let layout = Layout::new(ROOT);
    let bad = |invariant, detail: String| Breach::new(invariant, vec![], detail);
    let io = |e: std::io::Error| {
        bad(
            Invariant::SurvivesBadManifest,
            format!("probe: planting a bad manifest: {e}"),
        )
    };

    // Opens go on over it: it is set aside, the version before it stays current.
    let copy = disk.snapshot();
    let planted = plant_bad_manifest(&copy, &layout).await.map_err(io)?;
    for attempt in 1..=2 {
        let world = World::new(copy.clone(), SystemClock);
        match Pipeline::open(world, ROOT, config.clone()).await {
            Ok((_, report)) if attempt == 1 && report.quarantined.is_empty() => {
                return Err(bad(
                    Invariant::SurvivesBadManifest,
                    format!(
                        "{planted} was neither used nor set aside: {}",
                        report.to_string().trim()
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(bad(
                    Invariant::SurvivesBadManifest,
                    format!("open {attempt} after planting an unreadable {planted} failed: {e}"),
                ));
            }
        }
    }
    trace.line(format!(
        "probe bad manifest: {planted} quarantined, later opens fine"
    ));

    // Setting it aside fails with ENOSPC every time: bounded retries, then the error.
    let copy = disk.snapshot();
    plant_bad_manifest(&copy, &layout).await.map_err(io)?;
    let enospc = |kind, n| Fault {
        at: Trigger::Nth {
            kind,
            path: "*quarantine*".into(),
            n,
        },
        effect: Effect::Error {
            error: ErrorKind::Enospc,
            sticky: false,
        },
    };
    let plan = FaultPlan {
        faults: (1..=12)
            .flat_map(|n| [enospc(CallKind::Create, n), enospc(CallKind::Rename, n)])
            .collect(),
        ..FaultPlan::default()
    };
    let faulty = FaultFs::new(copy.clone(), plan).expect("valid patterns");
    let failures = Arc::new(AtomicU64::new(0));
    {
        let failures = failures.clone();
        faulty.on_event(move |_| {
            failures.fetch_add(1, Ordering::Relaxed);
        });
    }
    let world = World::new(faulty.clone(), faulty.clock(SystemClock));
    let result = Pipeline::open(world, ROOT, config.clone()).await;
    let attempts = failures.load(Ordering::Relaxed);
    let allowed = u64::from(config.recovery.retries) + 1;
    match result {
        Err(e) if attempts == allowed => trace.line(format!(
            "probe bad manifest under ENOSPC: {attempts} attempts, then: {e}"
        )),
        Err(e) => {
            return Err(bad(
                Invariant::BoundedRetries,
                format!(
                    "setting a bad manifest aside failed {attempts} times ({allowed} allowed) before the error: {e}"
                ),
            ));
        }
        Ok(_) => {
            return Err(bad(
                Invariant::BoundedRetries,
                format!(
                    "recovery reported success while every attempt to set the bad manifest aside failed ({attempts} attempts)"
                ),
            ));
        }
    }
    // Once the disk has room again, the next open repairs it.
    let world = World::new(copy.clone(), SystemClock);
    match Pipeline::open(world, ROOT, config.clone()).await {
        Ok((_, report)) if !report.quarantined.is_empty() => Ok(()),
        Ok((_, report)) => Err(bad(
            Invariant::SurvivesBadManifest,
            format!(
                "after the ENOSPC, the next open did not set the bad manifest aside: {}",
                report.to_string().trim()
            ),
        )),
        Err(e) => Err(bad(
            Invariant::SurvivesBadManifest,
            format!("after the ENOSPC, the next open failed: {e}"),
        )),
    }
}

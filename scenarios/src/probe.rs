//! Probes: after a run, copies of its final disk are damaged in ways a correct pipeline must
//! notice, and recovery is run on each. They are how a scenario shows that recovery refuses
//! (with counts) rather than reporting success over lost rows, reports malformed frames,
//! refuses to roll back over an unreadable newest manifest unless the loss is accepted (and
//! then bounds its retries), and that a flipped bit in a published table file is caught
//! before a merge trusts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tally_faults::{CallKind, Effect, ErrorKind, Fault, FaultFs, FaultPlan, Trigger};
use tally_pipeline::{
    Config, Error, Layout, Manifest, Pipeline, RecoveryReport, frame, layout, log, read, verify,
};
use tally_sim::{CrashModel, Fs, FsFile, OpenMode, SimClock, SimFs, World};

use super::oracle::{Breach, Invariant, ROOT};
use super::probe_rollback::Crashes;
use super::probe_store::{accepting_loss, open, open_reporting};
use super::trace::Trace;
use super::workload::{Probe, Workload};

/// The source a probe ingests into a copy of the disk.
const PROBE_SOURCE: &str = "probe";
const PROBE_ROWS: u64 = 3;

/// Runs `probe` on copies of `disk`; returns what it found wrong, and the crash-point probes
/// of the crash images it checked (the rollback's, under the run's `crash` model and seed).
pub async fn run(
    probe: Probe,
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    crash: Crashes<'_>,
    trace: &Trace,
) -> (Vec<Breach>, Vec<String>) {
    let result = match probe {
        Probe::Damage => damage(disk, config, workload, trace).await.map(|()| vec![]),
        Probe::MalformedManifest => malformed_manifest(disk, config, crash, trace).await,
        Probe::ForeignFile => super::probe_foreign::foreign_files(disk, config, workload, trace)
            .await
            .map(|()| vec![]),
    };
    match result {
        Ok(probes) => (vec![], probes),
        Err(breach) => (vec![breach], vec![]),
    }
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

/// The damage probe: a published file deleted, an acknowledged log segment truncated to its
/// header (recovery must refuse, counting), a malformed frame appended after acknowledged
/// ones (recovery must cut and report it, keeping the rows), a bit flipped in a data page of a
/// published file (verify and the merge reading it must refuse it, naming it).
async fn damage(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    trace: &Trace,
) -> Result<(), Breach> {
    let layout = Layout::new(ROOT);
    deleted_file_refused(disk, config, &layout, trace).await?;
    let log = ingest_probe_rows(disk, config, workload, &layout).await?;
    truncated_log_refused(&log, config, trace).await?;
    malformed_frame_reported(&log, config, trace).await?;
    flipped_bit_refused(disk, config, workload, &layout, trace).await
}

/// A probe's own I/O on a copy of the disk failed.
fn probe_io(what: &str, e: std::io::Error) -> Breach {
    Breach::new(Invariant::FailsClosed, vec![], format!("probe {what}: {e}"))
}

/// The newest manifest of a probe's copy of the disk.
async fn probe_manifest(copy: &SimFs, layout: &Layout) -> Result<Manifest, Breach> {
    read::newest_manifest(copy, layout)
        .await
        .map_err(|e| probe_io("reading the manifest", std::io::Error::other(e.to_string())))
}

/// `fails-closed`: with the largest published file deleted after the fact, recovery refuses.
async fn deleted_file_refused(
    disk: &SimFs,
    config: &Config,
    layout: &Layout,
    trace: &Trace,
) -> Result<(), Breach> {
    let copy = disk.snapshot();
    let manifest = probe_manifest(&copy, layout).await?;
    let Some(file) = manifest.files.iter().max_by_key(|f| (f.rows, f.id)) else {
        return Ok(());
    };
    let name = layout::table_file_name(file.level, file.id);
    copy.unlink(&layout.table_file(file.level, file.id))
        .await
        .map_err(|e| probe_io("deleting a published file", e))?;
    must_refuse(
        &copy,
        config,
        &format!("deleting {name} ({} rows)", file.rows),
        trace,
    )
    .await
}

/// A copy of the final disk with [`PROBE_ROWS`] rows acknowledged into its newest log
/// segment, that segment's path and its bytes.
struct ProbeLog {
    disk: SimFs,
    path: PathBuf,
    bytes: Vec<u8>,
}

async fn ingest_probe_rows(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    layout: &Layout,
) -> Result<ProbeLog, Breach> {
    let staged = disk.snapshot();
    let failed = |what: &str, e: Error| {
        Breach::new(
            Invariant::RecoverySucceeds,
            vec![],
            format!("probe: {what} the final disk: {e}"),
        )
    };
    let pipeline = open(&staged, config)
        .await
        .map_err(|e| failed("opening", e))?;
    pipeline
        .ingest(PROBE_SOURCE, workload.batch(PROBE_SOURCE, 0, PROBE_ROWS))
        .await
        .map_err(|e| failed("ingesting into", e))?;
    drop(pipeline);
    let path = newest_log(&staged, layout)
        .await
        .map_err(|e| probe_io("listing the log", e))?;
    let bytes = staged
        .read(&path)
        .await
        .map_err(|e| probe_io("reading the log", e))?;
    Ok(ProbeLog {
        disk: staged,
        path,
        bytes,
    })
}

/// `fails-closed`: with the segment holding acknowledged rows truncated to its header,
/// recovery refuses.
async fn truncated_log_refused(
    log: &ProbeLog,
    config: &Config,
    trace: &Trace,
) -> Result<(), Breach> {
    let segment = match layout::parse_segment_name(&file_name(&log.path)) {
        Some(layout::SegmentFile::Log(n)) => n,
        _ => unreachable!("newest_log returns a log segment"),
    };
    let scan = log::scan_log(&log.bytes, segment);
    let first_frame = scan
        .items
        .first()
        .map_or(scan.valid_len, |p| p.frame.offset);
    let truncated = log.disk.snapshot();
    set_len(&truncated, &log.path, first_frame)
        .await
        .map_err(|e| probe_io("truncating the log", e))?;
    must_refuse(
        &truncated,
        config,
        &format!(
            "truncating {} to its header ({} acknowledged rows in it)",
            file_name(&log.path),
            PROBE_ROWS
        ),
        trace,
    )
    .await
}

/// `damage-reported`: a frame whose checksum holds but whose body is no part, appended after
/// the acknowledged ones, is cut and reported, the acknowledged rows kept.
async fn malformed_frame_reported(
    log: &ProbeLog,
    config: &Config,
    trace: &Trace,
) -> Result<(), Breach> {
    let malformed = log.disk.snapshot();
    let garbage = frame::encode(b"\x7fnot a part");
    let f = malformed
        .open(&log.path, OpenMode::Write)
        .await
        .map_err(|e| probe_io("opening the log", e))?;
    f.write_at(log.bytes.len() as u64, &garbage)
        .await
        .map_err(|e| probe_io("appending to the log", e))?;
    f.sync().await.map_err(|e| probe_io("syncing the log", e))?;
    drop(f);
    let world = World::new(malformed.clone(), SimClock::default());
    let reported = match Pipeline::open(world, ROOT, config.clone()).await {
        Ok((pipeline, report)) => {
            let kept = pipeline.source_state(PROBE_SOURCE).await.rows;
            cut_and_reported(&report, kept, garbage.len() as u64, trace)
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

/// Whether recovery reported the malformed frame of `garbage_len` bytes as a torn tail and
/// kept the `kept` acknowledged rows before it; if not, what it did instead.
fn cut_and_reported(
    report: &RecoveryReport,
    kept: u64,
    garbage_len: u64,
    trace: &Trace,
) -> Result<(), String> {
    let torn = report
        .torn_tails
        .iter()
        .find(|t| t.malformed.is_some() && t.bytes == garbage_len);
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

/// Flips one bit in the middle of the first data page of `path`'s first column (the page
/// header excluded as far as the footer tells: the bit is in the chunk's data-page range).
async fn flip_data_page_bit(disk: &SimFs, path: &Path) -> std::io::Result<u64> {
    use parquet::file::metadata::ParquetMetaDataReader;
    let mut bytes = disk.read(path).await?;
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
        .map_err(std::io::Error::other)?;
    let column = meta.row_group(0).column(0);
    let (start, len) = column.byte_range();
    let pages = u64::try_from(column.data_page_offset()).unwrap_or(start)..start + len;
    let at = pages.start + (pages.end - pages.start) / 2;
    bytes[at as usize] ^= 0x10;
    let f = disk.open(path, OpenMode::Write).await?;
    f.write_at(0, &bytes).await?;
    f.sync().await?;
    Ok(at)
}

fn table_breach(detail: String) -> Breach {
    Breach::new(Invariant::DamagedTableRefused, vec![], detail)
}

/// `damaged-table-refused`: one bit flipped inside a data page of the oldest file of the
/// lowest level is reported by `verify --deep`, and merges (fan-in 2, fed probe rows until
/// one reads the file) refuse it with `DamagedTable` naming it; it is never merged away.
async fn flipped_bit_refused(
    disk: &SimFs,
    config: &Config,
    workload: &Workload,
    layout: &Layout,
    trace: &Trace,
) -> Result<(), Breach> {
    let copy = disk.snapshot();
    let manifest = probe_manifest(&copy, layout).await?;
    let Some(target) = manifest.files.iter().min_by_key(|f| (f.level, f.seq_min)) else {
        return Ok(());
    };
    let name = layout::table_file_name(target.level, target.id);
    let at = flip_data_page_bit(&copy, &layout.table_file(target.level, target.id))
        .await
        .map_err(|e| probe_io("flipping a bit", e))?;
    let report = verify::check_store(&copy, layout, true)
        .await
        .map_err(|e| table_breach(format!("verify --deep failed: {e}")))?;
    if !report.problems.iter().any(|p| p.contains(&name)) {
        return Err(table_breach(format!(
            "a bit flipped at byte {at} of {name} (a data page): verify --deep found no problem naming it ({:?})",
            report.problems
        )));
    }
    if target.level >= config.max_level {
        trace.line(format!(
            "probe flipped bit: verify --deep named {name}; it is at the top level, never merged"
        ));
        return Ok(());
    }
    let refusal = merge_until_refused(&copy, config, workload, target, &name).await?;
    trace.line(format!(
        "probe flipped bit at byte {at} of {name}: verify --deep and the merge refused it ({refusal})"
    ));
    Ok(())
}

/// Feeds probe rows through flushes with a fan-in of 2 until a merge reads `target`; that
/// merge must fail with `DamagedTable` naming `name`, leaving `target` published. With a
/// fan-in of 2 the levels count like a binary counter, so a file at level `l` is read within
/// `2^l + 1` flushes.
async fn merge_until_refused(
    copy: &SimFs,
    config: &Config,
    workload: &Workload,
    target: &tally_pipeline::FileEntry,
    name: &str,
) -> Result<String, Breach> {
    let merging = Config {
        merge_fan_in: 2,
        ..config.clone()
    };
    let pipeline = open(copy, &merging)
        .await
        .map_err(|e| table_breach(format!("opening after flipping a bit in {name}: {e}")))?;
    let rounds = (1u64 << target.level.min(8)) + 1;
    for round in 0..rounds {
        // A new source each round: `ingest` is a whole source, so each adds a file.
        let source = format!("{PROBE_SOURCE}-{round}");
        pipeline
            .ingest(&source, workload.batch(&source, 0, PROBE_ROWS))
            .await
            .map_err(|e| table_breach(format!("ingesting probe rows: {e}")))?;
        match pipeline.flush().await {
            Ok(_) if pipeline.manifest().await.files.contains(target) => {}
            Ok(_) => {
                return Err(table_breach(format!(
                    "{name}, with a bit flipped in a data page, was merged into a higher level"
                )));
            }
            Err(e @ Error::DamagedTable { .. }) if e.to_string().contains(name) => {
                return Ok(e.to_string());
            }
            Err(e) => {
                return Err(table_breach(format!(
                    "the merge reading {name} failed without naming its damage: {e}"
                )));
            }
        }
    }
    Err(table_breach(format!(
        "{rounds} flushes with a fan-in of 2 never read {name}"
    )))
}

/// Writes an unreadable commit one version above the newest, and beside it in `data/` a
/// table file only that commit could have referenced (a copy of the largest published file
/// under the next file id, as a merge whose commit was torn leaves): a rollback must set both
/// aside. Returns the commit's name as errors give it.
async fn plant_bad_manifest(disk: &SimFs, layout: &Layout) -> std::io::Result<String> {
    let manifest = read::newest_manifest(disk, layout)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut next = manifest.clone();
    next.version += 1;
    if let Some(file) = manifest.files.iter().max_by_key(|f| (f.rows, f.id)) {
        let bytes = disk.read(&layout.table_file(file.level, file.id)).await?;
        let at_risk = layout.table_file(file.level, manifest.next_file_id);
        let f = disk
            .create(&at_risk, tally_sim::CreateMode::Truncate)
            .await?;
        f.write_at(0, &bytes).await?;
        f.sync().await?;
        disk.sync_dir(&layout.data_dir()).await?;
        next.next_file_id += 1;
    }
    let mut bytes = tally_pipeline::delta::commit::encode(Some(&manifest), &next, 0)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Torn in the middle: what a disk that lost part of a synced file would leave (the
    // protocol's crash models cannot).
    bytes.truncate(bytes.len() / 2);
    let path = layout.commit(next.version);
    let f = disk.create(&path, tally_sim::CreateMode::Truncate).await?;
    f.write_at(0, &bytes).await?;
    f.sync().await?;
    disk.sync_dir(&layout.delta_log_dir()).await?;
    Ok(format!(
        "{}/{}",
        tally_pipeline::layout::DELTA_LOG_DIR,
        file_name(&path)
    ))
}

/// The bad-manifest probe: an unreadable newest manifest refuses the open and changes
/// nothing; accepting the loss sets it aside, reporting the loss, and later opens work; a
/// crash at any call of that rollback leaves a store that refuses or is rolled back, losing
/// nothing it set aside (`probe_rollback`); when setting it aside keeps failing with `ENOSPC`,
/// recovery gives up after a bounded number of attempts, and the next open with room repairs
/// it. Returns the crash-point probes of the rollback's images.
async fn malformed_manifest(
    disk: &SimFs,
    config: &Config,
    crash: Crashes<'_>,
    trace: &Trace,
) -> Result<Vec<String>, Breach> {
    let layout = Layout::new(ROOT);
    bad_manifest_refused(disk, config, &layout, trace).await?;
    // Settled first: the rollback's crash images must differ only by what the rollback did.
    // Half the seeds run it on a filesystem without hard links (vfat, exFAT): it copies.
    let mut settled = disk.crash(CrashModel::Kill, 0);
    if (crash.1)(u64::MAX) % 2 == 1 {
        let options = settled.options();
        settled = settled.snapshot_with(tally_sim::SimFsOptions {
            no_hard_links: true,
            ..options
        });
    }
    let good_rows = read::newest_manifest(&settled, &layout)
        .await
        .map_err(|e| planting_failed(std::io::Error::other(e.to_string())))?
        .rows();
    let planted = plant_bad_manifest(&settled, &layout)
        .await
        .map_err(planting_failed)?;
    let probes =
        super::probe_rollback::crashes(&settled, &planted, good_rows, config, crash, trace).await?;
    let copy = disk.snapshot();
    let planted = plant_bad_manifest(&copy, &layout)
        .await
        .map_err(planting_failed)?;
    // With the quarantine already there, what keeps failing is setting the files aside.
    copy.create_dir_all(&layout.quarantine_dir())
        .await
        .map_err(planting_failed)?;
    retries_bounded(&copy, &accepting_loss(config), &planted, trace).await?;
    repaired_with_room(&copy, &accepting_loss(config)).await?;
    Ok(probes)
}

fn planting_failed(e: std::io::Error) -> Breach {
    Breach::new(
        Invariant::BadManifestRefused,
        vec![],
        format!("probe: planting a bad manifest: {e}"),
    )
}

/// `bad-manifest-refused`: an open over a planted bad manifest refuses with `Damaged`, naming
/// it and the way out, and changes no byte; an open accepting the loss rolls back, reporting
/// it; the next plain open works.
async fn bad_manifest_refused(
    disk: &SimFs,
    config: &Config,
    layout: &Layout,
    trace: &Trace,
) -> Result<(), Breach> {
    let copy = disk.snapshot();
    let planted = plant_bad_manifest(&copy, layout)
        .await
        .map_err(planting_failed)?;
    let breach = |detail: String| Breach::new(Invariant::BadManifestRefused, vec![], detail);
    let before = copy.tree();
    match open(&copy, config).await {
        Err(e @ Error::Damaged(_))
            if e.to_string().contains(&planted) && e.to_string().contains("--accept-loss") => {}
        Err(e) => return Err(breach(format!("over an unreadable {planted}: {e}"))),
        Ok(_) => {
            return Err(breach(format!(
                "an open over an unreadable {planted} rolled back silently"
            )));
        }
    }
    if copy.tree() != before {
        return Err(breach(format!(
            "refusing over an unreadable {planted} changed the disk"
        )));
    }
    let loss = match open_reporting(&copy, &accepting_loss(config)).await {
        Ok((_, report)) => match report.rolled_back {
            Some(d) if d.damaged.iter().any(|m| m.file == planted) => d,
            _ => {
                return Err(breach(format!(
                    "the rollback over {planted} was not reported: {report}"
                )));
            }
        },
        Err(e) => {
            return Err(breach(format!(
                "accepting the loss over {planted} failed: {e}"
            )));
        }
    };
    if let Err(e) = open(&copy, config).await {
        return Err(breach(format!(
            "after the rollback over {planted}, an open failed: {e}"
        )));
    }
    trace.line(format!(
        "probe bad manifest: {planted} refused; accepting the loss rolled back to version {} ({} files, {} rows set aside)",
        loss.last_good_version,
        loss.at_risk.len(),
        loss.rows_at_risk
    ));
    Ok(())
}

/// `bounded-retries`: when setting the bad manifest on `copy` aside fails with `ENOSPC` every
/// time, recovery gives up after `retries + 1` attempts, with the error, the planted commit
/// still in its directory.
async fn retries_bounded(
    copy: &SimFs,
    config: &Config,
    planted: &str,
    trace: &Trace,
) -> Result<(), Breach> {
    let faulty = FaultFs::new(copy.clone(), no_room_to_quarantine()).expect("valid patterns");
    let failures = Arc::new(AtomicU64::new(0));
    {
        let failures = failures.clone();
        faulty.on_event(move |_| {
            failures.fetch_add(1, Ordering::Relaxed);
        });
    }
    let world = World::new(faulty.clone(), faulty.clock(SimClock::default()));
    let result = Pipeline::open(world, ROOT, config.clone()).await;
    let attempts = failures.load(Ordering::Relaxed);
    let allowed = u64::from(config.recovery.retries) + 1;
    let in_place = copy
        .exists(&Path::new(ROOT).join(planted))
        .await
        .unwrap_or(false);
    let detail = match result {
        Err(e) if attempts == allowed && in_place => {
            trace.line(format!(
                "probe bad manifest under ENOSPC: {attempts} attempts, then: {e}"
            ));
            return Ok(());
        }
        Err(e) if attempts == allowed => {
            format!("the failed rollback left {planted} nowhere in its directory: {e}")
        }
        Err(e) => format!(
            "setting a bad manifest aside failed {attempts} times ({allowed} allowed) before the error: {e}"
        ),
        Ok(_) => format!(
            "recovery reported success while every attempt to set the bad manifest aside failed ({attempts} attempts)"
        ),
    };
    Err(Breach::new(Invariant::BoundedRetries, vec![], detail))
}

/// A plan failing every create and rename on a quarantine path with `ENOSPC`.
fn no_room_to_quarantine() -> FaultPlan {
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
    FaultPlan {
        faults: (1..=12)
            .flat_map(|n| [enospc(CallKind::Create, n), enospc(CallKind::Rename, n)])
            .collect(),
        ..FaultPlan::default()
    }
}

/// `bad-manifest-refused`: once the disk has room again, the next open accepting the loss
/// sets the bad manifest aside.
async fn repaired_with_room(copy: &SimFs, config: &Config) -> Result<(), Breach> {
    let detail = match open_reporting(copy, config).await {
        Ok((_, report)) if report.rolled_back.is_some() => return Ok(()),
        Ok((_, report)) => format!(
            "after the ENOSPC, the next open did not roll back over the bad manifest: {}",
            report.to_string().trim()
        ),
        Err(e) => format!("after the ENOSPC, the next open failed: {e}"),
    };
    Err(Breach::new(Invariant::BadManifestRefused, vec![], detail))
}

//! The sections measured on the real disk, in this process: ingest to published Parquet (with
//! and without merges) against arrow-rs writing the same rows, acknowledged-ingest latency
//! under concurrency, and recovery time as published data grows.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use tally_faults::CountingFs;
use tally_pipeline::table::{TableOptions, writer_properties};
use tally_pipeline::{Config, Pipeline};
use tally_sim::{RealFs, SystemClock, World};

use super::data;

/// Ingest to published, until `flush` returns: rows through group commit, staging and
/// publishing (streaming), or straight into committed table files (bulk load, `tally run`'s
/// path); merges too when the configuration makes them due.
#[derive(Clone, Debug, Serialize)]
pub struct Ingest {
    pub rows: u64,
    pub seconds: f64,
    /// Of `seconds`, from the last row handed to the pipeline (acknowledged, for streaming) to
    /// the return of `flush`: the work left after the last acknowledgement.
    pub tail_seconds: f64,
    pub rows_per_second: f64,
    pub files_published: usize,
    pub published_bytes: u64,
    pub max_level: u32,
    pub segments_staged: u64,
    pub merges: u64,
    /// Bytes of table files written (staging and merging).
    pub table_bytes_written: u64,
    /// Every byte written through the filesystem: log, ledger, tables, Delta commits.
    pub bytes_written: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times the pipeline on the real disk"
)]
pub async fn ingest(
    batches: &[RecordBatch],
    config: Config,
    root: &Path,
    path: IngestPath,
) -> anyhow::Result<Ingest> {
    let fs = CountingFs::new(RealFs);
    let world = World::new(fs.clone(), SystemClock);
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let started = Instant::now();
    let (pipeline, _) = Pipeline::open(world, root, config).await?;
    let maintenance = pipeline.spawn_maintenance();
    match path {
        IngestPath::Bulk => {
            let mut load = pipeline.bulk_load("bench", None).await?;
            let mut first = 0;
            for batch in batches {
                load.write(first, batch.clone()).await?;
                first += batch.num_rows() as u64;
            }
            load.commit(true).await?;
        }
        IngestPath::Streaming { callers } => stream(&pipeline, batches, callers).await?,
    }
    let handed = started.elapsed().as_secs_f64();
    pipeline.stop_maintenance();
    maintenance.await.context("the maintenance task")??;
    pipeline.flush().await?;
    let seconds = started.elapsed().as_secs_f64();
    let snapshot = pipeline.snapshot().await;
    ensure!(
        snapshot.rows == rows,
        "{} rows ingested but {} published",
        rows,
        snapshot.rows
    );
    let stats = pipeline.stats();
    let counts = fs.counts();
    Ok(Ingest {
        rows,
        seconds,
        tail_seconds: seconds - handed,
        rows_per_second: rows as f64 / seconds,
        files_published: snapshot.files.len(),
        published_bytes: snapshot.files.iter().map(|f| f.bytes).sum(),
        max_level: snapshot.files.iter().map(|f| f.level).max().unwrap_or(0),
        segments_staged: stats.segments_staged,
        merges: stats.merges,
        table_bytes_written: stats.table_bytes_written,
        bytes_written: counts.bytes_written,
        file_syncs: counts.file_syncs,
        dir_syncs: counts.dir_syncs,
    })
}

/// How the ingest run hands its rows to the pipeline.
#[derive(Clone, Copy, Debug)]
pub enum IngestPath {
    /// One bulk load of one source (`tally run`'s path).
    Bulk,
    /// Streaming ingest by `callers` concurrent callers, each a source of its own: caller `c`
    /// ingests batches `c`, `c + callers`, ... as consecutive parts.
    Streaming { callers: usize },
}

async fn stream<F: tally_sim::Fs>(
    pipeline: &Pipeline<F, SystemClock>,
    batches: &[RecordBatch],
    callers: usize,
) -> anyhow::Result<()> {
    let tasks: Vec<_> = (0..callers.max(1))
        .map(|caller| {
            let pipeline = pipeline.clone();
            let mine: Vec<RecordBatch> = batches
                .iter()
                .skip(caller)
                .step_by(callers.max(1))
                .cloned()
                .collect();
            tokio::spawn(async move {
                let source = format!("bench-{caller}");
                let mut first = 0;
                let count = mine.len();
                for (i, batch) in mine.into_iter().enumerate() {
                    let rows = batch.num_rows() as u64;
                    pipeline
                        .ingest_part(&source, first, batch, i + 1 == count)
                        .await?;
                    first += rows;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a streaming caller")??;
    }
    Ok(())
}

/// arrow-rs writing the same batches into one Parquet file, durably: a temp file, fsync,
/// rename, directory fsync.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub bytes: u64,
    /// `tally` (the encodings the pipeline picks) or `default` (arrow-rs defaults, same
    /// compression).
    pub encodings: &'static str,
}

#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the baseline writes with std::fs, as a user of arrow-rs would"
)]
pub fn baseline(
    batches: &[RecordBatch],
    dir: &Path,
    tally_encodings: bool,
) -> anyhow::Result<Baseline> {
    let options = TableOptions::default();
    let properties = if tally_encodings {
        writer_properties(&options, &batches[0])?
    } else {
        parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(
                parquet::basic::ZstdLevel::try_new(options.zstd_level)?,
            ))
            .set_max_row_group_row_count(Some(options.row_group_rows))
            .build()
    };
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let name = if tally_encodings {
        "baseline"
    } else {
        "baseline-default"
    };
    let temp = dir.join(format!("{name}.parquet.tmp"));
    let target = dir.join(format!("{name}.parquet"));
    let started = Instant::now();
    let file = std::fs::File::create(&temp).with_context(|| temp.display().to_string())?;
    let mut writer = ArrowWriter::try_new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        batches[0].schema(),
        Some(properties),
    )?;
    for batch in batches {
        writer.write(batch)?;
    }
    let file = writer.into_inner()?.into_inner()?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, &target)?;
    std::fs::File::open(dir)?.sync_all()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Baseline {
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds,
        bytes: std::fs::metadata(&target)?.len(),
        encodings: if tally_encodings { "tally" } else { "default" },
    })
}

/// Latency of acknowledged ingest with `callers` tasks ingesting at once.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub callers: usize,
    pub rows_per_batch: usize,
    pub batches: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub batches_per_second: f64,
    /// fsyncs (file and directory) per acknowledged batch: group commit shares them.
    pub fsyncs_per_batch: f64,
    pub group_commits: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark times each acknowledgement"
)]
pub async fn latency(
    callers: usize,
    batches_per_caller: u64,
    rows_per_batch: usize,
    root: &Path,
) -> anyhow::Result<Latency> {
    let fs = CountingFs::new(RealFs);
    let world = World::new(fs.clone(), SystemClock);
    let (pipeline, _) = Pipeline::open(world, root, Config::default()).await?;
    // The same rows for every caller: each caller is its own source.
    let batch = data::batch(1, 0, rows_per_batch);
    let before = fs.counts();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let pipeline = pipeline.clone();
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let source = format!("caller-{caller}");
            let mut took = Vec::with_capacity(batches_per_caller as usize);
            for i in 0..batches_per_caller {
                let t = Instant::now();
                pipeline
                    .ingest_part(&source, i * rows_per_batch as u64, batch.clone(), false)
                    .await?;
                took.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, tally_pipeline::Error>(took)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("an ingest task")??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let counts = fs.counts();
    all.sort_by(f64::total_cmp);
    let batches = all.len() as u64;
    let fsyncs = (counts.file_syncs - before.file_syncs) + (counts.dir_syncs - before.dir_syncs);
    Ok(Latency {
        callers,
        rows_per_batch,
        batches,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(0.0),
        batches_per_second: batches as f64 / seconds,
        fsyncs_per_batch: fsyncs as f64 / batches as f64,
        group_commits: pipeline.stats().group_commits,
    })
}

/// Recovery (opening the store) of a store with `published_rows` published over `commits`
/// flushes and the same unpublished staging as every other size.
#[derive(Clone, Debug, Serialize)]
pub struct Recovery {
    pub published_rows: u64,
    pub staged_rows: u64,
    /// Flushes that published the rows (each one commit, plus one per merge).
    pub flushes: u64,
    /// Commits in the Delta log.
    pub commits: u64,
    pub files: usize,
    pub segments: usize,
    /// The checkpoint the timed opens replayed the log from.
    pub checkpoint: Option<u64>,
    /// Median of the timed opens, and every one of them.
    pub median_ms: f64,
    pub runs_ms: Vec<f64>,
    /// The same store with its checkpoints moved out of the log: every open replays every
    /// commit from 0.
    pub without_checkpoints_median_ms: f64,
    pub without_checkpoints_runs_ms: Vec<f64>,
}

/// Builds the store: `published` rows ingested and published by `flushes` flushes (so in at
/// least that many commits), then `staged` more acknowledged but left in the log, as a
/// process that died before staging them would leave them.
pub async fn build_store(
    root: &Path,
    published: u64,
    flushes: u64,
    staged: u64,
    batch_rows: usize,
) -> anyhow::Result<()> {
    let world = World::new(RealFs, SystemClock);
    let (pipeline, _) = Pipeline::open(world, root, Config::default()).await?;
    let per_flush = published.div_ceil(flushes.max(1)).max(1);
    let mut first = 0;
    while first < published {
        let end = (first + per_flush).min(published);
        while first < end {
            let n = (end - first).min(batch_rows as u64) as usize;
            let batch = data::batch(2, first, n);
            pipeline
                .ingest_part("published", first, batch, false)
                .await?;
            first += n as u64;
        }
        pipeline.flush().await?;
    }
    let mut first = 0;
    while first < staged {
        let n = (staged - first).min(batch_rows as u64) as usize;
        let batch = data::batch(3, first, n);
        pipeline.ingest_part("staged", first, batch, false).await?;
        first += n as u64;
    }
    Ok(())
}

/// Opens the store `runs + 1` times, checking what it holds; the times of all but the first
/// (which may repair: an unsealed segment's tail, a `_last_checkpoint`), and the last report.
#[allow(clippy::disallowed_methods, reason = "a benchmark times recovery")]
async fn time_opens(
    root: &Path,
    published: u64,
    staged: u64,
    runs: usize,
) -> anyhow::Result<(Vec<f64>, tally_pipeline::RecoveryReport)> {
    let mut times = Vec::new();
    let mut last = None;
    for run in 0..=runs {
        let world = World::new(RealFs, SystemClock);
        let started = Instant::now();
        let (pipeline, report) = Pipeline::open(world, root, Config::default()).await?;
        let took = started.elapsed().as_secs_f64() * 1e3;
        if report.published_rows != published || report.staged_rows != staged {
            bail!(
                "the store holds {} published and {} staged rows; expected {published} and {staged}",
                report.published_rows,
                report.staged_rows
            );
        }
        drop(pipeline);
        if run > 0 {
            times.push(took);
        }
        last = Some(report);
    }
    Ok((times, last.expect("at least one open")))
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark moves its own store's checkpoints aside"
)]
pub async fn recovery(
    root: &Path,
    published: u64,
    flushes: u64,
    staged: u64,
    runs: usize,
) -> anyhow::Result<Recovery> {
    let (runs_ms, report) = time_opens(root, published, staged, runs).await?;
    let log = root.join(tally_pipeline::layout::DELTA_LOG_DIR);
    let aside = root.join("checkpoints-aside");
    std::fs::create_dir_all(&aside)?;
    let mut commits = 0;
    for entry in std::fs::read_dir(&log)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if tally_pipeline::layout::parse_checkpoint_name(&name).is_some() {
            std::fs::rename(log.join(&name), aside.join(&name))?;
        } else if tally_pipeline::layout::parse_commit_name(&name).is_some() {
            commits += 1;
        }
    }
    let (without, bare) = time_opens(root, published, staged, runs).await?;
    if bare.checkpoint.is_some() {
        bail!("the store still opened from a checkpoint with them moved aside");
    }
    Ok(Recovery {
        published_rows: published,
        staged_rows: staged,
        flushes,
        commits,
        files: report.published_files,
        segments: report.live_segments,
        checkpoint: report.checkpoint,
        median_ms: median(&runs_ms),
        runs_ms,
        without_checkpoints_median_ms: median(&without),
        without_checkpoints_runs_ms: without,
    })
}

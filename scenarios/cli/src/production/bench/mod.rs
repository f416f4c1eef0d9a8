//! `tally bench`: the production path and the simulator measured in one run, written as a
//! Markdown report and JSON.
//!
//! The normal build measures the real-disk sections in this process and the ones that need a
//! process of their own (peak memory of `tally run`, `tally crashtest`) in children of this
//! binary. The simulator's sections need the simulation build: given `--sim-binary`, the
//! normal build runs that binary's `bench --json` and folds its figures into the report, so
//! that sim-vs-real ratios come from one run. `scripts/bench` builds both and does this.

mod data;
mod real;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use crate::output::{emit, say};
use crate::simulator_figures as simulator;

#[derive(Args)]
pub struct BenchArgs {
    /// Rows ingested by the throughput sections.
    #[arg(long, default_value_t = 2_000_000)]
    rows: u64,
    /// Rows per ingested batch in the throughput sections.
    #[arg(long, default_value_t = 64 * 1024)]
    batch_rows: usize,
    /// Rounds of the ingest section: each round runs the arrow-rs baseline, the bulk load and
    /// streaming ingest once, alternated; the report takes each one's median. A warm-up round
    /// runs first and is not counted.
    #[arg(long, default_value_t = 5)]
    ingest_runs: usize,
    /// Concurrent callers of the streaming ingest run, each ingesting its own source (the
    /// batches dealt among them in turn).
    #[arg(long, default_value_t = 8)]
    streaming_callers: usize,
    /// Published rows of the stores whose recovery is timed.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 1_000_000, 10_000_000])]
    recovery_rows: Vec<u64>,
    /// Flushes publishing those rows (each at least one commit: the stores' logs are long).
    #[arg(long, default_value_t = 1000)]
    recovery_flushes: u64,
    /// Unpublished (staged) rows in each of those stores.
    #[arg(long, default_value_t = 200_000)]
    staged_rows: u64,
    /// Rows of the inputs `tally run` is given for peak memory.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64, 8_000_000])]
    memory_rows: Vec<u64>,
    /// Rounds of the peak-memory runs (each round runs every input once).
    #[arg(long, default_value_t = 3)]
    memory_runs: usize,
    /// Alternated runs of `tally run` and of pyarrow, as whole processes, on one Parquet input
    /// of `--rows` rows.
    #[arg(long, default_value_t = 3)]
    process_runs: usize,
    /// Concurrent callers in the latency section.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    callers: Vec<usize>,
    /// Acknowledged batches timed per latency run (shared among its callers).
    #[arg(long, default_value_t = 2048)]
    latency_batches: u64,
    /// Crash-restart cycles of `tally crashtest`.
    #[arg(long, default_value_t = 20)]
    crashtest_runs: u64,
    /// Seeds of the `standard` scenario per simulator sweep.
    #[arg(long, default_value_t = 100)]
    sim_seeds: u64,
    /// The simulation build's `tally` (`target/sim/sim/tally`), for the simulator sections.
    #[arg(long)]
    sim_binary: Option<PathBuf>,
    /// Times the simulator's default sweep (`tally sweep`, no other argument) is run.
    #[arg(long, default_value_t = 3)]
    sim_runs: usize,
    /// Another simulation build of `tally` (e.g. the commit before a speed-up) whose default
    /// sweep runs alternately with `--sim-binary`'s (its `bench --baseline`).
    #[arg(long)]
    sim_baseline: Option<PathBuf>,
    /// Where the stores and files measured are made (a temporary directory inside it).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the Markdown.
    #[arg(long)]
    json: bool,
    /// Measure only these sections.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Ingest,
    Latency,
    Recovery,
    Memory,
    Processes,
    Crashtest,
    Simulator,
}

impl BenchArgs {
    fn wants(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
}

/// Everything one `tally bench` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: report::Machine,
    pub rows: u64,
    pub batch_rows: usize,
    pub ingest: Option<IngestRuns>,
    pub latency: Vec<real::Latency>,
    pub recovery: Vec<real::Recovery>,
    pub memory: Vec<Memory>,
    pub processes: Option<Processes>,
    pub crashtest: Option<Crashtest>,
    pub simulator: Option<simulator::Simulator>,
}

#[derive(Clone, Debug, Serialize)]
/// The ingest runs of one report: the pipeline twice and the arrow-rs baseline twice.
pub struct IngestRuns {
    /// The bulk load (`tally run`'s path): each row written once, into table files. The
    /// median of `rounds` (by rows/s), as are `pipeline` and `baseline`.
    pub bulk: real::Ingest,
    /// Streaming ingest: each row acknowledged through the log, then staged.
    pub pipeline: real::Ingest,
    /// Concurrent callers of the streaming runs.
    pub streaming_callers: usize,
    /// Rows/s of every round, in the order run.
    pub rounds: Vec<IngestRound>,
    pub with_merges: real::Ingest,
    /// Merge configuration of `with_merges`.
    pub merge_segment_bytes: u64,
    pub merge_fan_in: usize,
    pub merge_max_level: u32,
    pub baseline: real::Baseline,
    pub baseline_default: real::Baseline,
}

/// One round of the ingest section: rows/s of each run, in the order they ran.
#[derive(Clone, Debug, Serialize)]
pub struct IngestRound {
    /// The warm-up round: reported, not counted.
    pub warmup: bool,
    pub baseline: f64,
    pub bulk: f64,
    pub streaming: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    /// The round (from 0): every input runs once a round.
    pub round: usize,
    pub rows: u64,
    pub peak_rss_bytes: u64,
    pub seconds: f64,
}

/// `tally run` and pyarrow as whole processes on one Parquet input, alternated: pyarrow reads
/// the input and writes one ZSTD(1) file durably (`write_table`, then fsync of the file, rename,
/// fsync of the directory).
#[derive(Clone, Debug, Serialize)]
pub struct Processes {
    pub rows: u64,
    pub input_bytes: u64,
    pub tally_seconds: Vec<f64>,
    pub pyarrow_seconds: Vec<f64>,
    /// Why pyarrow did not run, when it did not.
    pub pyarrow_missing: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Crashtest {
    pub runs: u64,
    pub seconds: f64,
    pub cycles_per_second: f64,
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge: a work directory, child processes, the wall clock"
)]
pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| base.display().to_string())?;
    let work = tempfile::Builder::new()
        .prefix("tally-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("a work directory in {}", base.display()))?;
    let work = work.path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;

    let ingest = if args.wants(Section::Ingest) {
        say(&format!("generating {} rows", args.rows));
        let batches = data::batches(0, args.rows, args.batch_rows);
        Some(runtime.block_on(ingest_sections(&args, &batches, work))?)
    } else {
        None
    };

    let latency = latency_sections(&args, &runtime, work)?;

    let recovery = recovery_sections(&args, &runtime, work)?;
    drop(runtime);

    let memory = if args.wants(Section::Memory) {
        memory_rounds(&args, work)?
    } else {
        Vec::new()
    };
    let processes = if args.wants(Section::Processes) {
        Some(processes(&args, work)?)
    } else {
        None
    };
    let crashtest = if args.wants(Section::Crashtest) {
        Some(crashtest(args.crashtest_runs, work)?)
    } else {
        None
    };
    let simulator = match &args.sim_binary {
        Some(binary) if args.wants(Section::Simulator) => Some(simulator(binary, &args)?),
        Some(_) => None,
        None => {
            say("no --sim-binary: the simulator sections are left out");
            None
        }
    };

    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: report::Machine::read(),
        rows: args.rows,
        batch_rows: args.batch_rows,
        ingest,
        latency,
        recovery,
        memory,
        processes,
        crashtest,
        simulator,
    };
    write_report(&args, &report)?;
    Ok(ExitCode::SUCCESS)
}

#[allow(
    clippy::disallowed_methods,
    reason = "removing the benchmark's own stores"
)]
fn latency_sections(
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
    work: &Path,
) -> anyhow::Result<Vec<real::Latency>> {
    let mut latency = Vec::new();
    for &callers in args.callers.iter().filter(|_| args.wants(Section::Latency)) {
        say(&format!("latency: {callers} callers"));
        let per_caller = args.latency_batches.div_ceil(callers as u64).max(1);
        let root = work.join(format!("latency-{callers}"));
        latency.push(runtime.block_on(real::latency(callers, per_caller, 1000, &root))?);
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(latency)
}

#[allow(
    clippy::disallowed_methods,
    reason = "removing the benchmark's own stores"
)]
fn recovery_sections(
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
    work: &Path,
) -> anyhow::Result<Vec<real::Recovery>> {
    let mut recovery = Vec::new();
    for &rows in args
        .recovery_rows
        .iter()
        .filter(|_| args.wants(Section::Recovery))
    {
        say(&format!(
            "recovery: building a store of {rows} published rows"
        ));
        let root = work.join(format!("recovery-{rows}"));
        let flushes = args.recovery_flushes;
        runtime.block_on(real::build_store(
            &root,
            rows,
            flushes,
            args.staged_rows,
            args.batch_rows,
        ))?;
        say(&format!("recovery: timing opens of {rows} published rows"));
        recovery.push(runtime.block_on(real::recovery(
            &root,
            rows,
            flushes,
            args.staged_rows,
            7,
        ))?);
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(recovery)
}

/// Writes the report where `--out` and `--json-out` say, and prints one of them.
#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge writes the report files"
)]
fn write_report(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(report)?;
    value["targets"] = serde_json::to_value(report::targets(report))?;
    let json = serde_json::to_string_pretty(&value)?;
    let markdown = report::markdown(report);
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n")).with_context(|| path.display().to_string())?;
    }
    if let Some(path) = &args.out {
        std::fs::write(path, &markdown).with_context(|| path.display().to_string())?;
    }
    emit(&if args.json {
        format!("{json}\n")
    } else {
        markdown
    })?;
    Ok(())
}

#[allow(
    clippy::disallowed_methods,
    reason = "removing the benchmark's own stores"
)]
async fn ingest_sections(
    args: &BenchArgs,
    batches: &[arrow::array::RecordBatch],
    work: &Path,
) -> anyhow::Result<IngestRuns> {
    say("ingest: arrow-rs baseline (default encodings)");
    let baseline_default = real::baseline(batches, work, false)?;
    let callers = args.streaming_callers.max(1);
    let (rounds, baseline, bulk, pipeline) = ingest_rounds(args, batches, work).await?;
    // The default merge policy with small segments: about 40 level-0 files, so that merges
    // run while rows arrive and some rows climb every level.
    let merge_config = tally_pipeline::Config {
        segment_bytes: (args.rows * 90 / 40).max(1 << 16),
        ..tally_pipeline::Config::default()
    };
    // One caller: each group commit holds one batch, so the small segments seal one by one.
    say("ingest: streaming with merges, one caller");
    let path = real::IngestPath::Streaming { callers: 1 };
    let with_merges =
        real::ingest(batches, merge_config.clone(), &work.join("merges"), path).await?;
    for dir in ["bulk", "ingest", "merges"] {
        let _ = std::fs::remove_dir_all(work.join(dir));
    }
    Ok(IngestRuns {
        bulk,
        pipeline,
        streaming_callers: callers,
        rounds,
        with_merges,
        merge_segment_bytes: merge_config.segment_bytes,
        merge_fan_in: merge_config.merge_fan_in,
        merge_max_level: merge_config.max_level,
        baseline,
        baseline_default,
    })
}

/// The alternated rounds of the ingest section: a warm-up round (reported, not counted: the
/// first run of each path in a process pays for its allocator's first pages), then
/// `--ingest-runs` rounds. Returns every round and the median run of each path.
#[allow(
    clippy::disallowed_methods,
    reason = "removing the benchmark's own stores"
)]
async fn ingest_rounds(
    args: &BenchArgs,
    batches: &[arrow::array::RecordBatch],
    work: &Path,
) -> anyhow::Result<(Vec<IngestRound>, real::Baseline, real::Ingest, real::Ingest)> {
    let (mut baselines, mut bulks, mut streams) = (Vec::new(), Vec::new(), Vec::new());
    let mut rounds = Vec::new();
    let callers = args.streaming_callers.max(1);
    for round in 0..=args.ingest_runs.max(1) {
        let warmup = round == 0;
        say(&format!(
            "ingest: round {round} (warm-up: {warmup}): arrow-rs, bulk load, streaming with {callers} callers"
        ));
        let baseline = real::baseline(batches, work, true)?;
        let config = tally_pipeline::Config::default();
        let dir = work.join("bulk");
        let bulk = real::ingest(batches, config.clone(), &dir, real::IngestPath::Bulk).await?;
        let _ = std::fs::remove_dir_all(&dir);
        let dir = work.join("ingest");
        let path = real::IngestPath::Streaming { callers };
        let stream = real::ingest(batches, config, &dir, path).await?;
        let _ = std::fs::remove_dir_all(&dir);
        rounds.push(IngestRound {
            warmup,
            baseline: baseline.rows_per_second,
            bulk: bulk.rows_per_second,
            streaming: stream.rows_per_second,
        });
        if !warmup {
            baselines.push(baseline);
            bulks.push(bulk);
            streams.push(stream);
        }
    }
    Ok((
        rounds,
        median_by(baselines, |b| b.rows_per_second),
        median_by(bulks, |b| b.rows_per_second),
        median_by(streams, |b| b.rows_per_second),
    ))
}

/// The run with the median `key` (the upper median of an even count).
fn median_by<T>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    assert!(!runs.is_empty(), "a median of no runs");
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

/// Runs this binary with `args`, returning its stdout parsed as JSON.
#[allow(
    clippy::disallowed_methods,
    reason = "a child process of the benchmark"
)]
fn child_json(binary: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = std::process::Command::new(binary)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            binary.display(),
            args.join(" "),
            out.status
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reading the JSON of {} {}",
            binary.display(),
            args.join(" ")
        )
    })
}

fn number(value: &serde_json::Value, key: &str) -> anyhow::Result<f64> {
    value[key]
        .as_f64()
        .with_context(|| format!("no number {key:?} in {value}"))
}

/// Writes a Parquet input of `rows` benchmark rows.
#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the benchmark's input files"
)]
fn parquet_input(rows: u64, batch_rows: usize, work: &Path) -> anyhow::Result<PathBuf> {
    say(&format!("writing a Parquet input of {rows} rows"));
    let input = work.join(format!("input-{rows}.parquet"));
    let file = std::fs::File::create(&input)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, data::schema(), None)?;
    let mut first = 0;
    while first < rows {
        let n = (rows - first).min(batch_rows as u64) as usize;
        writer.write(&data::batch(4, first, n))?;
        first += n as u64;
    }
    writer.close()?;
    Ok(input)
}

/// `tally run` (a child of this binary) on `input` into a fresh store; its summary.
#[allow(
    clippy::disallowed_methods,
    reason = "removing the benchmark's own store"
)]
fn tally_run(input: &Path, rows: u64, root: &Path) -> anyhow::Result<serde_json::Value> {
    let me = std::env::current_exe()?;
    let summary = child_json(
        &me,
        &[
            "run",
            "--json",
            "--root",
            &root.display().to_string(),
            "--input",
            &input.display().to_string(),
        ],
    )?;
    let published = number(&summary, "published_rows")? as u64;
    if published != rows {
        bail!("tally run published {published} of {rows} rows");
    }
    std::fs::remove_dir_all(root).ok();
    Ok(summary)
}

/// Peak memory of `tally run`: every input once a round, `--memory-runs` rounds.
#[allow(clippy::disallowed_methods, reason = "removing the benchmark's inputs")]
fn memory_rounds(args: &BenchArgs, work: &Path) -> anyhow::Result<Vec<Memory>> {
    let inputs = args
        .memory_rows
        .iter()
        .map(|&rows| Ok((rows, parquet_input(rows, args.batch_rows, work)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for round in 0..args.memory_runs {
        for (rows, input) in &inputs {
            say(&format!("memory: tally run on {rows} rows (round {round})"));
            let summary = tally_run(input, *rows, &work.join(format!("memory-{rows}")))?;
            out.push(Memory {
                round,
                rows: *rows,
                peak_rss_bytes: number(&summary, "peak_rss_bytes")? as u64,
                seconds: number(&summary, "seconds")?,
            });
        }
    }
    for (_, input) in inputs {
        std::fs::remove_file(input).ok();
    }
    Ok(out)
}

/// The pyarrow side of [`Processes`]: read the input, write it as one ZSTD(1) file, fsync it,
/// rename it into place, fsync the directory.
const PYARROW_WRITE: &str = "import os, sys\n\
import pyarrow.parquet as pq\n\
src, out = sys.argv[1], sys.argv[2]\n\
table = pq.read_table(src)\n\
tmp = out + '.tmp'\n\
pq.write_table(table, tmp, compression='zstd', compression_level=1)\n\
fd = os.open(tmp, os.O_RDONLY); os.fsync(fd); os.close(fd)\n\
os.rename(tmp, out)\n\
fd = os.open(os.path.dirname(out), os.O_RDONLY); os.fsync(fd); os.close(fd)\n\
print(table.num_rows)\n";

/// The Python the interop tests use: `TALLY_PYTHON`, else `python3`.
fn python() -> PathBuf {
    std::env::var_os("TALLY_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

/// `tally run` and pyarrow alternated as whole processes on one input of `--rows` rows, timed
/// from outside.
#[allow(
    clippy::disallowed_methods,
    reason = "child processes, the wall clock, the benchmark's files"
)]
fn processes(args: &BenchArgs, work: &Path) -> anyhow::Result<Processes> {
    let input = parquet_input(args.rows, args.batch_rows, work)?;
    let probe = std::process::Command::new(python())
        .args(["-c", "import pyarrow"])
        .output();
    let pyarrow_missing = match probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Some(format!("{}: {e}", python().display())),
    };
    let mut result = Processes {
        rows: args.rows,
        input_bytes: std::fs::metadata(&input)?.len(),
        tally_seconds: Vec::new(),
        pyarrow_seconds: Vec::new(),
        pyarrow_missing,
    };
    for round in 0..args.process_runs {
        say(&format!("processes: tally run (round {round})"));
        let started = std::time::Instant::now();
        tally_run(&input, args.rows, &work.join("processes-store"))?;
        result.tally_seconds.push(started.elapsed().as_secs_f64());
        if result.pyarrow_missing.is_some() {
            continue;
        }
        say(&format!("processes: pyarrow (round {round})"));
        let out = work.join("pyarrow-out.parquet");
        let started = std::time::Instant::now();
        let run = std::process::Command::new(python())
            .args(["-c", PYARROW_WRITE])
            .arg(&input)
            .arg(&out)
            .output()
            .context("running pyarrow")?;
        result.pyarrow_seconds.push(started.elapsed().as_secs_f64());
        if !run.status.success() {
            bail!("pyarrow failed: {}", String::from_utf8_lossy(&run.stderr));
        }
        std::fs::remove_file(&out).ok();
    }
    std::fs::remove_file(&input).ok();
    Ok(result)
}

#[allow(
    clippy::disallowed_methods,
    reason = "a child process of the benchmark"
)]
fn crashtest(runs: u64, work: &Path) -> anyhow::Result<Crashtest> {
    say(&format!(
        "crashtest: {runs} crash-restart cycles on the real disk"
    ));
    let me = std::env::current_exe()?;
    let root = work.join("crashtest");
    let report = child_json(
        &me,
        &[
            "crashtest",
            "--json",
            "--runs",
            &runs.to_string(),
            "--root",
            &root.display().to_string(),
        ],
    )?;
    if number(&report, "failing")? != 0.0 {
        bail!("crashtest found failing runs while being timed: {report}");
    }
    let seconds = number(&report, "seconds")?;
    std::fs::remove_dir_all(&root).ok();
    Ok(Crashtest {
        runs,
        seconds,
        cycles_per_second: runs as f64 / seconds,
    })
}

fn simulator(binary: &Path, args: &BenchArgs) -> anyhow::Result<simulator::Simulator> {
    let (seeds, runs) = (args.sim_seeds.to_string(), args.sim_runs.to_string());
    let mut child = vec!["bench", "--json", "--sim-seeds", &seeds, "--runs", &runs];
    let baseline = args.sim_baseline.as_ref().map(|b| b.display().to_string());
    if let Some(b) = &baseline {
        child.extend(["--baseline", b]);
    }
    say(&format!(
        "simulator: {} {}",
        binary.display(),
        child.join(" ")
    ));
    let value = child_json(binary, &child)?;
    serde_json::from_value(value).context("reading the simulator's figures")
}

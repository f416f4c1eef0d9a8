//! The `tally` command line. This is the binary's edge: the only place that reads the wall
//! clock (to report elapsed time) and talks to the terminal.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod bench;
mod crashtest;
mod sim;

/// Crash points allocate and free many small buffers (decoded rows, footers, disk copies);
/// mimalloc serves them faster than the system allocator, and from per-thread heaps, so that
/// sweep jobs do not contend.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tally_scenarios::input::Format;
use tally_scenarios::production::{self, RunError, RunOptions};
use tally_scenarios::runtime::SIMULATION_BUILD;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Deterministic simulation testing for crash-safe data pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run many seeds of a scenario, checking a crash image after every filesystem call;
    /// print failing seeds with the command that replays them (simulation build:
    /// `cargo sim sweep ...`).
    Sweep(sim::SweepArgs),
    /// Reproduce one seed exactly, optionally printing its whole trace (simulation build:
    /// `cargo sim replay ...`).
    Replay(sim::ReplayArgs),
    /// Check every persistence variant of every crash point of a scenario's small workload
    /// (simulation build: `cargo sim explore ...`).
    Explore(sim::ExploreArgs),
    /// List the scenarios, the incidents they come from and their buggy twins.
    Scenarios(ScenariosArgs),
    /// Export the published rows added since the export directory's watermark into one new
    /// Parquet batch there, then advance the watermark (real disk, normal build).
    Export(ExportArgs),
    /// Crash runs on the real disk: each run's first lifetime in a child process that aborts
    /// itself at a seeded call, then recovery and the oracle in a fresh process (normal build).
    Crashtest(crashtest::CrashtestArgs),
    /// Ingest CSV, JSON Lines and Parquet files into a store on the real disk and publish them.
    Run(RunArgs),
    /// Check a store: manifest, files, footers and ledger agree (without reading data pages,
    /// unless --deep). Exit 0 when consistent, 1 otherwise.
    Verify(VerifyArgs),
    /// Print a store's manifest version, files and totals.
    Inspect(InspectArgs),
    /// Measure the production path on the real disk and, given the simulation build's binary,
    /// the simulator; write a Markdown and JSON report (`scripts/bench` runs the whole set).
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The store's directory (created if missing).
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// Input files; each is one source.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Format of every input, instead of guessing from the extension.
    #[arg(long)]
    format: Option<Format>,
    /// Rows per ingested batch.
    #[arg(long, default_value_t = 64 * 1024)]
    batch_rows: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// Also read every row and check sequence numbers are unique and within their files.
    #[arg(long)]
    deep: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ScenariosArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// The store to export from (recovered first, like every open).
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// The export directory (created if missing): `batch-<first seq>.parquet` files and the
    /// `WATERMARK`.
    #[arg(long)]
    to: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InspectArgs {
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    #[arg(long)]
    json: bool,
}

pub(crate) fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad seed {s:?}: {e}"))
    };
    match text.split_once("..") {
        Some((start, end)) => {
            let (start, end) = (number(start)?, number(end)?);
            if start >= end {
                return Err(format!("empty seed range {text:?}: write A..B with A < B"));
            }
            Ok(start..end)
        }
        None => {
            let seed = number(text)?;
            Ok(seed..seed.checked_add(1).ok_or("seed too large")?)
        }
    }
}

/// Writes to stdout. A reader that went away (`tally ... | head`) is not an error of ours.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}

fn simulation_only(command: &str) -> anyhow::Result<()> {
    if SIMULATION_BUILD {
        return Ok(());
    }
    bail!(
        "`tally {command}` runs only in the simulation build, where madsim decides every task interleaving from the seed: run `cargo sim {command} ...` instead"
    );
}

fn production_only(command: &str) -> anyhow::Result<()> {
    if SIMULATION_BUILD {
        bail!(
            "`tally {command}` works on the real disk: run it from the normal build (`cargo run --release -p tally-scenarios --bin tally -- {command} ...`)"
        );
    }
    Ok(())
}

fn real_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time"
)]
fn run_inputs(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = RunOptions {
        root: args.root,
        inputs: args.input,
        format: args.format,
        batch_rows: args.batch_rows,
        config: tally_pipeline::Config::default(),
    };
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::no_length();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rows ({per_sec}) {msg}",
            )
            .expect("the template is valid"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let started = std::time::Instant::now();
    let result = real_runtime()?.block_on(production::run(&options, &bar));
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let summary = match result {
        Ok(summary) => summary,
        Err(err @ RunError::Input(_)) => {
            eprintln!(
                "error: {err}\nnothing of this input was acknowledged; inputs before it are ingested and published"
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(RunError::Pipeline(err)) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
        Err(err @ RunError::Usage { .. }) => bail!("{err}"),
    };
    let rows_per_second = summary.rows_acknowledged as f64 / seconds.max(1e-9);
    if args.json {
        let mut value = serde_json::to_value(&summary).context("encoding the summary")?;
        value["seconds"] = serde_json::json!(seconds);
        value["rows_per_second"] = serde_json::json!(rows_per_second);
        value["peak_rss_bytes"] = serde_json::json!(peak_rss_bytes());
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        let mut text = String::new();
        if !summary.recovery.is_clean() {
            text += &format!("recovery on open:\n{}", summary.recovery);
        }
        for source in &summary.sources {
            text += &format!(
                "{}: {} ({} rows written, {} already acknowledged)\n",
                source.file.display(),
                source.status,
                source.rows_written,
                source.rows_already_acknowledged
            );
        }
        if summary.rows_acknowledged == 0 {
            text += "nothing new to ingest: every input was already acknowledged\n";
        }
        text += &format!(
            "{} rows acknowledged in {seconds:.2} s ({rows_per_second:.0} rows/s); manifest version {}: {} files, {} rows published\n",
            summary.rows_acknowledged,
            summary.manifest_version,
            summary.files_published,
            summary.published_rows,
        );
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident set so far (`VmHWM`), where Linux reports it.
fn peak_rss_bytes() -> Option<u64> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the process's own memory figures"
    )]
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(production::check(&args.root, args.deep))
        .with_context(|| format!("checking {}", args.root.display()))?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        let mut text = format!(
            "manifest version {}: {} files, {} published rows, {} staged rows in {} segments\n",
            report.manifest_version,
            report.files.len(),
            report.published_rows,
            report.staged_rows,
            report.segments.len()
        );
        if let Some(rows) = report.rows_read {
            text += &format!("read {rows} rows\n");
        }
        for repair in &report.pending_repairs {
            text += &format!("pending repair (done by the next open): {repair}\n");
        }
        for problem in &report.problems {
            text += &format!("PROBLEM: {problem}\n");
        }
        text += if report.is_consistent() {
            "consistent\n"
        } else {
            "INCONSISTENT\n"
        };
        emit(&text)?;
    }
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(production::check(&args.root, false))
        .with_context(|| format!("inspecting {}", args.root.display()))?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!("manifest version {}\n", report.manifest_version);
    text += &format!(
        "{:<34} {:>5} {:>12} {:>25} {:>12}\n",
        "file", "level", "rows", "seq range", "bytes"
    );
    for f in &report.files {
        text += &format!(
            "{:<34} {:>5} {:>12} {:>25} {:>12}\n",
            tally_pipeline::layout::table_file_name(f.level, f.id),
            f.level,
            f.rows,
            format!("{}..={}", f.seq_min, f.seq_max),
            f.bytes
        );
    }
    text += &format!(
        "total: {} files, {} rows, {} bytes; {} sources ({} complete); {} staged rows in {} segments\n",
        report.files.len(),
        report.published_rows,
        report.published_bytes,
        report.sources,
        report.complete_sources,
        report.staged_rows,
        report.segments.len()
    );
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn scenarios(args: ScenariosArgs) -> anyhow::Result<ExitCode> {
    use tally_scenarios::harness::scenario::Scenario;
    if args.json {
        let list: Vec<_> = Scenario::ALL
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name(),
                    "incident": s.incident(),
                    "description": s.describe(),
                    "twins": s.twins().iter().map(|t| serde_json::json!({
                        "name": t.name(),
                        "description": t.describe(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        emit(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for s in Scenario::ALL {
        let incident = s
            .incident()
            .map_or(String::new(), |i| format!(" (incident {i})"));
        text += &format!("{}{incident}\n    {}\n", s.name(), s.describe());
        for t in s.twins() {
            text += &format!("    twin {}: {}\n", t.name(), t.describe());
        }
    }
    text += "run one: cargo sim sweep --scenario NAME [--twin TWIN]; cargo sim explore --scenario NAME\n";
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(production::export(&args.root, &args.to))
        .with_context(|| {
            format!(
                "exporting {} into {}",
                args.root.display(),
                args.to.display()
            )
        })?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&format!("{report}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Under simulation the pipeline's error logs are the faults the harness
                // injects; the harness reports what matters. `RUST_LOG` brings them back.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(if SIMULATION_BUILD {
                        "warn,tally_pipeline=off"
                    } else {
                        "warn"
                    })
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sweep(args) => simulation_only("sweep").and_then(|()| sim::sweep(args)),
        Command::Replay(args) => simulation_only("replay").and_then(|()| sim::replay(args)),
        Command::Explore(args) => simulation_only("explore").and_then(|()| sim::explore(args)),
        Command::Crashtest(args) => {
            production_only("crashtest").and_then(|()| crashtest::crashtest(args))
        }
        Command::Run(args) => production_only("run").and_then(|()| run_inputs(args)),
        Command::Verify(args) => production_only("verify").and_then(|()| verify(args)),
        Command::Inspect(args) => production_only("inspect").and_then(|()| inspect(args)),
        Command::Scenarios(args) => scenarios(args),
        Command::Export(args) => production_only("export").and_then(|()| export(args)),
        Command::Bench(args) => bench::bench(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

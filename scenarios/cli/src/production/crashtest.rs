//! `tally crashtest`: crash runs on the real disk, each in a child process that aborts itself;
//! with `--power-loss`, on a LazyFS mount whose unsynced data is dropped after each abort.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tally_faults::Control;
use tally_harness::crashtest::{self, CHILD_ERROR_EXIT, CrashRun};

use super::lazyfs::LazyFs;
use crate::output::{emit, progress_bar};

#[derive(Args)]
pub struct CrashtestArgs {
    /// A directory for the runs' stores (created if missing); each run uses `run-<seed>` in it.
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value_t = 20)]
    runs: u64,
    /// Seed of the first run; run i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the stores of passing runs (failing runs' stores are always kept).
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    json: bool,
    /// Power loss instead of a process crash: the runs' stores live on a LazyFS mount (made
    /// under `--root`), and after each child aborts every unsynced byte is dropped before
    /// recovery runs.
    #[arg(long, requires = "lazyfs")]
    power_loss: bool,
    /// The LazyFS build (`lazyfs` and `libpcache.so.0`) that `--power-loss` mounts.
    #[arg(long, value_name = "BUILD_DIR")]
    lazyfs: Option<PathBuf>,
    /// A negative control for the children's lifetimes: `lying-sync` makes every file `sync` a
    /// no-op (a power-loss run must catch it; a plain crash run cannot), `lying-sync-dir` every
    /// directory sync.
    #[arg(long)]
    control: Option<Control>,
    /// Run as the child of run `--seed` in directory `--root` (used by crashtest itself).
    #[arg(long, hide = true)]
    child: bool,
}

#[derive(Serialize)]
struct Report {
    root: String,
    /// Whether each abort was followed by a power loss (LazyFS dropping unsynced data).
    power_loss: bool,
    control: Option<String>,
    first_seed: u64,
    runs: Vec<CrashRun>,
    aborted: u64,
    failing: u64,
    seconds: f64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// How a child ended, whether that is one of the expected endings, and whether it aborted.
fn describe(status: std::process::ExitStatus) -> (String, bool, bool) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(6)) => ("aborted at its planned crash".into(), true, true),
        (Some(0), _) => ("finished (its crash never came)".into(), true, false),
        (Some(CHILD_ERROR_EXIT), _) => ("stopped on an injected error".into(), true, false),
        (Some(code), _) => (
            format!("ended unexpectedly with exit code {code}"),
            false,
            false,
        ),
        (None, signal) => (
            format!(
                "ended unexpectedly on signal {}",
                signal.map_or_else(|| "unknown".into(), |s| s.to_string())
            ),
            false,
            false,
        ),
    }
}

pub fn crashtest(args: CrashtestArgs) -> anyhow::Result<ExitCode> {
    if args.child {
        let controls: Vec<Control> = args.control.into_iter().collect();
        return Ok(
            match runtime()?.block_on(crashtest::child(&args.root, args.seed, &controls)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(CHILD_ERROR_EXIT as u8)
                }
            },
        );
    }
    let report = run_all(&args)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report_text(&report))?;
    }
    Ok(if report.failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge: wall-clock time, the run directories"
)]
fn run_all(args: &CrashtestArgs) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&args.root)
        .with_context(|| format!("creating {}", args.root.display()))?;
    let base = std::fs::canonicalize(&args.root)?;
    let exe = std::env::current_exe().context("finding the tally binary")?;
    let lazyfs = match (&args.lazyfs, args.power_loss) {
        (Some(build), true) => Some(LazyFs::mount(build, &base)?),
        _ => None,
    };
    let root = lazyfs
        .as_ref()
        .map_or_else(|| base.clone(), |l| l.mount.clone());
    if !args.json {
        emit(&format!(
            "tally crashtest: {} runs from seed {} in {} ({}; each run's first lifetime in a child process that aborts itself{}){}\n",
            args.runs,
            args.seed,
            root.display(),
            if lazyfs.is_some() {
                "LazyFS over the real disk"
            } else {
                "real disk"
            },
            if lazyfs.is_some() {
                ", then a power loss drops every unsynced byte"
            } else {
                ""
            },
            args.control
                .map_or_else(String::new, |c| format!(", control {c}")),
        ))?;
    }
    let bar = progress_bar(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs ({per_sec}) {msg}",
        Some(args.runs),
        args.json,
    );
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    let (mut aborted, mut failing) = (0, 0);
    for seed in args.seed..args.seed + args.runs {
        let (run, was_aborted) = crash_run(&exe, &root, seed, args, lazyfs.as_ref())?;
        aborted += u64::from(was_aborted);
        if let Some(first) = run.violations.first() {
            failing += 1;
            bar.println(format!("FAIL seed {seed}: {first}"));
        }
        runs.push(run);
        bar.set_message(format!("{aborted} aborted, {failing} failing"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Report {
        root: root.display().to_string(),
        power_loss: lazyfs.is_some(),
        control: args.control.map(|c| c.to_string()),
        first_seed: args.seed,
        runs,
        aborted,
        failing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One run: its first lifetime in a child that aborts itself, then (on LazyFS) a power loss,
/// then recovery and the oracle here. Returns the run and whether the child aborted. A
/// passing run's store is removed unless `--keep`.
#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge: the run's directory, a child process"
)]
fn crash_run(
    exe: &std::path::Path,
    root: &std::path::Path,
    seed: u64,
    args: &CrashtestArgs,
    lazyfs: Option<&LazyFs>,
) -> anyhow::Result<(CrashRun, bool)> {
    let dir = root.join(format!("run-{seed}"));
    if dir.exists() {
        bail!("{} exists: use an empty --root", dir.display());
    }
    let mut command = Command::new(exe);
    command
        .args([
            "crashtest",
            "--child",
            "--seed",
            &seed.to_string(),
            "--root",
        ])
        .arg(&dir);
    if let Some(control) = args.control {
        command.args(["--control", control.name()]);
    }
    let child = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("starting the child")?;
    let (progress, done) = crashtest::parse_progress(&String::from_utf8_lossy(&child.stdout));
    let (how, expected, aborted) = describe(child.status);
    let mut violations = Vec::new();
    if !expected {
        violations.push(format!("the child {how}"));
    } else if child.status.success() && !done {
        violations.push("the child exited 0 without finishing its lifetime".to_owned());
    }
    let rows_acknowledged = progress.values().map(|p| p.acked).sum();
    if let Some(lazyfs) = lazyfs {
        lazyfs.power_loss()?;
    }
    if dir.exists() {
        let breaches = runtime()?.block_on(crashtest::after_child(&dir, seed, progress));
        violations.extend(breaches.iter().map(ToString::to_string));
    }
    if violations.is_empty() && !args.keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    let run = CrashRun {
        seed,
        child: how,
        rows_acknowledged,
        violations,
    };
    Ok((run, aborted))
}

fn report_text(report: &Report) -> String {
    let runs = report.runs.len() as u64;
    let mut text = format!(
        "{runs} runs ({} aborted mid-run), {} failing, in {:.1} s ({:.1} crash-restart cycles/s)\n",
        report.aborted,
        report.failing,
        report.seconds,
        runs as f64 / report.seconds.max(1e-9)
    );
    for run in report.runs.iter().filter(|r| !r.violations.is_empty()) {
        text += &format!(
            "FAIL seed {}: the child {}; {}\n  store kept in {}/run-{}\n",
            run.seed,
            run.child,
            run.violations.join("; "),
            report.root,
            run.seed
        );
    }
    text
}

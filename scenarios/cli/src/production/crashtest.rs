//! `tally crashtest`: crash runs on the real disk, each in a child process that aborts itself;
//! with `--power-loss`, on a LazyFS mount whose unsynced data is dropped after each abort.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tally_faults::Control;
use tally_harness::crashtest::{self, CHILD_ERROR_EXIT, CrashRun};
use tally_harness::fidelity::Fidelity;

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
    /// With `--power-loss`: mirror every call of each child onto a simulated disk and, after
    /// the power loss, compare what LazyFS kept with what the simulated disk says a crash at
    /// that call keeps (file lengths and contents); a disagreement fails the run. Images go to
    /// `ROOT/fidelity/`.
    #[arg(long, requires = "power_loss")]
    fidelity: bool,
    /// Where the child writes its simulated disk's images (used by crashtest itself).
    #[arg(long, hide = true)]
    fidelity_out: Option<PathBuf>,
    /// Run as the child of run `--seed` in directory `--root` (used by crashtest itself).
    #[arg(long, hide = true)]
    child: bool,
}

/// The fidelity comparisons of a crashtest, summed over its runs.
#[derive(Default, Serialize)]
struct FidelityTotals {
    runs_compared: u64,
    /// Runs stopped while a call was half made on the two disks: not comparable.
    runs_indeterminate: u64,
    paths: u64,
    agreeing: u64,
    /// Directory entries LazyFS kept that the strict image drops, and strict entries it no
    /// longer had: the directory-entry gap, not failures.
    entries_beyond_strict: u64,
    entries_short_of_strict: u64,
    disagreements: u64,
    durable_data_lost: u64,
    divergences: u64,
}

impl FidelityTotals {
    fn add(&mut self, f: &Fidelity) {
        if f.indeterminate.is_some() {
            self.runs_indeterminate += 1;
        } else {
            self.runs_compared += 1;
        }
        self.paths += f.paths;
        self.agreeing += f.agreeing;
        self.entries_beyond_strict += f.entries_beyond_strict;
        self.entries_short_of_strict += f.entries_short_of_strict;
        self.disagreements += f.disagreements.len() as u64;
        self.durable_data_lost += f
            .disagreements
            .iter()
            .filter(|d| d.lost_durable_data())
            .count() as u64;
        self.divergences += f.divergences.len() as u64;
    }

    fn text(&self) -> String {
        format!(
            "fidelity: {} runs compared ({} indeterminate), {} paths, {} as the simulated disk predicts; \
             {} disagreements ({} durable data lost), {} mirror divergences; the directory-entry gap: \
             LazyFS kept {} entries the strict image drops, and lacked {} it keeps\n",
            self.runs_compared,
            self.runs_indeterminate,
            self.paths,
            self.agreeing,
            self.disagreements,
            self.durable_data_lost,
            self.divergences,
            self.entries_beyond_strict,
            self.entries_short_of_strict
        )
    }
}

#[derive(Serialize)]
struct Report {
    root: String,
    /// Whether each abort was followed by a power loss (LazyFS dropping unsynced data).
    power_loss: bool,
    control: Option<String>,
    first_seed: u64,
    /// With `--fidelity`: the comparisons of every run, summed.
    #[serde(skip_serializing_if = "Option::is_none")]
    fidelity: Option<FidelityTotals>,
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
            match runtime()?.block_on(crashtest::child(
                &args.root,
                args.seed,
                &controls,
                args.fidelity_out.as_deref(),
            )) {
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
    if args.fidelity {
        std::fs::create_dir_all(base.join("fidelity"))?;
    }
    if !args.json {
        emit(&banner(args, &root, lazyfs.is_some()))?;
    }
    let bar = progress_bar(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs ({per_sec}) {msg}",
        Some(args.runs),
        args.json,
    );
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    let (mut aborted, mut failing) = (0, 0);
    let mut fidelity = args.fidelity.then(FidelityTotals::default);
    for seed in args.seed..args.seed + args.runs {
        let (run, was_aborted) = crash_run(&exe, &root, seed, args, lazyfs.as_ref())?;
        aborted += u64::from(was_aborted);
        if let Some(first) = run.violations.first() {
            failing += 1;
            bar.println(format!("FAIL seed {seed}: {first}"));
        }
        if let (Some(totals), Some(f)) = (fidelity.as_mut(), &run.fidelity) {
            totals.add(f);
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
        fidelity,
        runs,
        aborted,
        failing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The first line of a text report: what the runs are.
fn banner(args: &CrashtestArgs, root: &std::path::Path, power_loss: bool) -> String {
    format!(
        "tally crashtest: {} runs from seed {} in {} ({}; each run's first lifetime in a child process that aborts itself{}{}){}\n",
        args.runs,
        args.seed,
        root.display(),
        if power_loss {
            "LazyFS over the real disk"
        } else {
            "real disk"
        },
        if power_loss {
            ", then a power loss drops every unsynced byte"
        } else {
            ""
        },
        if args.fidelity {
            "; every call mirrored onto the simulated disk, whose prediction is compared with what LazyFS kept"
        } else {
            ""
        },
        args.control
            .map_or_else(String::new, |c| format!(", control {c}")),
    )
}

/// Where a run's child writes its simulated disk's images, with `--fidelity`.
fn images_of(base: &std::path::Path, seed: u64) -> PathBuf {
    base.join("fidelity").join(format!("run-{seed}.json"))
}

/// One run: its first lifetime in a child that aborts itself, then (on LazyFS) a power loss
/// and (with `--fidelity`) the comparison, then recovery and the oracle here. Returns the run
/// and whether the child aborted. A passing run's store is removed unless `--keep`.
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
    let images = (args.fidelity && lazyfs.is_some()).then(|| images_of(&args.root, seed));
    let child = spawn_child(exe, &dir, seed, args.control, images.as_deref())?;
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
    let fidelity = match &images {
        Some(images) => Some(compare_images(&dir, images, &mut violations)?),
        None => None,
    };
    if dir.exists() {
        let breaches = runtime()?.block_on(crashtest::after_child(&dir, seed, progress));
        violations.extend(breaches.iter().map(ToString::to_string));
    }
    if violations.is_empty() && !args.keep {
        std::fs::remove_dir_all(&dir).ok();
        if let Some(images) = &images {
            std::fs::remove_file(images).ok();
        }
    }
    let run = CrashRun {
        seed,
        child: how,
        rows_acknowledged,
        violations,
        fidelity,
    };
    Ok((run, aborted))
}

/// Runs the child of run `seed` in `dir` to its end (its abort, its finish or its error).
fn spawn_child(
    exe: &std::path::Path,
    dir: &std::path::Path,
    seed: u64,
    control: Option<Control>,
    images: Option<&std::path::Path>,
) -> anyhow::Result<std::process::Output> {
    let mut command = Command::new(exe);
    command
        .args([
            "crashtest",
            "--child",
            "--seed",
            &seed.to_string(),
            "--root",
        ])
        .arg(dir);
    if let Some(control) = control {
        command.args(["--control", control.name()]);
    }
    if let Some(images) = images {
        command.arg("--fidelity-out").arg(images);
    }
    command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("starting the child")
}

/// The fidelity comparison of one run; a disagreement or a divergence is a violation.
fn compare_images(
    dir: &std::path::Path,
    images: &std::path::Path,
    violations: &mut Vec<String>,
) -> anyhow::Result<Fidelity> {
    let found = runtime()?.block_on(crashtest::fidelity_after_power_loss(dir, images));
    let fidelity = match found {
        Ok(fidelity) => fidelity,
        Err(e) => {
            violations.push(format!("fidelity: {e}"));
            return Ok(Fidelity::default());
        }
    };
    const SHOWN: usize = 5;
    for d in fidelity.disagreements.iter().take(SHOWN) {
        violations.push(format!("fidelity: {d}"));
    }
    if fidelity.disagreements.len() > SHOWN {
        violations.push(format!(
            "fidelity: and {} more disagreements",
            fidelity.disagreements.len() - SHOWN
        ));
    }
    for d in &fidelity.divergences {
        violations.push(format!("fidelity: the mirror diverged: {d}"));
    }
    Ok(fidelity)
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
    if let Some(fidelity) = &report.fidelity {
        text += &fidelity.text();
    }
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

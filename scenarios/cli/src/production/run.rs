//! `tally run`: input files ingested into a store on the real disk and published.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressBar;
use tally_production::input::Format;
use tally_production::{Progress, RunError, RunOptions, RunSummary};

use super::real_runtime;
use crate::output::{emit, progress_bar};

#[derive(Args)]
pub struct RunArgs {
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

/// `tally run`'s progress drawn as an indicatif bar.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, message: String, rows: Option<u64>) {
        self.0.set_message(message);
        self.0.set_position(0);
        match rows {
            Some(rows) => self.0.set_length(rows),
            None => self.0.unset_length(),
        }
    }
    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
    fn note(&self, line: String) {
        self.0.println(line);
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reports wall-clock time"
)]
pub fn run_inputs(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = RunOptions {
        root: args.root,
        inputs: args.input,
        format: args.format,
        batch_rows: args.batch_rows,
        config: tally_pipeline::Config::default(),
    };
    let bar = Bar(progress_bar(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rows ({per_sec}) {msg}",
        None,
        args.json,
    ));
    let started = std::time::Instant::now();
    let result = real_runtime()?.block_on(tally_production::run(&options, &bar));
    bar.0.finish_and_clear();
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
        Err(err @ RunError::Changed { .. }) => {
            eprintln!("error: {err}\ninputs before it are ingested and published");
            return Ok(ExitCode::FAILURE);
        }
        Err(err @ RunError::Usage { .. }) => bail!("{err}"),
    };
    if args.json {
        emit_json(&summary, seconds)?;
    } else {
        emit(&summary_text(&summary, seconds))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn emit_json(summary: &RunSummary, seconds: f64) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(summary).context("encoding the summary")?;
    value["seconds"] = serde_json::json!(seconds);
    value["rows_per_second"] = serde_json::json!(rows_per_second(summary, seconds));
    value["peak_rss_bytes"] = serde_json::json!(peak_rss_bytes());
    emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))
}

fn rows_per_second(summary: &RunSummary, seconds: f64) -> f64 {
    summary.rows_acknowledged as f64 / seconds.max(1e-9)
}

fn summary_text(summary: &RunSummary, seconds: f64) -> String {
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
    if summary
        .sources
        .iter()
        .all(|s| s.status == "already-ingested")
    {
        text += "nothing new to ingest: every input was already ingested\n";
    }
    text += &format!(
        "{} rows acknowledged in {seconds:.2} s ({:.0} rows/s); version {}: {} files, {} rows published\n",
        summary.rows_acknowledged,
        rows_per_second(summary, seconds),
        summary.manifest_version,
        summary.files_published,
        summary.published_rows,
    );
    text
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

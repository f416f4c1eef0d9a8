//! The commands of the normal build: the pipeline on the real disk (`run`, `verify`,
//! `inspect`, `export`, `recover`, `vacuum`), real-disk crash runs (`crashtest`) and the benchmarks (`bench`).

mod bench;
mod crashtest;
mod lazyfs;
mod recover;
mod run;
mod store;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::scenarios::{self, ScenariosArgs};

#[derive(Subcommand)]
pub enum Command {
    /// Ingest CSV, JSON Lines and Parquet files into a store on the real disk and publish them.
    Run(run::RunArgs),
    /// Check a store: the Delta log, files, footers and ledger agree (without reading data
    /// pages, unless --deep). Exit 0 when consistent, 1 otherwise.
    Verify(store::VerifyArgs),
    /// Print a store's versions (what each commit did, whether it can still be read back),
    /// its current files and totals.
    Inspect(store::InspectArgs),
    /// Delete the table files merges removed more than the retention period ago (7 days by
    /// default): versions older than that can no longer be read back.
    Vacuum(store::VacuumArgs),
    /// Open a store, running recovery, and report what it did. A store whose log holds a
    /// damaged commit is refused by every open; --accept-loss rolls it back to the last good
    /// version and reports what was lost. Exit 0 when the store opened, 1 otherwise.
    Recover(recover::RecoverArgs),
    /// Export the published rows added since the export directory's watermark into one new
    /// Parquet batch there, then advance the watermark.
    Export(store::ExportArgs),
    /// Crash runs on the real disk: each run's first lifetime in a child process that aborts
    /// itself at a seeded call, then recovery and the oracle in a fresh process.
    Crashtest(crashtest::CrashtestArgs),
    /// List the scenarios, the incidents they come from and their buggy twins.
    Scenarios(ScenariosArgs),
    /// Measure the production path on the real disk and, given the simulation build's binary,
    /// the simulator; write a Markdown and JSON report (`scripts/bench` runs the whole set).
    // Boxed: its many options would make every `Command` as large as it.
    Bench(Box<bench::BenchArgs>),
}

pub const DEFAULT_LOG_FILTER: &str = "warn";

/// Shown under `tally --help`.
pub const BUILD_NOTE: &str = "This is the normal build. The simulation commands (sweep, replay, explore) are in the simulation build: `cargo sim <command> ...`.";

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::run_inputs(args),
        Command::Verify(args) => store::verify(args),
        Command::Inspect(args) => store::inspect(args),
        Command::Export(args) => store::export(args),
        Command::Vacuum(args) => store::vacuum(args),
        Command::Recover(args) => recover::recover(args),
        Command::Crashtest(args) => crashtest::crashtest(args),
        Command::Scenarios(args) => scenarios::list(args),
        Command::Bench(args) => bench::bench(*args),
    }
}

fn real_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

//! The commands of the simulation build (`cargo sim <command>`): every one of them runs the
//! pipeline on the simulated disk, where madsim decides every task interleaving from the seed.

mod bench;
mod choice;
mod explore;
mod merge_reports;
mod replay;
mod sweep;

use std::process::ExitCode;

use clap::Subcommand;

use crate::scenarios::{self, ScenariosArgs};

#[derive(Subcommand)]
pub enum Command {
    /// Run many seeds of a scenario, checking a crash image after every filesystem call;
    /// print failing seeds with the command that replays them.
    Sweep(sweep::SweepArgs),
    /// Reproduce one seed exactly, optionally printing its whole trace.
    Replay(replay::ReplayArgs),
    /// Check every persistence variant of every crash point of a scenario's small workload.
    Explore(explore::ExploreArgs),
    /// Combine the JSON reports of a sweep's shards into one verdict: every shard present
    /// once, failing seeds with their reproduce lines, totals, probe coverage.
    MergeReports(merge_reports::MergeArgs),
    /// List the scenarios, the incidents they come from and their buggy twins.
    Scenarios(ScenariosArgs),
    /// Measure the simulator: crash points per second and their cost part by part (the normal
    /// build's `tally bench --sim-binary` folds these figures into its report).
    Bench(bench::BenchArgs),
}

/// Under simulation the pipeline's error logs are the faults the harness injects; the harness
/// reports what matters. `RUST_LOG` brings them back.
pub const DEFAULT_LOG_FILTER: &str = "warn,tally_pipeline=off";

/// Shown under `tally --help`.
pub const BUILD_NOTE: &str = "This is the simulation build (`cargo sim ...`). The real-disk commands (run, verify, inspect, export, crashtest, bench) are in the normal build: `cargo run --release -p tally-cli -- <command>`.";

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sweep(args) => sweep::sweep(args),
        Command::Replay(args) => replay::replay(args),
        Command::Explore(args) => explore::explore(args),
        Command::MergeReports(args) => merge_reports::merge_reports(args),
        Command::Scenarios(args) => scenarios::list(args),
        Command::Bench(args) => bench::bench(args),
    }
}

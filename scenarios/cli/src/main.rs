//! The `tally` command line, a thin layer over the harness (`tally-harness`) and the
//! production path (`tally-production`). Each build carries only its own commands: the
//! simulation build (`--cfg madsim`, `cargo sim ...`) the ones that run on the simulated disk,
//! the normal build the ones that run on the real disk. This is the binary's edge: the only
//! place that reads the wall clock (to report elapsed time) and talks to the terminal.

use std::process::ExitCode;

use clap::Parser;

mod output;
mod scenarios;
mod simulator_figures;

#[cfg(not(madsim))]
mod production;
#[cfg(not(madsim))]
use production as commands;
#[cfg(madsim)]
mod simulation;
#[cfg(madsim)]
use simulation as commands;

/// Crash points allocate and free many small buffers (decoded rows, footers, disk copies);
/// mimalloc serves them faster than the system allocator, and from per-thread heaps, so that
/// sweep jobs do not contend. Its v2 line (the `v2` feature): v3 keeps freed pages for a
/// second, and `tally run`'s peak memory then swung by a fifth from run to run
/// (docs/architecture.md, "Where data flows").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Deterministic simulation testing for crash-safe data pipelines",
    after_help = commands::BUILD_NOTE
)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(commands::DEFAULT_LOG_FILTER)
            }),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return refuse(&err),
    };
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Bad usage (or `--help`, `--version`). A command of the other build is named as such.
fn refuse(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    if err.kind() == clap::error::ErrorKind::InvalidSubcommand {
        eprintln!("\n{}", commands::BUILD_NOTE);
    }
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

//! `tally recover`: opens a store on the real disk — which runs recovery — and says what
//! recovery did. A damaged commit in the Delta log makes every open refuse; `--accept-loss` is the
//! deliberate way past it: it rolls back to the last good version and reports the loss.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tally_pipeline::{Config, Error, Pipeline};
use tally_sim::{RealFs, SystemClock, World};

use super::real_runtime;
use crate::output::emit;

#[derive(Args)]
pub struct RecoverArgs {
    /// The store to recover (it must exist and be a tally store: nothing is created).
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// Roll back over damaged commits: set them, and the table files only they may reference,
    /// aside in _tally/quarantine/ and open the last good version. The rows of those files
    /// leave the table and the ledger forgets their sources' acknowledgements.
    #[arg(long)]
    accept_loss: bool,
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the store opened (healthy, repaired, or rolled back with `--accept-loss`);
/// 1 when it needs `--accept-loss` (nothing was changed) or recovery refused otherwise.
pub fn recover(args: RecoverArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::default();
    config.recovery.accept_loss = args.accept_loss;
    let world = World::new(RealFs, SystemClock);
    let opened = real_runtime()?.block_on(async {
        Pipeline::open_existing(world, &args.root, config)
            .await
            .map(|(_, report)| report)
    });
    match opened {
        Ok(report) => {
            if args.json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
            } else {
                emit(&format!("recovered {}: {report}", args.root.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Damaged(damage)) => {
            if args.json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&damage)?))?;
            }
            eprintln!(
                "error: {damage}\ntally recover changed nothing: run it with --accept-loss to roll back"
            );
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

//! `tally scenarios`: the scenarios, the incidents they come from and their buggy twins.

use std::process::ExitCode;

use clap::Args;
use tally_harness::scenario::Scenario;

use crate::output::emit;

#[derive(Args)]
pub struct ScenariosArgs {
    #[arg(long)]
    json: bool,
}

pub fn list(args: ScenariosArgs) -> anyhow::Result<ExitCode> {
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

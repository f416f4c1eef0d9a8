//! `tally verify`, `tally inspect` and `tally export`: a store on the real disk, checked,
//! listed, or exported from.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::real_runtime;
use crate::output::emit;

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// Also read every row and check sequence numbers are unique and within their files.
    #[arg(long)]
    deep: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
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

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(tally_production::check(&args.root, args.deep))
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
        for file in &report.unchecked {
            text += &format!("unchecked: {file}\n");
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

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(tally_production::check(&args.root, false))
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

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let report = real_runtime()?
        .block_on(tally_production::export(&args.root, &args.to))
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

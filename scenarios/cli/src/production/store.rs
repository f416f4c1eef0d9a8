//! `tally verify`, `tally inspect`, `tally export` and `tally vacuum`: a store on the real
//! disk, checked, listed, exported from, or rid of removed files past their retention.

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
pub struct VacuumArgs {
    #[arg(long, default_value = "./tally-data")]
    root: PathBuf,
    /// Keep removed files this many seconds after the commit that removed them (default: 7
    /// days, Delta's default). A shorter period breaks time travel to the versions before.
    #[arg(long)]
    retention_secs: Option<u64>,
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
            "version {}: {} files, {} published rows, {} staged rows in {} segments\n",
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

/// `tally inspect --json`: the store report, and its versions.
#[derive(serde::Serialize)]
struct Inspection {
    #[serde(flatten)]
    report: tally_pipeline::verify::StoreReport,
    versions: Vec<tally_pipeline::history::VersionSummary>,
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (report, versions) = real_runtime()?
        .block_on(async {
            let report = tally_production::check(&args.root, false).await?;
            let versions = tally_production::versions(&args.root).await?;
            Ok::<_, tally_pipeline::Error>((report, versions))
        })
        .with_context(|| format!("inspecting {}", args.root.display()))?;
    if args.json {
        let inspection = Inspection { report, versions };
        emit(&format!("{}\n", serde_json::to_string_pretty(&inspection)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = versions_text(&versions);
    text += &format!("version {}\n", report.manifest_version);
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

/// One line per version: when, what, the table's rows and files, and whether it can still be
/// read back.
fn versions_text(versions: &[tally_pipeline::history::VersionSummary]) -> String {
    let mut text = format!(
        "{:>8} {:<23} {:<12} {:>7} {:>7} {:>12} {:>12} {:>7}  {}\n",
        "version",
        "time (UTC)",
        "operation",
        "+files",
        "-files",
        "+rows",
        "rows",
        "files",
        "readable"
    );
    for v in versions {
        let time = arrow::temporal_conversions::timestamp_ms_to_datetime(v.timestamp_ms)
            .map_or_else(
                || v.timestamp_ms.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            );
        let readable = if v.files_missing == 0 {
            "yes".to_string()
        } else {
            format!("no ({} files vacuumed or missing)", v.files_missing)
        };
        text += &format!(
            "{:>8} {:<23} {:<12} {:>7} {:>7} {:>12} {:>12} {:>7}  {readable}\n",
            v.version,
            time,
            v.operation,
            v.files_added,
            v.files_removed,
            v.rows_added,
            v.rows,
            v.files
        );
    }
    text
}

pub fn vacuum(args: VacuumArgs) -> anyhow::Result<ExitCode> {
    let retention = args.retention_secs.map(std::time::Duration::from_secs);
    let report = real_runtime()?
        .block_on(tally_production::vacuum(&args.root, retention))
        .with_context(|| format!("vacuuming {}", args.root.display()))?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "deleted {} removed files older than the retention ({} s)\n",
        report.deleted.len(),
        report.retention_secs
    );
    for name in &report.deleted {
        text += &format!("deleted {name}\n");
    }
    text += &format!(
        "kept {} removed files for readers of older versions",
        report.kept
    );
    if let Some(next) = report
        .next_deletion_ms
        .and_then(arrow::temporal_conversions::timestamp_ms_to_datetime)
    {
        text += &format!(
            "; the first may go after {} UTC",
            next.format("%Y-%m-%d %H:%M:%S")
        );
    }
    emit(&format!("{text}\n"))?;
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

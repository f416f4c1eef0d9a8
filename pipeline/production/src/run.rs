//! `tally run`: input files ingested through the pipeline on a real disk and published.
//!
//! `run` treats each input file as one source, identified by its canonical path. A source is
//! read twice: once to validate every row (so that a bad line refuses the whole source before
//! any of it is acknowledged), then again to bulk-load it (protocol "Bulk load"): its rows go
//! straight into table files, each committed with the source's ledger advanced, with no log
//! in between — the file itself is the durable copy of every row not yet committed. Rows the
//! ledger already holds are skipped, so a run interrupted at any moment and started again
//! stores every row exactly once.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tally_pipeline::{Config, Fingerprint, Pipeline, RecoveryReport, SourceState};
use tally_sim::{Fs, RealFs, SystemClock, World};

use arrow::datatypes::SchemaRef;

use crate::identity;
use crate::input::{Format, InputError, InputReader, Location, quoted};
use crate::progress::Progress;

/// How `run` reads its inputs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub root: PathBuf,
    pub inputs: Vec<PathBuf>,
    /// Overrides the format implied by each file's extension.
    pub format: Option<Format>,
    pub batch_rows: usize,
    pub config: Config,
}

/// What happened to one input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceOutcome {
    pub file: PathBuf,
    pub source: String,
    pub format: Format,
    /// `ingested`, `resumed` (part of it was acknowledged by an earlier run) or
    /// `already-ingested` (nothing to do).
    pub status: &'static str,
    pub rows_written: u64,
    pub rows_already_acknowledged: u64,
    /// The file's content as ingested: what the ledger binds to the source.
    pub content: Fingerprint,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub root: PathBuf,
    pub sources: Vec<SourceOutcome>,
    pub rows_acknowledged: u64,
    pub rows_already_acknowledged: u64,
    pub manifest_version: u64,
    pub files_published: usize,
    pub published_rows: u64,
    pub segments_staged: u64,
    /// Table files the bulk load wrote and committed.
    pub bulk_files: u64,
    pub merges: u64,
    pub recovery: RecoveryReport,
}

/// Why `run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An input file is unreadable or malformed; nothing of it was acknowledged. Sources
    /// before it were ingested and published.
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("{0}")]
    Pipeline(#[from] tally_pipeline::Error),
    #[error("{}: {message}", file.display())]
    Usage { file: PathBuf, message: String },
    /// An input's content is not the content the ledger bound to its source: nothing of it
    /// was ingested by this run.
    #[error("{}: {}", file.display(), changed_message(*acknowledged, *complete, recorded, now))]
    Changed {
        file: PathBuf,
        acknowledged: u64,
        complete: bool,
        recorded: Option<Fingerprint>,
        now: Fingerprint,
    },
}

fn changed_message(
    acknowledged: u64,
    complete: bool,
    recorded: &Option<Fingerprint>,
    now: &Fingerprint,
) -> String {
    let was = recorded.map_or_else(|| "recorded without a checksum".into(), |f| f.to_string());
    let held = if complete {
        format!("all {acknowledged} rows of it were ingested")
    } else {
        format!("{acknowledged} rows of it were acknowledged by an interrupted run")
    };
    format!(
        "the file changed since {held}: it was {was}, it is now {now}. Nothing of it was \
         ingested now. A source is its file's path bound to its content: to resume, restore \
         the original content; to ingest the new content, give the file a new path"
    )
}

fn format_of(path: &Path, forced: Option<Format>) -> Result<Format, RunError> {
    forced
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| RunError::Usage {
            file: path.to_path_buf(),
            message: "cannot tell the format from the extension; pass --format csv|jsonl|parquet"
                .into(),
        })
}

#[allow(
    clippy::disallowed_methods,
    reason = "canonicalizing an input path names the source; it reads no store"
)]
fn source_id(path: &Path) -> Result<String, RunError> {
    let canonical = std::fs::canonicalize(path).map_err(|e| RunError::Usage {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(format!("file:{}", canonical.display()))
}

/// How a file's columns map onto the table's: `None` when they are in table order, else the
/// file column for each table column (same names and types, another order — JSON Lines
/// inference, for one, orders columns by name).
type Projection = Option<Vec<usize>>;

fn projection(
    path: &Path,
    file: &arrow::datatypes::Schema,
    table: Option<&arrow::datatypes::Schema>,
) -> Result<Projection, RunError> {
    let Some(table) = table else {
        return Ok(None);
    };
    let same = |a: &arrow::datatypes::Field, b: &arrow::datatypes::Field| {
        a.name() == b.name() && a.data_type() == b.data_type() && a.is_nullable() == b.is_nullable()
    };
    let mismatch = |location: Location, what: String| {
        RunError::Input(InputError {
            file: path.to_path_buf(),
            location: Some(location),
            message: format!(
                "schema mismatch: {what}; the table has columns {}, this file has {}",
                describe_fields(table.fields()),
                describe_fields(file.fields())
            ),
        })
    };
    let mut indices = Vec::with_capacity(table.fields().len());
    for want in table.fields() {
        let Some((index, have)) = file.fields().find(want.name()) else {
            let what = "the table has this column and this file does not".into();
            return Err(mismatch(Location::Column(want.name().clone()), what));
        };
        if !same(have, want) {
            let what = format!(
                "the table has it as {}, this file as {}",
                describe_type(want),
                describe_type(have)
            );
            return Err(mismatch(Location::Column(want.name().clone()), what));
        }
        indices.push(index);
    }
    if let Some(extra) = file
        .fields()
        .iter()
        .find(|f| table.field_with_name(f.name()).is_err())
    {
        let what = "this file has this column and the table does not".into();
        return Err(mismatch(Location::Column(extra.name().clone()), what));
    }
    let in_order = indices.iter().enumerate().all(|(i, &j)| i == j);
    Ok(if in_order { None } else { Some(indices) })
}

/// Reads every row of `path` (its scan: every value checked, the columns decided from all of
/// them) and checks its columns against `table` (if the table has columns yet). Returns its row
/// count, how its columns map onto the table's, and its columns, which the ingest pass reads
/// it with.
fn validate(
    path: &Path,
    format: Format,
    table: Option<&arrow::datatypes::Schema>,
    progress: &dyn Progress,
) -> Result<Validated, RunError> {
    let scanned = InputReader::scan(path, format, &mut |rows| progress.advance(rows))?;
    // A file without rows holds no value to lose or re-type: a header-only CSV, whose columns
    // infer as strings, must not be refused against a table whose columns are already fixed.
    if scanned.rows == 0 {
        return Ok((0, None, scanned.schema));
    }
    let projection = projection(path, &scanned.schema, table)?;
    Ok((scanned.rows, projection, scanned.schema))
}

fn describe_type(field: &arrow::datatypes::Field) -> String {
    let nullable = if field.is_nullable() { "" } else { " not null" };
    format!("{}{nullable}", field.data_type())
}

/// The first columns of `fields`, for a message: a header can hold thousands.
fn describe_fields(fields: &arrow::datatypes::Fields) -> String {
    const SHOWN: usize = 20;
    let mut names: Vec<String> = fields
        .iter()
        .take(SHOWN)
        .map(|f| format!("{}: {}", quoted(f.name()), describe_type(f)))
        .collect();
    if fields.len() > SHOWN {
        names.push(format!("and {} more", fields.len() - SHOWN));
    }
    format!("({})", names.join(", "))
}

/// Ingests every input through the whole pipeline on the real disk and publishes it.
pub async fn run(options: &RunOptions, progress: &dyn Progress) -> Result<RunSummary, RunError> {
    let world = World::new(RealFs, SystemClock);
    let (pipeline, recovery) =
        Pipeline::open(world, options.root.clone(), options.config.clone()).await?;
    if !recovery.is_clean() {
        tracing::warn!("recovery repaired the store:\n{recovery}");
    }
    let maintenance = pipeline.spawn_maintenance();
    let result = ingest_all(&pipeline, options, progress).await;
    // Publish whatever was acknowledged, even if a later input was refused.
    pipeline.stop_maintenance();
    let background = maintenance
        .await
        .unwrap_or_else(|e| Err(tally_pipeline::Error::format("maintenance task", e)));
    let flushed = pipeline.flush().await;
    let sources = result?;
    background?;
    flushed?;
    let snapshot = pipeline.snapshot().await;
    let stats = pipeline.stats();
    Ok(RunSummary {
        root: options.root.clone(),
        rows_acknowledged: sources.iter().map(|s| s.rows_written).sum(),
        rows_already_acknowledged: sources.iter().map(|s| s.rows_already_acknowledged).sum(),
        sources,
        manifest_version: snapshot.version,
        files_published: snapshot.files.len(),
        published_rows: snapshot.rows,
        segments_staged: stats.segments_staged,
        bulk_files: stats.bulk_files,
        merges: stats.merges,
        recovery,
    })
}

async fn ingest_all<F: Fs>(
    pipeline: &Pipeline<F, SystemClock>,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<Vec<SourceOutcome>, RunError> {
    let mut outcomes = Vec::new();
    for path in &options.inputs {
        let format = format_of(path, options.format)?;
        let source = source_id(path)?;
        let state = pipeline.source_state(&source).await;
        // The checksum and the scan each read the whole file: on two cores at once. Neither
        // starts on a device or a pipe, which would never end.
        identity::regular_file(path)?;
        let fingerprinting = identity::fingerprint_aside(path);
        let scanned = (!state.complete).then(|| {
            progress.phase(format!("validating {}", path.display()), None);
            validate(path, format, pipeline.schema().as_deref(), progress)
        });
        let content = fingerprinting.await?;
        // A changed file is refused as changed, whatever its scan found.
        refuse_changed(path, state, content)?;
        let mut outcome = SourceOutcome {
            file: path.clone(),
            source,
            format,
            status: "already-ingested",
            rows_written: 0,
            rows_already_acknowledged: state.rows,
            content,
        };
        match scanned {
            None => progress.note(format!(
                "{}: already ingested ({} rows); nothing to do",
                path.display(),
                state.rows
            )),
            Some(validated) => {
                let (written, already) =
                    ingest_source(pipeline, options, progress, &outcome, state, validated?).await?;
                outcome.status = if already > 0 { "resumed" } else { "ingested" };
                outcome.rows_written = written;
                outcome.rows_already_acknowledged = already;
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Refuses an input whose source the ledger bound to other content.
fn refuse_changed(path: &Path, state: SourceState, now: Fingerprint) -> Result<(), RunError> {
    if state.accepts(Some(now)) {
        return Ok(());
    }
    Err(RunError::Changed {
        file: path.to_path_buf(),
        acknowledged: state.rows,
        complete: state.complete,
        recorded: state.fingerprint,
        now,
    })
}

/// A validated input: its row count, how its columns map onto the table's, its columns.
type Validated = (u64, Projection, SchemaRef);

/// Ingests one validated input part by part from the row the ledger holds. Returns the rows
/// written and the rows already acknowledged.
async fn ingest_source<F: Fs>(
    pipeline: &Pipeline<F, SystemClock>,
    options: &RunOptions,
    progress: &dyn Progress,
    input: &SourceOutcome,
    state: SourceState,
    (total, projection, columns): Validated,
) -> Result<(u64, u64), RunError> {
    let (path, format, source) = (&input.file, input.format, &input.source);
    progress.phase(format!("ingesting {}", path.display()), Some(total));
    let mut reader = InputReader::open_with_schema(path, format, columns, options.batch_rows)?;
    let mut load = pipeline.bulk_load(source, Some(input.content)).await?;
    let (mut written, mut first_row) = (0, 0u64);
    while let Some(batch) = reader.next_batch()? {
        let batch = project(path, batch, &projection)?;
        let rows = batch.num_rows() as u64;
        let end = first_row + rows;
        // Rows acknowledged by an earlier run are skipped without being encoded again.
        if end > state.rows
            && let Some(ack) = load.write(first_row, batch).await?
        {
            written += ack.rows_written;
        }
        progress.advance(rows);
        first_row = end;
    }
    drop(reader);
    if first_row != total {
        return Err(RunError::Usage {
            file: path.clone(),
            message: format!(
                "the file changed while being read ({total} rows validated, {first_row} read)"
            ),
        });
    }
    // Every row is read: the file is checksummed again while its last file commits.
    let checksumming = identity::fingerprint_aside(path);
    // The last file, with the source complete (for an empty file: the completion alone; an
    // empty input does not fix the table's columns).
    written += load.commit(true).await?.rows_written;
    // The rows just acknowledged were read from the content fingerprinted before: a file
    // changed meanwhile is reported now, and refused by the next run.
    let after = checksumming.await?;
    if after != input.content {
        let state = pipeline.source_state(source).await;
        return Err(RunError::Changed {
            file: path.clone(),
            acknowledged: state.rows,
            complete: state.complete,
            recorded: Some(input.content),
            now: after,
        });
    }
    Ok((written, total - written))
}

fn project(
    path: &Path,
    batch: arrow::array::RecordBatch,
    projection: &Projection,
) -> Result<arrow::array::RecordBatch, InputError> {
    match projection {
        None => Ok(batch),
        Some(indices) => batch.project(indices).map_err(|e| InputError {
            file: path.to_path_buf(),
            location: None,
            message: e.to_string(),
        }),
    }
}

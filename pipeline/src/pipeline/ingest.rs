//! Ingest (protocol "Ingest", before step 1): a batch is validated and encoded by its caller,
//! then queued; one caller at a time becomes the commit leader and commits the whole queue as
//! one group (`group.rs`).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use tally_sim::{Clock, Fs};
use tokio::sync::oneshot;

use super::Pipeline;
use super::config::Ack;
use super::segment::LogState;
use crate::error::{Error, Result};
use crate::log;
use crate::manifest::Fingerprint;
use crate::table::SEQ_COLUMN;

/// The most yields a commit leader makes waiting for the last group's callers to come back
/// (`linger`). A yield lets every task ready on this worker run once; a few cover callers
/// still encoding their next frame, without keeping the log from callers that are gone.
const LINGER_YIELDS: usize = 8;

/// One part of a source, as its caller asked for it to be stored.
pub(super) struct Part {
    pub(super) source: String,
    pub(super) first_row: u64,
    pub(super) last: bool,
    pub(super) fingerprint: Option<Fingerprint>,
    pub(super) batch: RecordBatch,
    /// The batch encoded by the caller before queueing, so encoding runs outside the leader.
    pub(super) frame: log::DataFrame,
}

/// A queued part and where its answer goes.
pub(super) struct Request {
    pub(super) part: Part,
    pub(super) reply: oneshot::Sender<Result<Ack>>,
}

pub(super) struct Intake {
    pub(super) queue: Vec<Request>,
    /// The table's columns, fixed by the first batch (or by what recovery found).
    pub(super) schema: Option<SchemaRef>,
}

fn user_schema_of(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    )
}

fn describe(schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            )
        })
        .collect();
    format!("({})", columns.join(", "))
}

/// Checks a batch before anything is written; returns its columns as the table stores them
/// (names, types and nullability only) and the batch under that schema.
pub(super) fn validate(source: &str, batch: RecordBatch) -> Result<(SchemaRef, RecordBatch)> {
    let refuse = |reason: String| Error::InvalidBatch {
        source_id: source.to_string(),
        reason,
    };
    if source.is_empty() || source.len() > log::MAX_SOURCE_LEN {
        return Err(refuse(format!(
            "a source id must be 1 to {} bytes",
            log::MAX_SOURCE_LEN
        )));
    }
    if batch.num_columns() == 0 {
        return Err(refuse("a batch needs at least one column".into()));
    }
    if batch.schema().field_with_name(SEQ_COLUMN).is_ok() {
        return Err(refuse(format!("the column name {SEQ_COLUMN} is reserved")));
    }
    let user = Arc::new(user_schema_of(&batch.schema()));
    let batch = RecordBatch::try_new(user.clone(), batch.columns().to_vec())
        .map_err(|e| refuse(e.to_string()))?;
    Ok((user, batch))
}

/// The columns of a batch with rows against the table's: refused if they differ, the table's
/// if it has none yet.
fn fix_schema(intake: &mut Intake, source: &str, user: &SchemaRef) -> Result<()> {
    match &intake.schema {
        Some(table) if table.fields() != user.fields() => Err(Error::SchemaMismatch {
            source_id: source.to_owned(),
            expected: describe(table),
            found: describe(user),
        }),
        Some(_) => Ok(()),
        // The table is published as a Delta table: a column Delta has no exact type for
        // would reach readers as something else. Checked once, by the batch that fixes the
        // columns (every later batch must have the same ones), before anything is written.
        None => {
            crate::delta::schema::check(user).map_err(|e| Error::InvalidBatch {
                source_id: source.to_owned(),
                reason: e.to_string(),
            })?;
            intake.schema = Some(user.clone());
            Ok(())
        }
    }
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Ingests a whole source in one batch: once acknowledged, re-ingesting it is a no-op.
    pub async fn ingest(&self, source: &str, batch: RecordBatch) -> Result<Ack> {
        self.ingest_part(source, 0, batch, true).await
    }

    /// Ingests rows `first_row..first_row + batch.num_rows()` of `source`. Rows the ledger
    /// already holds are skipped (so a retry or a re-run stores nothing twice); a part that
    /// starts beyond the rows acknowledged so far is refused. `last` marks the source complete.
    /// Returns once the written rows are durable.
    pub async fn ingest_part(
        &self,
        source: &str,
        first_row: u64,
        batch: RecordBatch,
        last: bool,
    ) -> Result<Ack> {
        self.ingest_part_of(source, None, first_row, batch, last)
            .await
    }

    /// [`Pipeline::ingest_part`] for a source whose content the caller identifies: the first
    /// acknowledged part binds `fingerprint` to the source in the ledger, and a later part
    /// carrying another one is refused with [`Error::SourceChanged`] — rows of two contents
    /// never join one source, and a changed input is never resumed at a stale row.
    pub async fn ingest_part_of(
        &self,
        source: &str,
        fingerprint: Option<Fingerprint>,
        first_row: u64,
        batch: RecordBatch,
        last: bool,
    ) -> Result<Ack> {
        self.check_poison()?;
        #[cfg(feature = "twins")]
        self.drain_if_deferred().await?;
        let (user, batch) = validate(source, batch)?;
        self.keep_up_with_staging().await?;
        let frame = log::DataFrame::encode(&batch, source.len())?;
        let (reply, answer) = oneshot::channel();
        let part = Part {
            source: source.to_string(),
            first_row,
            last,
            fingerprint,
            batch,
            frame,
        };
        self.enqueue(&user, Request { part, reply })?;
        self.lead(answer).await
    }

    /// Queues a request; the first batch with rows fixes the table's columns, a batch with
    /// rows whose columns differ is refused. An empty batch carries no value, so its columns
    /// neither fix nor must match the table's (an empty input does not decide the schema).
    fn enqueue(&self, user: &SchemaRef, request: Request) -> Result<()> {
        let mut intake = self.inner.intake.lock().expect("intake lock");
        if request.part.batch.num_rows() > 0 {
            fix_schema(&mut intake, &request.part.source, user)?;
        }
        intake.queue.push(request);
        Ok(())
    }

    /// Checks the columns of a batch with rows against the table's; the first such batch
    /// fixes them.
    pub(super) fn fix_schema(&self, source: &str, user: &SchemaRef) -> Result<()> {
        fix_schema(
            &mut self.inner.intake.lock().expect("intake lock"),
            source,
            user,
        )
    }

    /// Before taking the queue, a leader that finds fewer requests queued than the last group
    /// held yields, at most [`LINGER_YIELDS`] times: the callers that group just answered are
    /// on their way back with their next batch, and joining this group spares them waiting
    /// through its two syncs for the next one (fewer fsyncs per batch under concurrent
    /// callers). A caller alone lingers only once, right after a larger group.
    /// Only yields, no clock: the same under simulation.
    async fn linger(&self, log: &LogState<F>) {
        for _ in 0..LINGER_YIELDS {
            let queued = self.inner.intake.lock().expect("intake lock").queue.len();
            if queued >= log.last_group_requests {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Becomes the commit leader and commits every queued request, unless a leader already
    /// committed this one meanwhile; then waits for this request's answer.
    async fn lead(&self, mut answer: oneshot::Receiver<Result<Ack>>) -> Result<Ack> {
        let mut log = self.inner.log.lock().await;
        if let Ok(result) = answer.try_recv() {
            return result;
        }
        self.linger(&log).await;
        let group = std::mem::take(&mut self.inner.intake.lock().expect("intake lock").queue);
        log.last_group_requests = group.len();
        self.commit_group(&mut log, group).await;
        drop(log);
        answer
            .await
            .unwrap_or_else(|_| Err(Error::format("ingest", "the commit leader vanished")))
    }
}

//! Group commit (protocol "Ingest", steps 1–6): the leader decides each queued part against the
//! ledger ([`decide`], a pure function), places the parts it writes (sequence numbers and a
//! segment, `segment.rs`), writes the group's frames and ledger records with one append and one
//! sync each, and answers every caller.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use tally_sim::{Clock, Fs, FsFile};
use tokio::sync::oneshot;

use super::Pipeline;
use super::config::Ack;
use super::ingest::{Part, Request};
use super::prestage::Queued;
use super::segment::LogState;
use crate::error::{Error, Result};
use crate::log::{self, AckRecord, PartMeta};
use crate::manifest::{Fingerprint, SourceState};

/// What a group commit does with one part, decided from the ledger alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Every row of the part is acknowledged already, or its source is complete: nothing is
    /// written and the answer says so (a retry or a re-run).
    Acknowledged,
    /// The part starts beyond the rows acknowledged so far: storing it would leave a hole.
    Gap,
    /// Write rows `skip..skip + take` of the part, the first of them being the ledger's next
    /// row; `completes` marks the source complete. `take` is 0 only for a last part whose
    /// rows were all in already: the empty part then records the completion.
    Write {
        skip: u64,
        take: u64,
        completes: bool,
    },
}

/// Decides one part, rows `first_row..first_row + rows` of its source (`last` if it ends the
/// source), against `state`, what the ledger holds for the source.
pub(super) fn decide(state: SourceState, first_row: u64, rows: u64, last: bool) -> Decision {
    let end = first_row + rows;
    // A part wholly acknowledged is a no-op — unless it is the last part of a source whose
    // rows are all in but whose completion was never recorded (the run died between its last
    // two parts): then an empty part records the completion.
    let completes = last && end == state.rows;
    if state.complete || (end <= state.rows && !completes) {
        return Decision::Acknowledged;
    }
    if first_row > state.rows {
        return Decision::Gap;
    }
    let skip = state.rows - first_row;
    let take = rows - skip;
    // `take <= rows` catches a wrapped subtraction, which `skip + take == rows` alone would
    // not (it wraps back).
    assert!(
        take <= rows && skip + take == rows,
        "part of {rows} rows split into {skip} acknowledged and {take} to write"
    );
    assert!(
        take > 0 || last,
        "an empty part is written only to complete its source"
    );
    Decision::Write {
        skip,
        take,
        completes: last,
    }
}

/// The refusal of rows of `source` whose fingerprint is not the one `state` bound to it (a
/// group commit's part, a bulk load).
pub(super) fn source_changed(
    source: &str,
    state: SourceState,
    given: Option<Fingerprint>,
) -> Error {
    let describe = Fingerprint::describe;
    Error::SourceChanged {
        source_id: source.to_owned(),
        acknowledged: state.rows,
        complete: if state.complete { " (all of it)" } else { "" },
        recorded: describe(state.fingerprint),
        given: describe(given),
    }
}

/// A request's answer within a group commit; `None` when the group failed before reaching it
/// (it then shares the group's error).
type Answer = Option<Result<Ack>>;

/// A group being committed: what it will write, and every caller's answer so far.
#[derive(Default)]
struct Group {
    /// The ledger's state as the group's parts leave it, for the sources they touch.
    overlay: BTreeMap<String, SourceState>,
    frames: Vec<log::DataFrame>,
    frames_len: u64,
    acks: Vec<u8>,
    replies: Vec<(oneshot::Sender<Result<Ack>>, Answer)>,
    /// The parts written, with their rows, for staging from memory once they are durable.
    staged: Vec<(PartMeta, Option<RecordBatch>)>,
    parts: u64,
    failure: Option<Error>,
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Commits `requests` as one group. Every request is answered: refusals and no-ops on
    /// their own, the rest together once their frames and ledger records are durable — or all
    /// with the group's failure, which poisons the pipeline.
    pub(super) async fn commit_group(&self, log: &mut LogState<F>, requests: Vec<Request>) {
        if let Some(cause) = self.poisoned() {
            for request in requests {
                let _ = request.reply.send(Err(Error::Poisoned {
                    cause: cause.clone(),
                }));
            }
            return;
        }
        let mut group = Group::default();
        for Request { part, reply } in requests {
            let answer = match group.failure {
                Some(_) => None,
                None => self.add_part(log, &mut group, part).await,
            };
            group.replies.push((reply, answer));
        }
        if group.failure.is_none() && !group.frames.is_empty() {
            let frames = std::mem::take(&mut group.frames);
            if let Err(e) = self
                .write_group(log, frames, &group.acks, group.parts)
                .await
            {
                group.failure = Some(e);
            }
        }
        match group.failure.take() {
            Some(e) => self.fail_group(group, e),
            None => self.complete_group(log, group),
        }
    }

    /// Decides one part against the ledger as the group leaves it, and adds it to the group
    /// if it is to be written. Returns its answer.
    async fn add_part(&self, log: &mut LogState<F>, group: &mut Group, part: Part) -> Answer {
        let state = group
            .overlay
            .get(&part.source)
            .or_else(|| log.ledger.get(&part.source))
            .copied()
            .unwrap_or_default();
        let rows = part.batch.num_rows() as u64;
        if !state.accepts(part.fingerprint) {
            return Some(Err(source_changed(&part.source, state, part.fingerprint)));
        }
        match decide(state, part.first_row, rows, part.last) {
            Decision::Acknowledged => Some(Ok(Ack {
                source: part.source,
                rows_written: 0,
                rows_already_acknowledged: rows,
                seq: None,
                source_complete: state.complete,
            })),
            Decision::Gap => Some(Err(Error::SourceGap {
                source_id: part.source,
                first_row: part.first_row,
                acknowledged: state.rows,
            })),
            Decision::Write {
                skip,
                take,
                completes,
            } => {
                self.add_write(log, group, part, state, (skip, take, completes))
                    .await
            }
        }
    }

    /// Adds rows `skip..skip + take` of `part` to the group: re-encoded if some of its rows
    /// are skipped, placed (sequence numbers and a segment), sealed with its metadata, and
    /// followed by its ledger record. A placement failure fails the whole group.
    async fn add_write(
        &self,
        log: &mut LogState<F>,
        group: &mut Group,
        part: Part,
        state: SourceState,
        (skip, take, completes): (u64, u64, bool),
    ) -> Answer {
        let rows = (take > 0).then(|| part.batch.slice(skip as usize, take as usize));
        let mut frame = if skip == 0 {
            part.frame
        } else {
            let rest = part.batch.slice(skip as usize, take as usize);
            match log::DataFrame::encode(&rest, part.source.len()) {
                Ok(frame) => frame,
                Err(e) => return Some(Err(e)),
            }
        };
        let seq_start = match self.place(log, take).await {
            Ok(seq_start) => seq_start,
            Err(e) => {
                group.failure = Some(e);
                return None;
            }
        };
        let active = log.active.as_ref().expect("placed above");
        // The part written starts exactly at the ledger's next row: recovery rebuilds the
        // ledger from these records and refuses a part that does not.
        assert_eq!(
            part.first_row + skip,
            state.rows,
            "part placed off the ledger"
        );
        let meta = PartMeta {
            source: part.source.clone(),
            first_row: state.rows,
            seq_start,
            rows: take,
            last: completes,
            fingerprint: part.fingerprint,
        };
        let log_offset = active.log_len + group.frames_len;
        let frame_crc = frame.seal(&meta);
        group.frames_len += frame.bytes().len() as u64;
        group.frames.push(frame);
        group.staged.push((meta.clone(), rows));
        let record = AckRecord {
            log_offset,
            frame_crc,
            meta,
        };
        log::encode_ack(&mut group.acks, &record);
        group.parts += 1;
        let after = SourceState {
            rows: state.rows + take,
            complete: completes,
            fingerprint: part.fingerprint,
        };
        group.overlay.insert(part.source.clone(), after);
        Some(Ok(Ack {
            source: part.source,
            rows_written: take,
            rows_already_acknowledged: skip,
            seq: (take > 0).then_some(seq_start..seq_start + take),
            source_complete: completes,
        }))
    }

    /// Steps 4 and 5 of a group commit: frames (in one write), sync, ledger records, sync.
    async fn write_group(
        &self,
        log: &mut LogState<F>,
        frames: Vec<log::DataFrame>,
        acks: &[u8],
        parts: u64,
    ) -> Result<()> {
        let active = log
            .active
            .as_mut()
            .expect("a group with frames has a segment");
        let frames = match <[_; 1]>::try_from(frames) {
            // A group of one part (the common case under a single caller) is written as the
            // caller encoded it.
            Ok([one]) => one.into_bytes(),
            Err(many) => {
                let mut joined =
                    Vec::with_capacity(many.iter().map(|f| f.bytes().len()).sum::<usize>());
                for frame in &many {
                    joined.extend_from_slice(frame.bytes());
                }
                joined
            }
        };
        let frames = &frames[..];
        active.log.write_at(active.log_len, frames).await?;
        tally_sim::probe!("ingest.frames-written");
        let twins = self.inner.config.twins();
        if !twins.log_unsynced {
            let synced = active.log.sync().await;
            if !twins.log_sync_failure_ignored {
                synced?;
            }
        }
        tally_sim::probe!("ingest.frames-synced");
        active.ack.write_at(active.ack_len, acks).await?;
        tally_sim::probe!("ingest.acks-written");
        active.ack.sync().await?;
        tally_sim::probe!("ingest.acks-synced");
        active.log_len += frames.len() as u64;
        active.ack_len += acks.len() as u64;
        active.parts += parts;
        Ok(())
    }

    /// The group failed: the pipeline stops, refusals stand and every other caller of the
    /// group gets the failure.
    fn fail_group(&self, group: Group, e: Error) {
        self.poison(&e);
        let cause = e.to_string();
        for (reply, result) in group.replies {
            let result = match result {
                Some(Err(refused)) => Err(refused),
                Some(Ok(_)) | None => Err(Error::Poisoned {
                    cause: cause.clone(),
                }),
            };
            let _ = reply.send(result);
        }
    }

    /// The group's rows and ledger records are durable (step 6): the ledger takes them in,
    /// every caller is answered, and a segment that outgrew its size is sealed.
    fn complete_group(&self, log: &mut LogState<F>, group: Group) {
        for (source, after) in &group.overlay {
            let before = log.ledger.get(source).copied().unwrap_or_default();
            // The ledger only grows, and a complete source takes no more parts.
            assert!(
                after.rows >= before.rows && !before.complete,
                "source {source:?}: ledger {before:?} would become {after:?}"
            );
        }
        log.ledger.extend(group.overlay);
        if !group.staged.is_empty() {
            let segment = log
                .active
                .as_ref()
                .expect("a group with parts has a segment")
                .number;
            let parts = group.staged.into_iter().map(|(meta, batch)| Queued::Part {
                segment,
                meta,
                batch,
            });
            self.queue_for_staging(parts);
        }
        if group.parts > 0 {
            let mut stats = self.inner.stats.lock().expect("stats lock");
            stats.group_commits += 1;
            stats.parts_committed += group.parts;
        }
        for (reply, result) in group.replies {
            let _ = reply.send(result.expect("every request of a successful group has an answer"));
        }
        let full = log
            .active
            .as_ref()
            .is_some_and(|a| a.log_len >= self.inner.config.segment_bytes);
        if full {
            self.seal(log);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rows: u64, complete: bool) -> SourceState {
        SourceState {
            rows,
            complete,
            fingerprint: None,
        }
    }

    #[test]
    fn parts_are_decided_against_the_ledger() {
        use Decision::*;
        let write = |skip, take, completes| Write {
            skip,
            take,
            completes,
        };
        // A fresh source takes its first part whole.
        assert_eq!(decide(state(0, false), 0, 10, false), write(0, 10, false));
        // A retry of acknowledged rows is a no-op; of a complete source too.
        assert_eq!(decide(state(10, false), 0, 10, false), Acknowledged);
        assert_eq!(decide(state(10, true), 10, 5, true), Acknowledged);
        // An overlapping part writes only its new rows.
        assert_eq!(decide(state(10, false), 5, 10, true), write(5, 5, true));
        // A part beyond the acknowledged rows would leave a hole.
        assert_eq!(decide(state(10, false), 11, 5, false), Gap);
        // A last part whose rows are all in records the completion with an empty part.
        assert_eq!(decide(state(10, false), 0, 10, true), write(10, 0, true));
        assert_eq!(decide(state(10, false), 10, 0, true), write(0, 0, true));
    }
}

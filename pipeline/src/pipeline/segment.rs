//! The commit leader's state (protocol "Identity" and "Ingest", steps 2 and 3): the active
//! log segment, the sequence allocator and its durable reservation, the ledger, and the sealed
//! segments waiting to be staged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tally_sim::{Clock, CreateMode, Fs, FsFile};

use super::Pipeline;
use crate::error::Result;
use crate::layout;
use crate::log;
use crate::manifest::SourceState;
use crate::seqalloc;

/// The segment group commits append to.
pub(super) struct ActiveSegment<F: Fs> {
    pub(super) number: u64,
    pub(super) log: F::File,
    pub(super) ack: F::File,
    pub(super) log_len: u64,
    pub(super) ack_len: u64,
    pub(super) parts: u64,
}

/// Everything the commit leader owns, behind the `log` lock.
pub(super) struct LogState<F: Fs> {
    pub(super) active: Option<ActiveSegment<F>>,
    /// One past every segment number on disk or in use.
    pub(super) next_segment: u64,
    pub(super) next_seq: u64,
    /// Numbers below this are covered by the durable reservation in `SEQ`.
    pub(super) seq_reserved: u64,
    /// Every acknowledged row by source (published and staged).
    pub(super) ledger: BTreeMap<String, SourceState>,
    /// Segments holding data not yet staged, in order (sealed, or left by an earlier run).
    pub(super) sealed: BTreeSet<u64>,
    /// Requests the last group commit took: how many callers its answers are sending back
    /// with their next batch, which the next leader lingers for (`ingest.rs`, `linger`).
    pub(super) last_group_requests: usize,
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Readies the next part of a group: its `rows` sequence numbers covered by a durable
    /// reservation, and a segment open to hold it. Returns the part's first sequence number.
    pub(super) async fn place(&self, log: &mut LogState<F>, rows: u64) -> Result<u64> {
        self.reserve_seq(log, rows).await?;
        if log.active.is_none() {
            log.active = Some(self.open_segment(log).await?);
        }
        let seq_start = log.next_seq;
        log.next_seq += rows;
        // Every number stamped is below the durable reservation: a crash can never lead to
        // a number being issued twice.
        assert!(
            log.next_seq <= log.seq_reserved,
            "sequence numbers up to {} stamped under a reservation of {}",
            log.next_seq,
            log.seq_reserved
        );
        Ok(seq_start)
    }

    /// Makes sure `rows` numbers from `next_seq` on are covered by a durable reservation: if
    /// they are not, `SEQ` is replaced with `next_seq + rows + seq_block`.
    pub(super) async fn reserve_seq(&self, log: &mut LogState<F>, rows: u64) -> Result<()> {
        let needed = log.next_seq + rows;
        if needed <= log.seq_reserved {
            return Ok(());
        }
        let reserved = needed + self.inner.config.seq_block;
        crate::commit::replace_file(
            &self.inner.world.fs,
            &self.inner.layout.private_dir(),
            layout::SEQ_FILE,
            &seqalloc::encode(reserved),
        )
        .await?;
        log.seq_reserved = reserved;
        Ok(())
    }

    /// Segment creation (protocol "Ingest", step 3): each file is created exclusively with its
    /// header synced, then the directory entries are made durable, before any part is written.
    async fn open_segment(&self, log: &mut LogState<F>) -> Result<ActiveSegment<F>> {
        assert!(log.active.is_none(), "a second active segment");
        let number = log.next_segment;
        // Staging goes in segment order, and a new segment's number is never reused.
        assert!(
            log.sealed.last().is_none_or(|&sealed| sealed < number),
            "segment {number} opened after sealed segment {:?}",
            log.sealed.last()
        );
        log.next_segment += 1;
        let layout = &self.inner.layout;
        let (log_file, log_len) = self
            .create_with_header(&layout.segment_log(number), &log::log_header(number))
            .await?;
        let (ack_file, ack_len) = self
            .create_with_header(&layout.segment_ack(number), &log::ack_header(number))
            .await?;
        self.inner.world.fs.sync_dir(&layout.log_dir()).await?;
        tally_sim::probe!("segment.created");
        Ok(ActiveSegment {
            number,
            log: log_file,
            ack: ack_file,
            log_len,
            ack_len,
            parts: 0,
        })
    }

    async fn create_with_header(&self, path: &Path, header: &[u8]) -> Result<(F::File, u64)> {
        let file = self
            .inner
            .world
            .fs
            .create(path, CreateMode::Exclusive)
            .await?;
        file.write_at(0, header).await?;
        file.sync().await?;
        Ok((file, header.len() as u64))
    }

    /// Seals the active segment, if any: later groups go to a new one, and the maintenance
    /// task is woken to stage it.
    pub(super) fn seal(&self, log: &mut LogState<F>) {
        if let Some(active) = log.active.take() {
            assert!(
                log.sealed
                    .last()
                    .is_none_or(|&sealed| sealed < active.number),
                "segment {} sealed after segment {:?}",
                active.number,
                log.sealed.last()
            );
            log.sealed.insert(active.number);
            // After every part of the segment, under the same lock: staging from memory takes
            // the file as complete once it meets this.
            self.queue_for_staging([super::prestage::Queued::Sealed {
                segment: active.number,
                parts: active.parts,
            }]);
        }
    }
}

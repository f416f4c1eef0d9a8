//! Recovery step 5: every live segment (above the manifest's `log_through`) is cut back to its
//! valid prefix and made durable, after checking that it still holds every part its ledger
//! acknowledges; a segment interrupted while being created is removed.

use std::path::Path;

use tally_sim::{Clock, Fs, FsFile, OpenMode};

use super::{LiveSegment, Recovery, TornTail};
use crate::error::{Error, Result};
use crate::fsutil::read_if_exists;
use crate::layout::{self, SegmentFile};
use crate::log::{self, AckRecord, LogScan};
use crate::manifest::Manifest;

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Recovers every live segment, in order; returns those kept.
    pub(super) async fn recover_segments(
        &mut self,
        manifest: &Manifest,
    ) -> Result<Vec<LiveSegment>> {
        let logs = self.layout.log_dir();
        let mut numbers: Vec<u64> = self
            .fs
            .list_dir(&logs)
            .await?
            .iter()
            .filter_map(|e| match layout::parse_segment_name(&e.name) {
                Some(SegmentFile::Log(n) | SegmentFile::Ack(n)) => Some(n),
                None => None,
            })
            .filter(|&n| n > manifest.log_through || self.twins.replay_consumed_segments)
            .collect();
        // Listings are sorted by name and names are zero-padded, so a segment's two files
        // are neighbours and one `dedup` leaves each number once, in increasing order.
        numbers.dedup();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "segment numbers out of order: {numbers:?}"
        );
        let mut live = Vec::new();
        for number in numbers {
            if let Some(segment) = self.recover_segment(number).await? {
                live.push(segment);
            }
        }
        // Everything counted as present must be durable, names included; this also makes the
        // removals above durable.
        self.fs.sync_dir(&logs).await?;
        Ok(live)
    }

    async fn recover_segment(&mut self, number: u64) -> Result<Option<LiveSegment>> {
        let log_path = self.layout.segment_log(number);
        let ack_path = self.layout.segment_ack(number);
        let log_bytes = read_if_exists(self.fs, &log_path).await?;
        let ack_bytes = read_if_exists(self.fs, &ack_path).await?;

        let acks = ack_bytes.as_deref().map(|b| log::scan_ack(b, number));
        let records = acks.as_ref().map_or(&[][..], |a| &a.items[..]);

        let scan = log_bytes.as_deref().map(|b| log::scan_log(b, number));
        let Some(scan) = scan.filter(|s| s.header_ok) else {
            let present = (log_bytes.is_some(), ack_bytes.is_some());
            self.remove_unborn(number, records, present).await?;
            return Ok(None);
        };
        let log_len = log_bytes.as_ref().map_or(0, |b| b.len() as u64);

        self.check_acknowledged(number, &scan, records)?;
        self.settle(&log_path, log_len, &scan).await?;
        if let (Some(acks), Some(bytes)) = (&acks, &ack_bytes) {
            if acks.header_ok {
                self.settle(&ack_path, bytes.len() as u64, acks).await?;
            } else {
                // Torn while being created, before any acknowledgement.
                self.remove(&ack_path).await?;
                self.report
                    .empty_segment_files_removed
                    .push(self.relative(&ack_path));
            }
        }
        self.count_unacknowledged(&scan, records);
        Ok(Some(LiveSegment {
            number,
            parts: scan.items.into_iter().map(|p| p.meta).collect(),
        }))
    }

    /// A segment whose `.log` is missing or has no valid header was interrupted while being
    /// created: nothing was acknowledged in it, and its files (`present`: log, ack) are
    /// removed. If its ack file does acknowledge parts, they are gone: fail closed.
    async fn remove_unborn(
        &mut self,
        number: u64,
        records: &[AckRecord],
        (log_present, ack_present): (bool, bool),
    ) -> Result<()> {
        let log_path = self.layout.segment_log(number);
        let ack_path = self.layout.segment_ack(number);
        if !records.is_empty() && !self.twins.no_restart_check {
            return Err(Error::MissingRows {
                acknowledged: records.iter().map(|r| r.meta.rows).sum(),
                found: 0,
                detail: format!(
                    "{} acknowledges {} parts but {} is {}",
                    self.relative(&ack_path),
                    records.len(),
                    self.relative(&log_path),
                    if log_present { "unreadable" } else { "missing" }
                ),
            });
        }
        for (path, present) in [(&ack_path, ack_present), (&log_path, log_present)] {
            if present {
                self.remove(path).await?;
                self.report
                    .empty_segment_files_removed
                    .push(self.relative(path));
            }
        }
        Ok(())
    }

    /// Every acknowledged part must be a whole frame of the log's valid prefix; otherwise
    /// acknowledged rows are gone: fail closed.
    fn check_acknowledged(&self, number: u64, scan: &LogScan, records: &[AckRecord]) -> Result<()> {
        let unmatched: Vec<&AckRecord> = records.iter().filter(|r| !scan.holds(r)).collect();
        let Some(first) = unmatched.first() else {
            return Ok(());
        };
        if self.twins.no_restart_check {
            return Ok(());
        }
        let acked_rows: u64 = records.iter().map(|r| r.meta.rows).sum();
        let lost: u64 = unmatched.iter().map(|r| r.meta.rows).sum();
        Err(Error::MissingRows {
            acknowledged: acked_rows,
            found: acked_rows - lost,
            detail: format!(
                "{} acknowledges {} parts ({} rows) that {} does not hold whole; the first is source {:?} rows {}..{} at offset {}",
                self.relative(&self.layout.segment_ack(number)),
                unmatched.len(),
                lost,
                self.relative(&self.layout.segment_log(number)),
                first.meta.source,
                first.meta.first_row,
                first.meta.first_row + first.meta.rows,
                first.log_offset
            ),
        })
    }

    /// Makes a segment file's valid prefix durable: a torn or damaged tail is truncated (and
    /// reported), then the file is synced — it may hold pending writes recovery now counts on.
    async fn settle<T>(&mut self, path: &Path, len: u64, scan: &log::Scanned<T>) -> Result<()> {
        let file = self.fs.open(path, OpenMode::Write).await?;
        if scan.valid_len < len {
            self.retry(|| file.set_len(scan.valid_len)).await?;
            tally_sim::probe!("recover.torn-tail-truncated");
            self.report.torn_tails.push(TornTail {
                file: self.relative(path),
                frames: scan.tail_frames.max(1),
                bytes: len - scan.valid_len,
                malformed: scan.malformed.clone(),
            });
        }
        file.sync().await?;
        Ok(())
    }

    /// Frames that reached the disk whole without a ledger record are kept; the report
    /// counts them.
    fn count_unacknowledged(&mut self, scan: &LogScan, records: &[AckRecord]) {
        for part in &scan.items {
            let acked = records.iter().any(|r| r.log_offset == part.frame.offset);
            if !acked {
                tally_sim::probe!("recover.unacknowledged-frame-kept");
                self.report.unacknowledged_parts_kept += 1;
                self.report.unacknowledged_rows_kept += part.meta.rows;
            }
        }
    }
}

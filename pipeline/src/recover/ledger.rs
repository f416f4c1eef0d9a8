//! Recovery step 6: the ledger (the manifest's `sources` plus every frame of the live
//! segments), the table schema, and where the allocators resume: sequence numbers, segment
//! numbers and file ids.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use tally_sim::{Clock, Fs};

use super::{LiveSegment, Recovered, Recovery};
use crate::error::{Error, Result};
use crate::fsutil::read_if_exists;
use crate::layout;
use crate::log;
use crate::manifest::{Fingerprint, Manifest, SourceState};
use crate::seqalloc;
use crate::table;

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Step 6, and what the pipeline resumes from.
    pub(super) async fn resume(
        &mut self,
        manifest: Manifest,
        live_segments: Vec<LiveSegment>,
        max_orphan_id: u64,
    ) -> Result<Recovered> {
        let (ledger, max_seq) = self.replay(&manifest, &live_segments)?;
        let mut schema = manifest.schema.clone();
        if schema.is_none() {
            schema = self.first_live_schema(&live_segments).await?;
        }
        let seq_reserved = self.read_seq_reservation().await?;
        let next_seq = match max_seq {
            Some(max) if max >= seq_reserved => {
                tally_sim::probe!("recover.seq-reservation-repaired");
                self.report.seq_reservation_repaired = Some((seq_reserved, max + 1));
                max + 1
            }
            _ => seq_reserved,
        };
        self.report.live_segments = live_segments.len();
        let next_segment = live_segments
            .last()
            .map_or(manifest.log_through, |s| s.number)
            .max(manifest.log_through)
            + 1;
        let next_file_id = manifest.next_file_id.max(max_orphan_id + 1);
        // No number, segment or file id on disk is handed out again.
        assert!(
            max_seq.is_none_or(|max| max < next_seq),
            "next sequence number {next_seq} not above {max_seq:?} on disk"
        );
        assert!(live_segments.iter().all(|s| s.number < next_segment));
        assert!(
            manifest.files.iter().all(|f| f.id < next_file_id),
            "next file id {next_file_id} not above every id of manifest version {}",
            manifest.version
        );
        Ok(Recovered {
            schema,
            ledger,
            live_segments,
            next_segment,
            next_seq,
            seq_reserved,
            next_file_id,
            report: std::mem::take(&mut self.report),
            manifest,
        })
    }

    /// The ledger: the manifest's `sources`, then every part of the live segments in log
    /// order, each continuing its source; and the highest sequence number on disk.
    fn replay(
        &mut self,
        manifest: &Manifest,
        live_segments: &[LiveSegment],
    ) -> Result<(BTreeMap<String, SourceState>, Option<u64>)> {
        let mut ledger = manifest.sources.clone();
        let mut max_seq = manifest.files.iter().map(|f| f.seq_max).max();
        for segment in live_segments {
            // The twin counts a segment the manifest already covers as new rows.
            let replayed = segment.number <= manifest.log_through;
            for part in &segment.parts {
                let state = ledger.entry(part.source.clone()).or_default();
                let continues = part.first_row == state.rows
                    && !state.complete
                    && state.accepts(part.fingerprint);
                if !replayed && !continues {
                    return Err(Error::corrupt(
                        self.layout.segment_log(segment.number),
                        format!(
                            "part of source {:?} (row {}, content {}) does not continue the {} rows{} recorded before it (content {})",
                            part.source,
                            part.first_row,
                            Fingerprint::describe(part.fingerprint),
                            state.rows,
                            if state.complete { " (complete)" } else { "" },
                            Fingerprint::describe(state.fingerprint)
                        ),
                    ));
                }
                state.fingerprint = part.fingerprint;
                state.rows += part.rows;
                state.complete |= part.last;
                self.report.staged_rows += part.rows;
                if part.rows > 0 {
                    max_seq = max_seq.max(Some(part.seq_end() - 1));
                }
            }
        }
        Ok((ledger, max_seq))
    }

    /// The table's columns from the first part of the live segments, when no manifest
    /// recorded them yet.
    async fn first_live_schema(&self, live: &[LiveSegment]) -> Result<Option<Schema>> {
        let Some(segment) = live.iter().find(|s| s.parts.iter().any(|p| p.rows > 0)) else {
            return Ok(None);
        };
        let path = self.layout.segment_log(segment.number);
        let bytes = self.fs.read(&path).await?;
        let scan = log::scan_log(&bytes, segment.number);
        // An empty part's columns do not decide the table's (see `Pipeline::enqueue`).
        let Some(part) = scan.items.iter().find(|p| p.meta.rows > 0) else {
            return Ok(None);
        };
        let schema = log::decode_schema(&bytes[part.ipc.clone()])
            .map_err(|e| Error::corrupt(&path, e.to_string()))?;
        let user: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| f.name() != table::SEQ_COLUMN)
            .cloned()
            .collect();
        Ok(Some(Schema::new(user)))
    }

    /// The durable reservation in `SEQ`: 0 if there is none, or if it is damaged (it is then
    /// quarantined, and the numbers found on disk decide where numbering resumes).
    async fn read_seq_reservation(&mut self) -> Result<u64> {
        let path = self.layout.seq_file();
        match read_if_exists(self.fs, &path).await? {
            None => Ok(0),
            Some(bytes) => match seqalloc::decode(&bytes) {
                Ok(reserved) => Ok(reserved),
                Err(reason) => {
                    let private = self.layout.private_dir();
                    self.quarantine(&private, layout::SEQ_FILE, reason).await?;
                    Ok(0)
                }
            },
        }
    }
}

//! Recovery step 4: the leftovers of half-done steps — temp files, table files no commit
//! references, segments the log already covers — are removed, and so are removed table files
//! past their retention (vacuum). (After a rollback over a damaged commit, step 2 has already
//! set every unreferenced table file aside: none is left here to delete.)

use tally_sim::{Clock, Fs};

use super::Recovery;
use crate::delta;
use crate::error::Result;
use crate::manifest::{Leftover, Manifest, StoreDir};

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Step 4: removes temp files, unreferenced table files, expired removed ones and staged
    /// segments. Returns the highest table file id seen among orphans (0 if none), so that
    /// ids are never reused.
    pub(super) async fn remove_garbage(&mut self, manifest: &Manifest) -> Result<u64> {
        let now_ms = delta::millis(self.clock.now());
        let retention = self.options.retention;
        let mut max_orphan_id = 0;
        for (kind, dir) in [
            (StoreDir::Private, self.layout.private_dir()),
            (StoreDir::DeltaLog, self.layout.delta_log_dir()),
            (StoreDir::Data, self.layout.data_dir()),
            (StoreDir::Log, self.layout.log_dir()),
        ] {
            let mut changed = false;
            for entry in self.fs.list_dir(&dir).await? {
                let leftover =
                    match manifest.leftover(kind, &entry.name, |t| t.expired(now_ms, retention)) {
                        Some(leftover) if !entry.is_dir => leftover,
                        _ => continue,
                    };
                let path = dir.join(&entry.name);
                if leftover == Leftover::Staged && self.twins.replay_consumed_segments {
                    continue;
                }
                if let Leftover::Unreferenced { id } = leftover {
                    // A rollback set every file the last good version does not reference
                    // aside (step 2): deleting one here would delete rows it may hold alone.
                    assert!(
                        self.report.rolled_back.is_none(),
                        "{} survived the rollback unreferenced",
                        entry.name
                    );
                    max_orphan_id = max_orphan_id.max(id);
                }
                self.remove(&path).await?;
                changed = true;
                let name = self.relative(&path);
                match leftover {
                    Leftover::Temp => {
                        tally_sim::probe!("recover.temp-removed");
                        self.report.temp_files_removed.push(name)
                    }
                    Leftover::Unreferenced { .. } => {
                        tally_sim::probe!("recover.orphan-removed");
                        self.report.orphans_removed.push(name)
                    }
                    Leftover::Expired { .. } => {
                        tally_sim::probe!("recover.expired-vacuumed");
                        self.report.vacuumed.push(name)
                    }
                    Leftover::Staged => {
                        tally_sim::probe!("recover.staged-segment-removed");
                        self.report.staged_segments_removed.push(name)
                    }
                }
            }
            if changed {
                self.fs.sync_dir(&dir).await?;
            }
        }
        Ok(max_orphan_id)
    }
}

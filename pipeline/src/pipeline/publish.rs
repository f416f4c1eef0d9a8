//! Publish (protocol "Publish"): the next commit of the Delta log, written whole under a temp
//! name and given its version's name only if no commit holds it; every `checkpoint_interval`
//! commits, then a checkpoint of the table at that version (protocol "Checkpoint").

use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::delta::{self, checkpoint};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Tombstone};

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Commits version `v + 1`: the current state changed by `edit`, which may refuse
    /// (nothing is then written). Files `edit` takes out of the table become tombstones: their
    /// bytes stay for readers of older versions. Serialized by the `published` lock. A failure
    /// to write poisons the pipeline: the commit's fate is then unknown. A poisoned pipeline
    /// never commits, whoever calls: the check is made under the lock every commit takes, so
    /// no caller that passed an earlier check can slip a commit in after a failure.
    pub(super) async fn publish(
        &self,
        edit: impl FnOnce(&mut Manifest) -> Result<()>,
    ) -> Result<u64> {
        let mut current = self.inner.published.lock().await;
        if let Err(poisoned) = self.check_poison() {
            tally_sim::probe!("poison.commit-refused");
            return Err(poisoned);
        }
        let mut next = current.clone();
        edit(&mut next)?;
        next.version = current.version + 1;
        let now_ms = delta::millis(self.inner.world.clock.now());
        for file in current.files.iter().filter(|f| !next.files.contains(f)) {
            next.tombstones.push(Tombstone {
                level: file.level,
                id: file.id,
                bytes: file.bytes,
                removed_at_ms: now_ms,
            });
        }
        self.assert_publishable(&current, &next);
        let bytes =
            delta::commit::encode(Some(&current), &next, now_ms).map_err(|e| Error::Format {
                context: format!("commit {}", next.version),
                detail: e.to_string(),
            })?;
        // What recovery will read back is what was published. Costs a decode of the commit:
        // checked in debug builds (and the simulation's) only.
        debug_assert!(
            delta::commit::decode(&bytes)
                .and_then(|actions| delta::commit::apply(
                    Some(current.clone()),
                    next.version,
                    actions
                ))
                .is_ok_and(|read| read == next),
            "commit {} does not read back as written",
            next.version
        );
        let fs = &self.inner.world.fs;
        let layout = &self.inner.layout;
        let written = if self.inner.config.twins().commit_dir_unsynced {
            delta::log::write_commit_steps(fs, layout, next.version, &bytes, false).await
        } else {
            delta::write_commit(fs, layout, next.version, &bytes).await
        };
        if let Err(e) = written {
            let e = commit_failed(layout, next.version, e);
            self.poison(&e);
            return Err(e);
        }
        let version = next.version;
        *current = next;
        let interval = self.inner.config.checkpoint_interval;
        if interval > 0 && version % interval == 0 {
            let checkpointed = self.checkpoint(&mut current, &bytes, now_ms).await;
            if let Err(e) = checkpointed {
                self.poison(&e);
                return Err(e);
            }
        }
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .manifests_published += 1;
        Ok(version)
    }
    /// Writes the checkpoint of `current`, whose commit (`commit`, durable) was just made at
    /// `now_ms`. Tombstones whose retention has passed and whose files this process has
    /// deleted are dropped from it, and from `current` at once: the state in memory stays the
    /// one a replay from the checkpoint gives. (A file vacuumed here was deleted durably:
    /// `vacuum` records an id only after syncing `data/`.) A failure is returned; the commit
    /// itself stays made.
    async fn checkpoint(&self, current: &mut Manifest, commit: &[u8], now_ms: i64) -> Result<()> {
        let retention = self.inner.config.recovery.retention;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        // Never below what an earlier checkpoint dropped through: the clock may have gone
        // back since (a restart, a jump), and those tombstones are gone from memory.
        let kept_after = now_ms
            .saturating_sub(retention_ms)
            .max(current.tombstones_dropped_through_ms);
        {
            let mut vacuumed = self.inner.vacuumed.lock().expect("vacuumed lock");
            current.tombstones.retain(|t| {
                let drop = t.removed_at_ms <= kept_after && vacuumed.contains(&t.id);
                if drop {
                    vacuumed.remove(&t.id);
                }
                !drop
            });
        }
        current.tombstones_dropped_through_ms = kept_after;
        let commit_crc = checkpoint::commit_seal(commit).expect("a commit tally just wrote");
        let (bytes, seal) = checkpoint::encode(current, &commit_crc, kept_after, now_ms)?;
        // What the next open will start from is what is in memory. Costs a decode of the
        // checkpoint: checked in debug builds (and the simulation's) only.
        debug_assert!(
            checkpoint::decode(bytes.clone(), current.version).is_ok_and(|c| c.table == *current),
            "checkpoint {} does not read back as written",
            current.version
        );
        checkpoint::write(&self.inner.world.fs, &self.inner.layout, &bytes, &seal).await?;
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .checkpoints_written += 1;
        Ok(())
    }

    /// What every published manifest keeps (see [`Manifest::assert_invariants`]), and what
    /// moves only forward from one version to the next: the staged segments it covers, and the
    /// file ids handed out (the allocator stays at or above the manifest's next id, so no id
    /// is used twice).
    fn assert_publishable(&self, current: &Manifest, next: &Manifest) {
        next.assert_invariants();
        assert!(
            next.log_through >= current.log_through,
            "manifest version {} would cover segments through {}, version {} through {}",
            next.version,
            next.log_through,
            current.version,
            current.log_through
        );
        let allocator = self
            .inner
            .next_file_id
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            allocator >= next.next_file_id,
            "file id allocator at {allocator}, below the manifest's next id {}",
            next.next_file_id
        );
    }
}

/// The error of a commit that could not be written. A version found taken is named: only
/// another writer (or a file that is not tally's) takes one, since one writer per root holds
/// the lock and its versions follow the log it replayed.
fn commit_failed(layout: &crate::Layout, version: u64, e: std::io::Error) -> Error {
    if e.kind() != std::io::ErrorKind::AlreadyExists {
        return Error::from(e);
    }
    Error::corrupt(
        layout.commit(version),
        "a commit already exists under the version being published; tally never writes over \
         one, and this commit was not published. Way out: if another program writes to this \
         table, stop it; if the file is not tally's, move it out of _delta_log/ and run again",
    )
}

//! Vacuum (protocol "Vacuum"): the bytes of a table file a commit removed are deleted once its
//! retention period has passed on the world's clock, so that readers of the versions before
//! its removal (a running query, a time-travel read) still find it.

use std::path::PathBuf;

use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::delta;
use crate::error::Result;

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Deletes the removed table files whose retention has passed, then syncs `data/`.
    /// Returns how many it deleted. A file already gone counts as deleted. Refused once the
    /// pipeline is poisoned.
    pub async fn vacuum(&self) -> Result<usize> {
        let retention = if self.inner.config.twins().vacuum_ignores_retention {
            std::time::Duration::ZERO
        } else {
            self.inner.config.recovery.retention
        };
        let now_ms = delta::millis(self.inner.world.clock.now());
        let layout = &self.inner.layout;
        let due: Vec<(u64, PathBuf)> = {
            let current = self.inner.published.lock().await;
            // A poisoned pipeline deletes nothing: its table in memory may not be the disk's.
            self.check_poison()?;
            let vacuumed = self.inner.vacuumed.lock().expect("vacuumed lock");
            current
                .tombstones
                .iter()
                .filter(|t| t.expired(now_ms, retention) && !vacuumed.contains(&t.id))
                .map(|t| (t.id, layout.table_file(t.level, t.id)))
                .collect()
        };
        if due.is_empty() {
            return Ok(0);
        }
        let paths: Vec<PathBuf> = due.iter().map(|(_, p)| p.clone()).collect();
        crate::install::remove_superseded(&self.inner.world.fs, &layout.data_dir(), &paths).await?;
        self.inner
            .vacuumed
            .lock()
            .expect("vacuumed lock")
            .extend(due.iter().map(|(id, _)| *id));
        self.inner.stats.lock().expect("stats lock").files_vacuumed += due.len() as u64;
        Ok(due.len())
    }
}

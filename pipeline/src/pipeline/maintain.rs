//! The maintenance scheduler: stage every sealed segment, then merge until none is due, one
//! step at a time (the `maintenance` lock); run on demand (`flush`, `maintain`) or by a task
//! woken whenever a segment is sealed.

use std::sync::atomic::Ordering;

use tally_sim::{Clock, Fs};

use super::Pipeline;
use super::config::MaintenanceReport;
use crate::error::Result;

/// Which steps a maintenance run takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Steps {
    StageOnly,
    StageAndMerge,
}

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Seals the active segment (if it holds data), then stages and merges until nothing is
    /// due. When it returns `Ok`, every row acknowledged before the call is published.
    pub async fn flush(&self) -> Result<MaintenanceReport> {
        self.seal_active().await?;
        self.maintain().await
    }

    /// Seals the active segment (if it holds data) and stages every sealed segment, merging
    /// nothing: what a bulk load needs before its next file takes sequence numbers. Its
    /// merges wait for the next `flush` or `maintain`, so that a bulk load never holds its
    /// input's batches while a merge holds a reader and a writer of its own.
    pub(super) async fn stage_all(&self) -> Result<()> {
        self.seal_active().await?;
        self.run_steps(Steps::StageOnly).await.map(drop)
    }

    async fn seal_active(&self) -> Result<()> {
        self.check_poison()?;
        let mut log = self.inner.log.lock().await;
        if log.active.as_ref().is_some_and(|a| a.parts > 0) {
            self.seal(&mut log);
        }
        Ok(())
    }

    /// Stages every sealed segment and runs merges until none is due. A failed step stops
    /// the pipeline (it is poisoned): what it left half done is for recovery.
    ///
    /// The poison is checked again once the lock is held and before every step: a caller that
    /// waited for the lock while another caller's step failed must not redo that step's writes
    /// on a pipeline whose state is unknown, nor report success.
    pub async fn maintain(&self) -> Result<MaintenanceReport> {
        self.run_steps(Steps::StageAndMerge).await
    }

    async fn run_steps(&self, steps: Steps) -> Result<MaintenanceReport> {
        self.check_poison()?;
        let _one_at_a_time = self.inner.maintenance.lock().await;
        let mut report = MaintenanceReport::default();
        loop {
            if let Err(poisoned) = self.check_poison() {
                tally_sim::probe!("poison.step-refused");
                return Err(poisoned);
            }
            match self.maintenance_step(&mut report, steps).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    self.poison(&e);
                    return Err(e);
                }
            }
        }
        report.manifest_version = self.inner.published.lock().await.version;
        Ok(report)
    }

    /// One stage step if a segment is sealed, else one merge step if one is due. Returns
    /// whether a step ran.
    async fn maintenance_step(&self, report: &mut MaintenanceReport, steps: Steps) -> Result<bool> {
        if self.stage_next().await? {
            report.segments_staged += 1;
            return Ok(true);
        }
        if steps == Steps::StageAndMerge && self.merge_next().await? {
            report.merges += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whenever a group commit or a seal wakes it, until `stop_maintenance`: encodes the
    /// acknowledged parts queued for staging (so a segment's file is written while it fills),
    /// then runs `maintain` if a segment is sealed. Errors stop the pipeline (it is poisoned)
    /// and end the task.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<Result<()>> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.inner.wake.notified().await;
                if this.inner.stopping.load(Ordering::Acquire) {
                    return Ok(());
                }
                this.check_poison()?;
                this.encode_queued().await?;
                if !this.inner.log.lock().await.sealed.is_empty() {
                    this.maintain().await?;
                }
            }
        })
    }

    pub fn stop_maintenance(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

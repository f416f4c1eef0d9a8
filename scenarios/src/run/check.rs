//! What a run checks: each crash point's image, the disk at the restart and at the end (all
//! by the oracle, against what was acknowledged by then), and at the end the write
//! amplification of each lifetime and the workload's probes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tally_pipeline::Pipeline;
use tally_sim::{SimClock, SimFs, World};

use super::capture::CrashPoint;
use super::lock;
use super::reuse::Found;
use super::runner::Run;
use super::spec::{Depth, Images};
use super::verdict::{Phase, Violation};
use crate::oracle::{self, Breach, EXPORT_DIR, Expectation, Invariant, ROOT, Seen, SourceProgress};
use crate::workload::Workload;

/// What the oracle expects of a disk captured with `progress`.
fn expectation(
    progress: &BTreeMap<String, SourceProgress>,
    workload: &Workload,
    final_state: bool,
    disk_may_lie: bool,
) -> Expectation {
    Expectation {
        sources: progress.clone(),
        payload_bytes: workload.payload_bytes,
        final_state,
        extra_columns: workload.extra_columns,
        export_dir: workload.export.map(|_| PathBuf::from(EXPORT_DIR)),
        disk_may_lie,
    }
}

impl Run<'_> {
    /// Checks the crash points of lifetime `life`, in the order of their calls.
    pub(super) async fn check_points(&mut self, life: u32, points: Vec<CrashPoint>) {
        let checked = self.crash_points;
        let count = points.len() as u64;
        self.reuse.start_lifetime();
        for point in points {
            self.crash_points += 1;
            self.check_point(life, point).await;
        }
        debug_assert_eq!(
            self.crash_points,
            checked + count,
            "each point counted once"
        );
    }

    /// Recovers one crash image and checks it against what was acknowledged before its call
    /// (a measuring run stops where its depth says).
    async fn check_point(&mut self, life: u32, point: CrashPoint) {
        let image = match (self.images, point.image) {
            (Images::Measure(Depth::Recover), Some(image)) => {
                let world = World::new(image, SimClock::default());
                let _ = Pipeline::open(world, ROOT, self.config.clone()).await;
                return;
            }
            (Images::Measure(_), _) | (_, None) => return,
            (_, Some(image)) => image,
        };
        {
            let mut recorder = lock(&self.recorder);
            for mark in &point.marks {
                recorder.count(*mark);
            }
            recorder.count(crate::coverage::crash_probe(self.spec.model, &point.op));
        }
        let variant = point.variant.as_deref();
        let label = variant.map(|v| format!(" [{v}]")).unwrap_or_default();
        let lies = self.disk_may_lie(life, point.op.index);
        let expect = expectation(&point.progress, &self.spec.workload, false, lies);
        let found = match self.reuse.answer(&image, &expect) {
            Some((found, of)) => {
                self.trace.line(format!(
                    "point L{life}#{}{label} is the same disk as L{life}#{of}: its verdict is reused",
                    point.op.index
                ));
                if self.reuse.audit_due() {
                    // Soundness, checked as the sweep goes: the reused verdict is the one a
                    // fresh check gives.
                    let fresh = self.check_image(&image, &expect).await;
                    assert_eq!(
                        (&fresh.verdict, &fresh.marks),
                        (&found.verdict, &found.marks),
                        "seed {}: the check of L{life}#{} differs from that of the same disk #{of}",
                        self.spec.seed,
                        point.op.index
                    );
                }
                found
            }
            None => {
                // Recovery changes the disk it runs on: the crash image is kept as it was.
                let pristine = image.snapshot();
                let found = self.check_image(&image, &expect).await;
                self.reuse
                    .remember(pristine, expect, point.op.index, found.clone());
                found
            }
        };
        {
            let mut recorder = lock(&self.recorder);
            for mark in &found.marks {
                recorder.count(*mark);
            }
        }
        match found.verdict {
            Ok(seen) => self.passed(format!("point L{life}#{}{label}", point.op.index), &seen),
            Err(breach) => self.violation(Violation {
                phase: Phase::CrashPoint,
                life,
                op_index: Some(point.op.index),
                op: Some(match variant {
                    Some(v) => format!("{} [{v}]", point.op),
                    None => point.op.to_string(),
                }),
                breach,
            }),
        }
    }

    /// Recovers `image` and applies the oracle, holding it to `expect`; collects the marks the
    /// check fires instead of counting them, so a reuse of the verdict can count them too.
    async fn check_image(&mut self, image: &SimFs, expect: &Expectation) -> Found {
        let outer = lock(&self.recorder).capturing.replace(Vec::new());
        debug_assert!(
            outer.is_none(),
            "images are checked after their lifetime's capture"
        );
        let verdict =
            oracle::check_cached(image, Path::new(ROOT), &self.config, expect, &self.rows).await;
        let marks = std::mem::replace(&mut lock(&self.recorder).capturing, outer);
        Found {
            verdict,
            marks: marks.unwrap_or_default(),
        }
    }

    /// Checks a whole disk at a restart or at the end; returns the rows published there.
    pub(super) async fn check_disk(
        &mut self,
        disk: &SimFs,
        life: u32,
        phase: Phase,
        final_state: bool,
    ) -> Option<u64> {
        let progress = lock(&self.progress).clone();
        let expect = expectation(
            &progress,
            &self.spec.workload,
            final_state,
            self.disk_may_lie(life, u64::MAX),
        );
        let checked = oracle::check_cached(
            &disk.snapshot(),
            Path::new(ROOT),
            &self.config,
            &expect,
            &self.rows,
        )
        .await;
        match checked {
            Ok(seen) => {
                self.passed(format!("{phase:?} check"), &seen);
                Some(seen.published_rows)
            }
            Err(breach) => {
                self.violation(Violation::at(phase, life, breach));
                None
            }
        }
    }

    /// Whether something other than the pipeline may explain a repaired sequence reservation
    /// on the disk after call `op_index` of lifetime `life`: a control making the disk lie, or
    /// a corrupted read of the reservation at or before that call (the file it set aside stays
    /// aside, so every later disk, the second lifetime's too, may show the repair).
    fn disk_may_lie(&self, life: u32, op_index: u64) -> bool {
        let misread = *lock(&self.seq_misread);
        !self.spec.plan.controls.is_empty() || misread.is_some_and(|at| life > 1 || op_index >= at)
    }

    /// A check of `what` passed, having seen `seen`.
    fn passed(&mut self, what: String, seen: &Seen) {
        self.max_level = self.max_level.max(seen.max_level);
        self.trace.line(format!(
            "{what} ok: version {}, {} published, {} staged",
            seen.manifest_version, seen.published_rows, seen.staged_rows
        ));
    }

    /// The end-of-run checks that are not about one disk: write amplification per lifetime,
    /// then the workload's probes on copies of the final disk.
    pub(super) async fn check_end(&mut self, disk: &SimFs, table_rows: u64) {
        self.write_amplification(table_rows);
        for probe in self.spec.workload.probes.clone() {
            let seed = self.spec.seed;
            // The rollback probe's images draw from lifetime 3's seeds (runs have two).
            let point_seed = move |index| super::point_seed(seed, 3, index);
            let crash = (self.spec.model, &point_seed as &(dyn Fn(u64) -> u64 + Sync));
            let (found, crash_probes) = crate::probe::run(
                probe,
                disk,
                &self.config,
                &self.spec.workload,
                crash,
                &self.trace,
            )
            .await;
            // The rollback's crash images were recovered and checked like the lifetime's.
            self.crash_points += crash_probes.len() as u64;
            {
                let mut recorder = lock(&self.recorder);
                for probe in crash_probes {
                    recorder.count(probe);
                }
            }
            for breach in found {
                self.violation(Violation::at(Phase::Final, 2, breach));
            }
        }
    }

    /// `write-amplification`: each lifetime wrote at most `max_level + 1` times the table's
    /// rows into table files.
    fn write_amplification(&mut self, table_rows: u64) {
        let bound = u64::from(self.config.max_level + 1) * table_rows;
        for (i, written) in self.written.into_iter().enumerate() {
            self.trace.line(format!(
                "L{} wrote {written} table rows (bound {bound})",
                i + 1
            ));
            if written > bound {
                let breach = Breach::new(
                    Invariant::WriteAmplification,
                    vec![],
                    format!(
                        "lifetime {} wrote {written} rows into table files; the bound is {} levels × {table_rows} rows = {bound}",
                        i + 1,
                        self.config.max_level + 1
                    ),
                );
                self.violation(Violation::at(Phase::Final, i as u32 + 1, breach));
            }
        }
    }
}

//! One run from its spec to its outcome: the first lifetime under the fault plan, the disk it
//! leaves, the second lifetime, and what was found along the way.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tally_faults::FaultFs;
use tally_pipeline::Config;
use tally_sim::{Clock, CrashModel, Fs, SimClock, SimFs, World};

use super::capture::{Capture, point_seed};
use super::drive::{Ctx, Progress, drive};
use super::lock;
use super::spec::{Images, RunSpec};
use super::verdict::{Phase, RunOutcome, Violation, Violations};
use crate::coverage::{self, SharedRecorder};
use crate::oracle::{self, Breach, Invariant, ROOT, SourceProgress};
use crate::trace::Trace;

/// Runs `spec` to its end. Call it inside a runtime seeded with `spec.seed` (see
/// [`crate::runtime::run_seeded`]).
pub async fn run(spec: &RunSpec) -> RunOutcome {
    run_with(spec, Images::Sampled).await
}

/// Runs `spec`, taking crash images as `images` says.
pub async fn run_with(spec: &RunSpec, images: Images) -> RunOutcome {
    let mut run = Run::start(spec, images);
    let _marks = coverage::install(&run.recorder);
    let disk = SimFs::new();
    let first = run.first_lifetime(&disk).await;
    let image = run.restart(&disk, &first);
    // What the second lifetime will find, recovered on a copy and checked before it goes on.
    run.check_disk(&image, 1, Phase::Restart, false).await;
    run.second_lifetime(&image).await;
    run.outcome(first, &image)
}

/// The state of one run as it goes.
pub(super) struct Run<'a> {
    pub spec: &'a RunSpec,
    pub config: Config,
    pub trace: Trace,
    pub progress: Progress,
    pub crash_points: u64,
    pub violations: Violations,
    pub max_level: u32,
    /// Rows written to table files by each lifetime.
    pub written: [u64; 2],
    pub images: Images,
    /// Table files decoded by earlier checks of this run.
    pub rows: oracle::RowCache,
    /// The coverage probes the run reached.
    pub recorder: SharedRecorder,
    /// The crash image checked last: the next one, if it is the same disk, reuses its verdict.
    pub reuse: super::reuse::Reuse,
    /// The first call of the first lifetime whose read of the sequence reservation was
    /// corrupted: a repaired reservation is explained from then on (`repairs-explained`).
    pub seq_misread: Arc<Mutex<Option<u64>>>,
}

/// How the first lifetime ended.
struct FirstLife {
    /// Where the plan's crash fired, if it did.
    crashed: Option<String>,
    /// The error the lifetime ended on, if it did.
    error: Option<String>,
    /// A fault (other than a clock jump) was injected: it may explain an error.
    injected: Arc<AtomicBool>,
    /// The lifetime's fault layer, kept for as long as the run lasts.
    _faulty: FaultFs<SimFs>,
}

impl<'a> Run<'a> {
    /// Starts the trace (seed, workload, plan, twin) and the run's state.
    fn start(spec: &'a RunSpec, images: Images) -> Self {
        let trace = Trace::default();
        trace.line(format!(
            "seed {} scenario {} model {}",
            spec.seed, spec.scenario, spec.model
        ));
        trace.line(format!(
            "workload {}",
            serde_json::to_string(&spec.workload).expect("a workload serializes")
        ));
        trace.line(format!("plan {}", spec.plan));
        trace.line(match &spec.swarm {
            Some(profile) => format!("swarm {profile}"),
            None => "swarm off (uniform profile)".to_owned(),
        });
        let progress: Progress = Arc::new(Mutex::new(
            spec.workload
                .sources
                .iter()
                .map(|s| (s.name.clone(), SourceProgress::default()))
                .collect(),
        ));
        let config = match spec.config() {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        if let Some(twin) = spec.twin {
            trace.line(format!("twin {twin}: {}", twin.describe()));
        }
        Run {
            spec,
            config,
            trace,
            progress,
            crash_points: 0,
            violations: Violations::default(),
            max_level: 0,
            written: [0; 2],
            images,
            rows: oracle::RowCache::default(),
            recorder: SharedRecorder::default(),
            reuse: super::reuse::Reuse::default(),
            seq_misread: Arc::default(),
        }
    }

    pub(super) fn violation(&mut self, violation: Violation) {
        self.violations.record(&self.trace, violation);
    }

    fn unexplained(&mut self, life: u32, detail: String) {
        let breach = Breach::new(Invariant::NoUnexplainedError, vec![], detail);
        self.violation(Violation::at(Phase::Workload, life, breach));
    }

    /// Runs process lifetime `life` of the workload on `world` (whose filesystem writes to
    /// `disk`), then checks the crash image of every mutating call it made.
    async fn lifetime<F: Fs, C: Clock>(
        &mut self,
        disk: &SimFs,
        life: u32,
        world: World<F, C>,
    ) -> Result<(), String> {
        debug_assert!(matches!(life, 1 | 2), "a run has two lifetimes");
        let capture = Capture::install(
            disk,
            life,
            self.spec,
            self.images,
            &self.progress,
            &self.trace,
            &self.recorder,
        );
        let mut ctx = Ctx::new(self.progress.clone(), self.trace.clone(), life);
        ctx.disk = Some(disk.clone());
        let resuming = life == 2;
        let workload = &self.spec.workload;
        let result = drive(
            world,
            Path::new(ROOT),
            workload,
            &self.config,
            &ctx,
            resuming,
        )
        .await;
        let points = capture.finish(disk);
        for breach in std::mem::take(&mut *lock(&ctx.findings)) {
            self.violation(Violation::at(Phase::Workload, life, breach));
        }
        let written = &mut self.written[life as usize - 1];
        debug_assert_eq!(*written, 0, "lifetime {life} ran twice");
        *written = ctx.written.load(Ordering::Relaxed);
        self.check_points(life, points).await;
        result
    }

    /// The first lifetime: the workload through the fault plan.
    async fn first_lifetime(&mut self, disk: &SimFs) -> FirstLife {
        let faulty = match FaultFs::new(disk.clone(), self.spec.plan.clone()) {
            Ok(f) => f,
            Err(e) => panic!("the plan's path pattern is not a glob: {e}"),
        };
        let injected = Arc::new(AtomicBool::new(false));
        {
            let (trace, injected) = (self.trace.clone(), injected.clone());
            let seq_misread = self.seq_misread.clone();
            let recorder = self.recorder.clone();
            faulty.on_event(move |e| {
                if let Some(probe) = coverage::fault_probe(e) {
                    lock(&recorder).count(probe);
                }
                // A clock jump is no reason for an error.
                if !matches!(e.injected, Some(tally_faults::Effect::ClockJump { .. })) {
                    injected.store(true, Ordering::Relaxed);
                }
                // A bad read of the reservation makes the pipeline set it aside and recovery
                // rebuild it from the numbers in use: a repair the fault explains.
                if matches!(
                    e.injected,
                    Some(tally_faults::Effect::CorruptRead | tally_faults::Effect::FlipDigit)
                ) && coverage::file_class(&e.path) == "seq"
                {
                    lock(&seq_misread).get_or_insert(e.call);
                }
                // `#N op path` as the disk's op log prints the same call.
                trace.line(format!(
                    "L1 fault at #{} {} {}: {}",
                    e.call, e.op, e.path, e.what
                ))
            });
        }
        let world = World::new(faulty.clone(), faulty.clock(SimClock::default()));
        let result = self.lifetime(disk, 1, world).await;
        FirstLife {
            crashed: faulty.crashed_at().map(|call| format!("#{call}")),
            error: result.err(),
            injected,
            _faulty: faulty,
        }
    }

    /// The disk the second lifetime finds: crashed under the run's model if the plan's crash
    /// fired; otherwise the process merely exited, and everything survives (`kill`).
    fn restart(&mut self, disk: &SimFs, first: &FirstLife) -> SimFs {
        let spec = self.spec;
        match (&first.crashed, &first.error) {
            (Some(at), _) => {
                self.trace
                    .line(format!("L1 crash at {at}, model {}", spec.model));
                disk.crash(spec.model, point_seed(spec.seed, 1, u64::MAX))
            }
            (None, Some(error)) => {
                self.trace
                    .line(format!("L1 ended on an error; the process exits: {error}"));
                // Only a fault or control that actually acted explains an error.
                let explained =
                    first.injected.load(Ordering::Relaxed) || !spec.plan.controls.is_empty();
                if !explained {
                    self.unexplained(1, error.clone());
                }
                disk.crash(CrashModel::Kill, 0)
            }
            (None, None) => {
                self.trace.line("L1 ended; the process exits");
                disk.crash(CrashModel::Kill, 0)
            }
        }
    }

    /// The second lifetime: recover, complete the workload without faults, check the end.
    async fn second_lifetime(&mut self, image: &SimFs) {
        let world = World::new(image.clone(), SimClock::default());
        match self.lifetime(image, 2, world).await {
            Ok(()) => {
                if let Some(rows) = self.check_disk(image, 2, Phase::Final, true).await {
                    self.check_end(image, rows).await;
                }
            }
            Err(error) => {
                self.unexplained(2, format!("the fault-free second lifetime failed: {error}"))
            }
        }
    }

    fn outcome(self, first: FirstLife, image: &SimFs) -> RunOutcome {
        let rows_acknowledged = lock(&self.progress).values().map(|p| p.acked).sum();
        let digest = self.trace.digest(&image.tree());
        RunOutcome {
            scenario: self.spec.scenario.clone(),
            seed: self.spec.seed,
            model: self.spec.model.to_string(),
            plan: self.spec.plan.to_string(),
            crash_points: self.crash_points,
            crashed: first.crashed,
            workload_error: first.error,
            rows_acknowledged,
            max_level: self.max_level,
            violations: self.violations.kept,
            violation_count: self.violations.count,
            digest,
            probes: std::mem::take(&mut lock(&self.recorder).hits),
            trace: self.trace.lines(),
        }
    }
}

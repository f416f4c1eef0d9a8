//! One seeded run: the workload on a simulated disk under a fault plan, a crash image checked
//! after every mutating call, the run's own crash, recovery, and the run completed after it.
//!
//! A run has two lifetimes of the process. The first runs the workload through a `FaultFs`
//! applying the plan, until it ends, fails, or the plan's crash kills it. The disk then
//! crashes (under the run's model if the plan's crash fired; otherwise the process merely
//! exited, and the page cache survives), and the second lifetime recovers it, checks it, and
//! completes the workload fault-free. After every mutating call of either lifetime the
//! harness takes that moment's crash image and, once the lifetime ends, runs the real recovery
//! on each image and applies the oracle with what was acknowledged before that call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tally_faults::{FaultFs, FaultPlan, plan::model_name};
use tally_pipeline::{Config, Layout, Pipeline, export, read, verify};
use tally_sim::{Clock, CrashModel, Fs, OpRecord, SimFs, SystemClock, World};

use super::oracle::{self, Breach, EXPORT_DIR, Expectation, Invariant, ROOT, SourceProgress};
use super::trace::Trace;
use super::twin::Twin;
use super::workload::{Entry, Resume, Workload};

/// Everything that decides a run. Derived from a seed by a scenario, or read from a file
/// (a shrunk plan) by `replay --plan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    pub scenario: String,
    /// Seeds the runtime's scheduling and the crash images' choices.
    pub seed: u64,
    /// The crash model of every crash image and of the plan's crash.
    #[serde(with = "model_name")]
    pub model: CrashModel,
    pub workload: Workload,
    pub plan: FaultPlan,
    /// A buggy twin: the run is expected to fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin: Option<Twin>,
}

impl RunSpec {
    /// The pipeline configuration of the run: the workload's, with the twin's guard off.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = self.workload.config();
        if let Some(twin) = self.twin {
            twin.apply(&mut config)?;
        }
        Ok(config)
    }
}

/// Where a violation was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The crash image after a call of a lifetime.
    CrashPoint,
    /// The disk the run's own crash (or exit) left, as the second lifetime recovered it.
    Restart,
    /// The end of the run.
    Final,
    /// The workload itself.
    Workload,
}

/// A broken invariant, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub phase: Phase,
    /// Process lifetime: 1 before the run's crash, 2 after.
    pub life: u32,
    /// Index in that lifetime's disk op log of the call after which the crash image was
    /// taken (crash points only).
    pub op_index: Option<u64>,
    /// That call, as the op log prints it.
    pub op: Option<String>,
    #[serde(flatten)]
    pub breach: Breach,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.phase, &self.op) {
            (Phase::CrashPoint, Some(op)) => write!(f, "crash after L{} {op} — ", self.life)?,
            (Phase::Restart, _) => write!(f, "restart after L{}: ", self.life)?,
            (Phase::Final, _) => f.write_str("end of run: ")?,
            _ => write!(f, "L{} workload: ", self.life)?,
        }
        write!(f, "{}", self.breach)
    }
}

/// What a run found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    pub model: String,
    pub plan: String,
    /// Crash images recovered and checked.
    pub crash_points: u64,
    /// Where the plan's crash fired, if it did.
    pub crashed: Option<String>,
    /// The first lifetime ended on an error (injected or not).
    pub workload_error: Option<String>,
    pub rows_acknowledged: u64,
    /// Highest table level any check saw.
    pub max_level: u32,
    /// Violations found (at most [`KEPT_VIOLATIONS`] kept), and how many in all.
    pub violations: Vec<Violation>,
    pub violation_count: u64,
    /// A digest of the whole trace and the final disk: equal digests, equal runs.
    pub digest: String,
    #[serde(skip)]
    pub trace: Vec<String>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }
}

pub const KEPT_VIOLATIONS: usize = 20;

/// Per-source progress, shared by the workload's tasks and the per-call observer.
pub(crate) type Progress = Arc<Mutex<BTreeMap<String, SourceProgress>>>;

/// What the tasks of one process lifetime share with the run.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub progress: Progress,
    pub trace: Trace,
    /// Invariants broken while the lifetime ran (not at crash points).
    pub findings: Arc<Mutex<Vec<Breach>>>,
    /// Rows written to table files in this lifetime, by every pipeline it opened.
    pub written: Arc<AtomicU64>,
    pub life: u32,
    /// The simulated disk under the lifetime's fault layer: what the harness's own reads (the
    /// drain check, the second handle) go through, so that they neither meet nor shift the
    /// plan's faults. `None` on the real disk.
    pub disk: Option<SimFs>,
}

impl Ctx {
    pub fn new(progress: Progress, trace: Trace, life: u32) -> Self {
        Self {
            progress,
            trace,
            findings: Arc::default(),
            written: Arc::default(),
            life,
            disk: None,
        }
    }

    fn find(&self, breach: Breach) {
        self.trace.line(format!("L{} found {breach}", self.life));
        lock(&self.findings).push(breach);
    }
}

/// A crash image waiting to be checked.
struct CrashPoint {
    op: OpRecord,
    /// Which persistence variant, when a point has several.
    variant: Option<String>,
    /// `None` when the run only counts points ([`Depth::Count`]).
    image: Option<SimFs>,
    progress: BTreeMap<String, SourceProgress>,
}

/// The seed of the crash image after call `index` of lifetime `life`: distinct per point,
/// fixed by the run's seed.
pub(crate) fn point_seed(seed: u64, life: u32, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((u64::from(life) << 48) ^ index);
    rng.r#gen()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How crash images are taken at each crash point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Images {
    /// One image per point: the run's model, its choices drawn from the run's seed.
    Sampled,
    /// Every persistence variant the model allows, bounded as [`super::explore::variants`]
    /// says.
    Exhaustive,
    /// As `Sampled`, but each point's check stops at `Depth`: what the parts of a check cost,
    /// measured by running the same seeds to each depth (`tally bench`). Such a run checks
    /// less than a real one and says nothing about correctness.
    Measure(Depth),
}

/// How far a [`Images::Measure`] run takes each crash point; the full check follows the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// Count the point only.
    Count,
    /// Copy the disk, as every image does.
    Clone,
    /// Take the crash image under the run's model.
    Image,
    /// Take the image and run recovery on it (open the pipeline), nothing else.
    Recover,
}

/// Collects crash images after every mutating call on `disk`, and traces every call.
fn observe(
    disk: &SimFs,
    life: u32,
    spec: &RunSpec,
    images: Images,
    progress: &Progress,
    trace: &Trace,
) -> Arc<Mutex<Vec<CrashPoint>>> {
    let points = Arc::new(Mutex::new(Vec::new()));
    let (sink, progress, trace) = (points.clone(), progress.clone(), trace.clone());
    let (seed, model) = (spec.seed, spec.model);
    disk.set_observer(move |disk, op| {
        trace.line(format!("L{life} {op}"));
        if !op.kind.is_mutating() {
            return;
        }
        let progress = lock(&progress).clone();
        let mut sink = lock(&sink);
        let point = |image| CrashPoint {
            op: op.clone(),
            variant: None,
            image,
            progress: progress.clone(),
        };
        match images {
            Images::Sampled | Images::Measure(Depth::Image | Depth::Recover) => sink.push(point(
                Some(disk.crash(model, point_seed(seed, life, op.index))),
            )),
            Images::Measure(Depth::Clone) => sink.push(point(Some(disk.snapshot()))),
            Images::Measure(Depth::Count) => sink.push(point(None)),
            Images::Exhaustive => {
                for (variant, plan) in super::explore::variants(disk, model) {
                    let image = disk
                        .crash_with(&plan)
                        .expect("variants are dependency-closed plans of pending ops");
                    sink.push(CrashPoint {
                        op: op.clone(),
                        variant: Some(variant),
                        image: Some(image),
                        progress: progress.clone(),
                    });
                }
            }
        }
    });
    points
}

fn expectation(
    progress: &BTreeMap<String, SourceProgress>,
    workload: &Workload,
    final_state: bool,
) -> Expectation {
    Expectation {
        sources: progress.clone(),
        payload_bytes: workload.payload_bytes,
        final_state,
        extra_columns: workload.extra_columns,
        export_dir: workload.export.map(|_| PathBuf::from(EXPORT_DIR)),
    }
}

/// The state of one run as it goes.
struct Run<'a> {
    spec: &'a RunSpec,
    config: Config,
    trace: Trace,
    progress: Progress,
    crash_points: u64,
    violations: Vec<Violation>,
    violation_count: u64,
    max_level: u32,
    /// Rows written to table files by each lifetime.
    written: [u64; 2],
    images: Images,
    /// Table files decoded by earlier checks of this run.
    rows: oracle::RowCache,
}

impl Run<'_> {
    fn violation(&mut self, violation: Violation) {
        self.trace.line(format!("VIOLATION {violation}"));
        self.violation_count += 1;
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(violation);
        }
    }

    fn unexplained(&mut self, life: u32, detail: String) {
        self.violation(Violation {
            phase: Phase::Workload,
            life,
            op_index: None,
            op: None,
            breach: Breach {
                invariant: Invariant::NoUnexplainedError,
                rows: vec![],
                detail,
            },
        });
    }

    /// Runs process lifetime `life` of the workload on `world` (whose filesystem writes to
    /// `disk`), then checks the crash image of every mutating call it made.
    async fn lifetime<F: Fs, C: Clock>(
        &mut self,
        disk: &SimFs,
        life: u32,
        world: World<F, C>,
    ) -> Result<(), String> {
        let points = observe(
            disk,
            life,
            self.spec,
            self.images,
            &self.progress,
            &self.trace,
        );
        let mut ctx = Ctx::new(self.progress.clone(), self.trace.clone(), life);
        ctx.disk = Some(disk.clone());
        let result = drive(
            world,
            Path::new(ROOT),
            &self.spec.workload,
            &self.config,
            &ctx,
            life == 2,
        )
        .await;
        disk.set_observer(|_, _| {});
        for breach in std::mem::take(&mut *lock(&ctx.findings)) {
            self.violation(Violation {
                phase: Phase::Workload,
                life,
                op_index: None,
                op: None,
                breach,
            });
        }
        self.written[life as usize - 1] = ctx.written.load(Ordering::Relaxed);
        let points = std::mem::take(&mut *lock(&points));
        self.check_points(life, points).await;
        result
    }

    async fn check_points(&mut self, life: u32, points: Vec<CrashPoint>) {
        for point in points {
            self.crash_points += 1;
            let image = match (self.images, point.image) {
                (Images::Measure(Depth::Recover), Some(image)) => {
                    let world = World::new(image, SystemClock);
                    let _ = Pipeline::open(world, ROOT, self.config.clone()).await;
                    continue;
                }
                (Images::Measure(_), _) | (_, None) => continue,
                (_, Some(image)) => image,
            };
            let expect = expectation(&point.progress, &self.spec.workload, false);
            match oracle::check_cached(&image, Path::new(ROOT), &self.config, &expect, &self.rows)
                .await
            {
                Ok(seen) => {
                    self.max_level = self.max_level.max(seen.max_level);
                    self.trace.line(format!(
                        "point L{life}#{}{} ok: version {}, {} published, {} staged",
                        point.op.index,
                        point
                            .variant
                            .as_deref()
                            .map(|v| format!(" [{v}]"))
                            .unwrap_or_default(),
                        seen.manifest_version,
                        seen.published_rows,
                        seen.staged_rows
                    ));
                }
                Err(breach) => self.violation(Violation {
                    phase: Phase::CrashPoint,
                    life,
                    op_index: Some(point.op.index),
                    op: Some(match &point.variant {
                        Some(v) => format!("{} [{v}]", point.op),
                        None => point.op.to_string(),
                    }),
                    breach,
                }),
            }
        }
    }

    /// Checks a whole disk at a restart or at the end; returns the rows published there.
    async fn check_disk(
        &mut self,
        disk: &SimFs,
        life: u32,
        phase: Phase,
        final_state: bool,
    ) -> Option<u64> {
        let expect = expectation(
            &lock(&self.progress).clone(),
            &self.spec.workload,
            final_state,
        );
        match oracle::check_cached(
            &disk.snapshot(),
            Path::new(ROOT),
            &self.config,
            &expect,
            &self.rows,
        )
        .await
        {
            Ok(seen) => {
                self.max_level = self.max_level.max(seen.max_level);
                self.trace.line(format!(
                    "{phase:?} check ok: version {}, {} published, {} staged",
                    seen.manifest_version, seen.published_rows, seen.staged_rows
                ));
                Some(seen.published_rows)
            }
            Err(breach) => {
                self.violation(Violation {
                    phase,
                    life,
                    op_index: None,
                    op: None,
                    breach,
                });
                None
            }
        }
    }

    /// The end-of-run checks that are not about one disk: write amplification per lifetime,
    /// then the workload's probes on copies of the final disk.
    async fn check_end(&mut self, disk: &SimFs, table_rows: u64) {
        let bound = u64::from(self.config.max_level + 1) * table_rows;
        for (i, written) in self.written.into_iter().enumerate() {
            self.trace.line(format!(
                "L{} wrote {written} table rows (bound {bound})",
                i + 1
            ));
            if written > bound {
                self.violation(Violation {
                    phase: Phase::Final,
                    life: i as u32 + 1,
                    op_index: None,
                    op: None,
                    breach: Breach::new(
                        Invariant::WriteAmplification,
                        vec![],
                        format!(
                            "lifetime {} wrote {written} rows into table files; the bound is {} levels × {table_rows} rows = {bound}",
                            i + 1,
                            self.config.max_level + 1
                        ),
                    ),
                });
            }
        }
        for probe in self.spec.workload.probes.clone() {
            let found =
                super::probe::run(probe, disk, &self.config, &self.spec.workload, &self.trace)
                    .await;
            for breach in found {
                self.violation(Violation {
                    phase: Phase::Final,
                    life: 2,
                    op_index: None,
                    op: None,
                    breach,
                });
            }
        }
    }
}

/// Runs `spec` to its end. Call it inside a runtime seeded with `spec.seed` (see
/// [`crate::runtime::run_seeded`]).
pub async fn run(spec: &RunSpec) -> RunOutcome {
    run_with(spec, Images::Sampled).await
}

/// Runs `spec`, taking crash images as `images` says.
pub async fn run_with(spec: &RunSpec, images: Images) -> RunOutcome {
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
    let mut run = Run {
        spec,
        config,
        trace: trace.clone(),
        progress: progress.clone(),
        crash_points: 0,
        violations: Vec::new(),
        violation_count: 0,
        max_level: 0,
        written: [0; 2],
        images,
        rows: oracle::RowCache::default(),
    };

    // First lifetime: the workload through the fault plan.
    let disk = SimFs::new();
    let faulty = match FaultFs::new(disk.clone(), spec.plan.clone()) {
        Ok(f) => f,
        Err(e) => panic!("the plan's path pattern is not a glob: {e}"),
    };
    let injected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (trace, injected) = (trace.clone(), injected.clone());
        faulty.on_event(move |e| {
            // A clock jump is no reason for an error.
            if !e.what.contains("clock jump") {
                injected.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            trace.line(format!(
                "L1 fault at call {} ({} {}): {}",
                e.call, e.kind, e.path, e.what
            ))
        });
    }
    let world = World::new(faulty.clone(), faulty.clock(SystemClock));
    let outcome = run.lifetime(&disk, 1, world).await;

    let crashed = faulty.crashed_at().map(|call| format!("call {call}"));
    let workload_error = outcome.err();
    let image = match (&crashed, &workload_error) {
        (Some(at), _) => {
            trace.line(format!("L1 crash at {at}, model {}", spec.model));
            disk.crash(spec.model, point_seed(spec.seed, 1, u64::MAX))
        }
        (None, Some(error)) => {
            trace.line(format!("L1 ended on an error; the process exits: {error}"));
            // Only a fault or control that actually acted explains an error.
            let explained = injected.load(std::sync::atomic::Ordering::Relaxed)
                || !spec.plan.controls.is_empty();
            if !explained {
                run.unexplained(1, error.clone());
            }
            disk.crash(CrashModel::Kill, 0)
        }
        (None, None) => {
            trace.line("L1 ended; the process exits");
            disk.crash(CrashModel::Kill, 0)
        }
    };

    // What the second lifetime will find, recovered on a copy and checked before it goes on.
    run.check_disk(&image, 1, Phase::Restart, false).await;

    // Second lifetime: recover, complete the workload without faults.
    let world = World::new(image.clone(), SystemClock);
    match run.lifetime(&image, 2, world).await {
        Ok(()) => {
            if let Some(rows) = run.check_disk(&image, 2, Phase::Final, true).await {
                run.check_end(&image, rows).await;
            }
        }
        Err(error) => run.unexplained(2, format!("the fault-free second lifetime failed: {error}")),
    }

    let rows_acknowledged = lock(&progress).values().map(|p| p.acked).sum();
    let digest = trace.digest(&image.tree());
    RunOutcome {
        scenario: spec.scenario.clone(),
        seed: spec.seed,
        model: spec.model.to_string(),
        plan: spec.plan.to_string(),
        crash_points: run.crash_points,
        crashed,
        workload_error,
        rows_acknowledged,
        max_level: run.max_level,
        violations: run.violations,
        violation_count: run.violation_count,
        digest,
        trace: trace.lines(),
    }
}

/// How long a lifetime may take (virtual time under simulation) before it is declared hung.
const LIFETIME_LIMIT: Duration = Duration::from_secs(3600);

/// Runs the workload in one process lifetime: open (recovering), in the second lifetime do
/// the workload's entry action first, ingest every source's parts (from their own tasks when
/// the workload is concurrent, exporting as the workload says), restart cleanly if the
/// workload says so, flush, export a last time. `resuming` is the second lifetime: parts are
/// skipped or re-run as the workload's `resume` says. Returns the first error; invariants
/// broken along the way go to `ctx.findings`.
pub(crate) async fn drive<F: Fs, C: Clock>(
    world: World<F, C>,
    root: &Path,
    workload: &Workload,
    config: &Config,
    ctx: &Ctx,
    resuming: bool,
) -> Result<(), String> {
    let life = ctx.life;
    let work = async {
        let split = match (resuming, workload.restart_after_parts) {
            (false, Some(n)) => n,
            _ => usize::MAX,
        };
        let mut lifetime = Lifetime::open(&world, root, config, workload, ctx).await?;
        if resuming {
            let entered = lifetime.enter(workload, ctx).await;
            lifetime = lifetime.or_abort(entered, ctx)?;
        }
        let ingested = lifetime.ingest(workload, ctx, 0..split, resuming).await;
        lifetime = lifetime.or_abort(ingested, ctx)?;
        if split != usize::MAX {
            lifetime.close(ctx).await?;
            ctx.trace.line(format!("L{life} clean restart"));
            lifetime = Lifetime::open(&world, root, config, workload, ctx).await?;
            let ingested = lifetime
                .ingest(workload, ctx, split..usize::MAX, false)
                .await;
            lifetime = lifetime.or_abort(ingested, ctx)?;
        }
        let flushed = lifetime
            .pipeline
            .flush()
            .await
            .map_err(|e| format!("flush: {e}"));
        let report = match flushed {
            Ok(report) => report,
            Err(e) => return lifetime.or_abort(Err(e), ctx).map(drop),
        };
        ctx.trace.line(format!(
            "L{life} flush: {} staged, {} merges, version {}",
            report.segments_staged, report.merges, report.manifest_version
        ));
        if workload.export.is_some() {
            let exported = export_now(&lifetime.pipeline, ctx).await;
            lifetime = lifetime.or_abort(exported, ctx)?;
        }
        lifetime.close(ctx).await
    };
    match tokio::time::timeout(LIFETIME_LIMIT, work).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "lifetime {life} hung for {LIFETIME_LIMIT:?} of (virtual) time"
        )),
    }
}

/// One export into the run's export directory, traced.
async fn export_now<F: Fs, C: Clock>(pipeline: &Pipeline<F, C>, ctx: &Ctx) -> Result<(), String> {
    match export::export(pipeline, Path::new(EXPORT_DIR)).await {
        Ok(report) => {
            ctx.trace.line(format!("L{} export: {report}", ctx.life));
            Ok(())
        }
        Err(e) => {
            ctx.trace.line(format!("L{} export failed: {e}", ctx.life));
            Err(format!("export: {e}"))
        }
    }
}

/// An open pipeline, its maintenance task and its second read-only handle.
struct Lifetime<F: Fs, C: Clock> {
    pipeline: Pipeline<F, C>,
    maintenance: Option<tokio::task::JoinHandle<tally_pipeline::Result<()>>>,
    reader: Option<(Arc<AtomicBool>, tokio::task::JoinHandle<()>)>,
}

impl<F: Fs, C: Clock> Lifetime<F, C> {
    async fn open(
        world: &World<F, C>,
        root: &Path,
        config: &Config,
        workload: &Workload,
        ctx: &Ctx,
    ) -> Result<Self, String> {
        let life = ctx.life;
        let (pipeline, report) = Pipeline::open(world.clone(), root, config.clone())
            .await
            .map_err(|e| format!("open: {e}"))?;
        for line in report.to_string().lines() {
            ctx.trace.line(format!("L{life} recovery: {line}"));
        }
        // Whatever a crash left half done is gone before any entry point acts.
        match &ctx.disk {
            Some(disk) => drain_check(disk, root, ctx).await,
            None => drain_check(&world.fs, root, ctx).await,
        }
        let maintenance = workload
            .background_maintenance
            .then(|| pipeline.spawn_maintenance());
        let reader = workload.reader.then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let (root, ctx2) = (root.to_path_buf(), ctx.clone());
            let task = match &ctx.disk {
                Some(disk) => tokio::spawn(read_along(disk.clone(), root, stop.clone(), ctx2)),
                None => tokio::spawn(read_along(world.fs.clone(), root, stop.clone(), ctx2)),
            };
            (stop, task)
        });
        Ok(Self {
            pipeline,
            maintenance,
            reader,
        })
    }

    /// The second lifetime's first action after open, as the workload says.
    async fn enter(&mut self, workload: &Workload, ctx: &Ctx) -> Result<(), String> {
        ctx.trace
            .line(format!("L{} enters through {:?}", ctx.life, workload.entry));
        match workload.entry {
            Entry::Ingest => Ok(()),
            Entry::Flush => self
                .pipeline
                .flush()
                .await
                .map(drop)
                .map_err(|e| format!("flush on entry: {e}")),
            Entry::Export => export_now(&self.pipeline, ctx).await,
        }
    }

    async fn stop_reader(&mut self) {
        if let Some((stop, task)) = self.reader.take() {
            stop.store(true, Ordering::Release);
            let _ = task.await;
        }
    }

    /// Passes `self` on when `result` is fine; otherwise stops the maintenance task (the
    /// process is ending) and returns the error.
    fn or_abort(mut self, result: Result<(), String>, ctx: &Ctx) -> Result<Self, String> {
        match result {
            Ok(()) => Ok(self),
            Err(e) => {
                self.pipeline.stop_maintenance();
                if let Some(task) = self.maintenance.take() {
                    task.abort();
                }
                if let Some((stop, task)) = self.reader.take() {
                    stop.store(true, Ordering::Release);
                    task.abort();
                }
                self.count_written(ctx);
                Err(e)
            }
        }
    }

    fn count_written(&self, ctx: &Ctx) {
        ctx.written
            .fetch_add(self.pipeline.stats().table_rows_written, Ordering::Relaxed);
    }

    async fn close(mut self, ctx: &Ctx) -> Result<(), String> {
        self.pipeline.stop_maintenance();
        self.stop_reader().await;
        let result = match self.maintenance.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("maintenance: {e}")),
                Err(e) => Err(format!("maintenance task: {e}")),
            },
            None => Ok(()),
        };
        self.count_written(ctx);
        result
    }

    /// Ingests parts `parts` of every source. When `resuming` with `Resume::FromLedger`,
    /// parts the ledger already holds are skipped.
    async fn ingest(
        &mut self,
        workload: &Workload,
        ctx: &Ctx,
        parts: std::ops::Range<usize>,
        resuming: bool,
    ) -> Result<(), String> {
        let skip_acked = resuming && workload.resume == Resume::FromLedger;
        let mut tasks = Vec::new();
        for source in &workload.sources {
            let held = if skip_acked {
                self.pipeline.source_state(&source.name).await.rows
            } else {
                0
            };
            let todo: Vec<(u64, u64, bool)> = source
                .part_ranges()
                .into_iter()
                .enumerate()
                .filter(|(i, (first, rows, _))| parts.contains(i) && first + rows > held)
                .map(|(_, p)| p)
                .collect();
            let job = ingest_source(
                self.pipeline.clone(),
                source.name.clone(),
                todo,
                workload.clone(),
                ctx.clone(),
            );
            if workload.concurrent {
                tasks.push(tokio::spawn(job));
            } else {
                job.await?;
            }
        }
        let mut first_error = None;
        for task in tasks {
            let result = task
                .await
                .unwrap_or_else(|e| Err(format!("ingest task: {e}")));
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Checks that nothing of a half-done step is left on disk.
async fn drain_check<G: Fs>(fs: &G, root: &Path, ctx: &Ctx) {
    match verify::check_store(fs, &Layout::new(root), false).await {
        Ok(store) if store.problems.is_empty() && store.pending_repairs.is_empty() => {}
        Ok(store) => ctx.find(Breach::new(
            Invariant::DrainedOnOpen,
            vec![],
            format!(
                "right after open: {}",
                store
                    .problems
                    .iter()
                    .chain(&store.pending_repairs)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )),
        Err(e) => ctx.find(Breach::new(
            Invariant::DrainedOnOpen,
            vec![],
            format!("right after open, the store cannot be checked: {e}"),
        )),
    }
}

/// The second handle: reads the store over and over while the lifetime runs, as another
/// process would, and checks that each read is one whole version, never older than the last.
async fn read_along<F: Fs>(fs: F, root: PathBuf, stop: Arc<AtomicBool>, ctx: Ctx) {
    let layout = Layout::new(root);
    let (mut newest, mut reads) = (0u64, 0u64);
    while !stop.load(Ordering::Acquire) {
        match read::consistent_snapshot(&fs, &layout, 8).await {
            Ok(manifest) => {
                reads += 1;
                let mut wrong = Vec::new();
                if manifest.version < newest {
                    wrong.push(format!(
                        "read version {} after version {newest}",
                        manifest.version
                    ));
                }
                if manifest.rows() != manifest.source_rows() {
                    wrong.push(format!(
                        "version {} lists {} rows in files but its ledger {}",
                        manifest.version,
                        manifest.rows(),
                        manifest.source_rows()
                    ));
                }
                if let Err(b) = oracle::check_levels(&manifest.files) {
                    wrong.push(b.detail);
                }
                if !wrong.is_empty() {
                    ctx.find(Breach::new(
                        Invariant::ReaderConsistent,
                        vec![],
                        wrong.join("; "),
                    ));
                    return;
                }
                newest = manifest.version;
            }
            Err(e @ tally_pipeline::Error::MissingRows { .. }) => {
                ctx.find(Breach::new(
                    Invariant::ReaderConsistent,
                    vec![],
                    e.to_string(),
                ));
                return;
            }
            // An I/O error (the writer crashed, or an injected fault): read again.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_micros(700)).await;
    }
    ctx.trace.line(format!(
        "L{} reader: {reads} consistent reads, newest version {newest}",
        ctx.life
    ));
}

async fn ingest_source<F: Fs, C: Clock>(
    pipeline: Pipeline<F, C>,
    source: String,
    parts: Vec<(u64, u64, bool)>,
    workload: Workload,
    ctx: Ctx,
) -> Result<(), String> {
    let life = ctx.life;
    for (done, (first, rows, last)) in parts.into_iter().enumerate() {
        let end = first + rows;
        {
            let mut p = lock(&ctx.progress);
            let entry = p.entry(source.clone()).or_default();
            entry.attempted = entry.attempted.max(end);
        }
        ctx.trace
            .line(format!("L{life} try {source} rows {first}..{end}"));
        let result = pipeline
            .ingest_part(&source, first, workload.batch(&source, first, rows), last)
            .await;
        match result {
            Ok(ack) => {
                {
                    let mut p = lock(&ctx.progress);
                    let entry = p.entry(source.clone()).or_default();
                    entry.acked = entry.acked.max(end);
                }
                let seq = ack
                    .seq
                    .map_or("-".to_owned(), |s| format!("{}..{}", s.start, s.end));
                ctx.trace.line(format!(
                    "L{life} ack {source} rows {first}..{end}: {} written, {} already held, seq {seq}{}",
                    ack.rows_written,
                    ack.rows_already_acknowledged,
                    if ack.source_complete { ", complete" } else { "" }
                ));
            }
            Err(e) => {
                ctx.trace.line(format!(
                    "L{life} ingest {source} rows {first}..{end} failed: {e}"
                ));
                return Err(format!("ingest {source} rows {first}..{end}: {e}"));
            }
        }
        if let Some(plan) = workload.export
            && (done as u32 + 1) % plan.every_parts.max(1) == 0
        {
            if plan.flush_first {
                pipeline
                    .flush()
                    .await
                    .map_err(|e| format!("flush before export: {e}"))?;
            }
            export_now(&pipeline, &ctx).await?;
        }
    }
    Ok(())
}

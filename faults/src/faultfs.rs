//! `FaultFs`: applies a [`FaultPlan`] over any backend.
//!
//! Every call through the wrapper (and its files) gets an index: on a backend that keeps an op
//! log (`SimFs`), the index of the call's entry in that log, so that a plan, a fault, a crash
//! and the log's `#N` lines name a call by one number; on any other backend, the count of the
//! wrapper's calls before it. A call first runs what may wait or make calls of its own (deferred
//! syncs of the rename-before-data control, a delay); then it takes its index, the plan's
//! triggers are matched against it, and whatever fires is applied in a fixed order: a clock
//! jump, a crash before the call, an injected error (or a failed fsync), the call itself, a
//! crash after it, and a corrupted read. A call that the wrapper answers itself (an injected
//! error, a crash before it, a lying sync) is logged by the backend all the same, with the
//! answer it got. After a crash every call fails unlogged: the process is gone, and the caller
//! of the crash decides what of the disk survives (the crash model, or a real `abort` on a real
//! disk).
//!
//! Why the index is the log's under concurrency: tasks interleave only where one awaits
//! something that is not ready. Between taking its index ([`FaultFs::decide`]) and reaching
//! the disk, a call awaits nothing but the disk call itself, which `SimFs` completes at once; so
//! on one thread (madsim, or a current-thread runtime) no other call can take a log entry in
//! between, and the entry `decide` read as the next one is the call's. A debug assertion checks
//! it on every call.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_sim::{
    Clock, CreateMode, DirEntry, Fs, FsFile, Metadata, OpKind, OpenMode, RealFs, SimFs,
};

use crate::plan::{CallKind, Control, Effect, ErrorKind, FaultPlan, Moment, Trigger};

/// A backend a [`FaultFs`] can wrap: it knows how to fail a sync, and, if it keeps an op log,
/// how calls are numbered there.
pub trait Backend: Fs {
    /// Fails a sync of `file`, losing its unsynced data where the backend can model that.
    fn fail_sync(file: &Self::File) -> impl Future<Output = io::Error> + Send;

    /// The index the backend's op log gives its next call; `None` if it keeps no log.
    fn next_index(&self) -> Option<u64>;

    /// Logs a call the wrapper answered itself, without reaching the disk, with its answer.
    fn answered(
        &self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        outcome: Result<(), io::ErrorKind>,
    );
}

impl Backend for SimFs {
    async fn fail_sync(file: &Self::File) -> io::Error {
        file.fail_sync()
    }

    fn next_index(&self) -> Option<u64> {
        Some(self.op_count())
    }

    fn answered(
        &self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        outcome: Result<(), io::ErrorKind>,
    ) {
        self.record_answered(op, path, to, outcome);
    }
}

impl Backend for RealFs {
    /// The real disk cannot be told to drop dirty pages; the sync is not issued and an error is
    /// returned, which is all a caller of a failing fsync learns anyway.
    async fn fail_sync(_file: &Self::File) -> io::Error {
        io::Error::other("sync: input/output error (injected)")
    }

    fn next_index(&self) -> Option<u64> {
        None
    }

    fn answered(&self, _: OpKind, _: &Path, _: Option<&Path>, _: Result<(), io::ErrorKind>) {}
}

/// Something the wrapper did that a trace should show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// Index of the call it happened at: its `#N` in the backend's op log.
    pub call: u64,
    pub op: OpKind,
    pub path: String,
    pub what: String,
    /// The fault this event applied to the call, if it applied one (a crash or a control's
    /// doing is not a fault; a corrupted read counts when a bit was flipped, not when drawn).
    pub injected: Option<Effect>,
}

type EventSink = Arc<dyn Fn(&FaultEvent) + Send + Sync>;
type CrashHook = Arc<dyn Fn(u64) + Send + Sync>;

/// A file whose sync the rename-before-data control is holding back.
struct Deferred<T> {
    path: PathBuf,
    file: Arc<T>,
}

struct State<T> {
    plan: FaultPlan,
    patterns: Vec<Option<glob::Pattern>>,
    /// Calls through the wrapper so far; the next call's index on a backend without an op log.
    calls: u64,
    /// Per trigger (the crash first, then each fault): matching calls so far (for a `Call`
    /// trigger, 1 once it fired).
    matched: Vec<u64>,
    sticky: Vec<ErrorKind>,
    crashed: Option<u64>,
    rng: ChaCha8Rng,
    deferred: Vec<Deferred<T>>,
    events: Option<EventSink>,
    on_crash: Option<CrashHook>,
}

/// What the plan decided for one call.
#[derive(Default)]
struct Decision {
    index: u64,
    crash: Option<Moment>,
    error: Option<io::Error>,
    fail_sync: bool,
    /// A corrupting effect and the draw that places it.
    corrupt: Option<(Effect, u64)>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Seconds added to the wrapped clock by clock jumps so far.
    clock_offset: AtomicI64,
}

/// Wraps `F`, applying a fault plan. Clones share the plan's progress.
pub struct FaultFs<F: Fs> {
    inner: F,
    shared: Arc<Shared<F::File>>,
}

impl<F: Fs> Clone for FaultFs<F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<F: Fs> std::fmt::Debug for FaultFs<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFs")
            .field("inner", &self.inner)
            .field("plan", &self.lock().plan.to_string())
            .finish()
    }
}

/// A file of a [`FaultFs`].
pub struct FaultFile<F: Fs> {
    inner: Arc<F::File>,
    path: PathBuf,
    fs: FaultFs<F>,
}

impl<F: Fs> std::fmt::Debug for FaultFile<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn crash_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{}: simulated crash: the process is gone",
        path.display()
    ))
}

fn injected(kind: ErrorKind, call: OpKind, path: &Path) -> io::Error {
    let (io_kind, what) = match kind {
        ErrorKind::Eio => (io::ErrorKind::Other, "input/output error"),
        ErrorKind::Enospc => (io::ErrorKind::StorageFull, "no space left on device"),
    };
    io::Error::new(
        io_kind,
        format!("{call} {}: {what} (injected)", path.display()),
    )
}

/// Whether a trigger's `pattern` names `path`: `*` matches across `/`, and a leading dot
/// needs no literal dot.
pub fn matches(pattern: &glob::Pattern, path: &Path) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    pattern.matches_with(&path.to_string_lossy(), options)
}

impl<F: Fs> FaultFs<F> {
    /// Wraps `inner`. A trigger's path pattern that is not a valid glob is an error.
    pub fn new(inner: F, plan: FaultPlan) -> Result<Self, glob::PatternError> {
        let triggers = plan
            .crash
            .iter()
            .map(|c| &c.at)
            .chain(plan.faults.iter().map(|f| &f.at));
        let patterns = triggers
            .map(|t| match t {
                Trigger::Call { .. } => Ok(None),
                Trigger::Nth { path, .. } => glob::Pattern::new(path).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let matched = vec![0; patterns.len()];
        let rng = ChaCha8Rng::seed_from_u64(plan.seed);
        Ok(Self {
            inner,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    plan,
                    patterns,
                    calls: 0,
                    matched,
                    sticky: Vec::new(),
                    crashed: None,
                    rng,
                    deferred: Vec::new(),
                    events: None,
                    on_crash: None,
                }),
                clock_offset: AtomicI64::new(0),
            }),
        })
    }

    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// Calls `sink` for every fault, crash and control action, as it happens.
    pub fn on_event(&self, sink: impl Fn(&FaultEvent) + Send + Sync + 'static) {
        self.lock().events = Some(Arc::new(sink));
    }

    /// Calls `hook` with the call index when the planned crash fires, before any later call
    /// is refused. On a real disk the hook aborts the process.
    pub fn on_crash(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        self.lock().on_crash = Some(Arc::new(hook));
    }

    /// The index of the call at which the planned crash fired, if it has.
    pub fn crashed_at(&self) -> Option<u64> {
        self.lock().crashed
    }

    /// Calls made through the wrapper so far (the backend's log may hold more: calls made on
    /// it directly, and the helper calls of a control).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// A clock that shows the plan's clock jumps over `inner`.
    pub fn clock<C: Clock>(&self, inner: C) -> FaultClock<C> {
        FaultClock {
            inner,
            offset: Arc::new(OffsetOf(self.shared.clone())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<F::File>> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(
        state: &State<F::File>,
        index: u64,
        op: OpKind,
        path: &Path,
        what: String,
        injected: Option<Effect>,
    ) {
        if let Some(sink) = &state.events {
            sink(&FaultEvent {
                call: index,
                op,
                path: path.display().to_string(),
                what,
                injected,
            });
        }
    }

    fn controlled(&self, control: Control) -> bool {
        self.lock().plan.controls.contains(&control)
    }

    fn wrap(&self, inner: F::File, path: &Path) -> FaultFile<F> {
        FaultFile {
            inner: Arc::new(inner),
            path: path.to_path_buf(),
            fs: self.clone(),
        }
    }

    /// The triggers (the crash's is 0 when there is one, then the faults') that call `index`
    /// fires, counting it towards every `Nth` trigger it matches.
    fn fired(
        state: &mut State<F::File>,
        index: u64,
        kind: CallKind,
        path: &Path,
        to: Option<&Path>,
    ) -> Vec<usize> {
        let State {
            plan,
            patterns,
            matched,
            ..
        } = state;
        let triggers = plan
            .crash
            .iter()
            .map(|c| &c.at)
            .chain(plan.faults.iter().map(|f| &f.at));
        let mut fired = Vec::new();
        for (i, trigger) in triggers.enumerate() {
            let hit = match trigger {
                // Once, at the first call at or after `at`: an index the wrapper never sees
                // (the harness's own reads, a control's helper calls) does not lose the trigger.
                Trigger::Call { index: at } => {
                    let hit = index >= *at && matched[i] == 0;
                    matched[i] += u64::from(hit);
                    hit
                }
                Trigger::Nth { kind: k, n, .. } => {
                    let pattern = patterns[i].as_ref().expect("compiled for Nth");
                    let on_path = matches(pattern, path) || to.is_some_and(|t| matches(pattern, t));
                    if k.counts(kind) && on_path {
                        matched[i] += 1;
                        matched[i] == *n
                    } else {
                        false
                    }
                }
            };
            if hit {
                fired.push(i);
            }
        }
        fired
    }
}

impl<F: Backend> FaultFs<F> {
    /// What a call does before it takes its index: it is refused after a crash, runs the syncs
    /// the rename-before-data control holds back (returning the file this call overtakes, if
    /// any) and sleeps the plan's latency. Everything that may yield to other tasks, or log
    /// calls of its own, happens here and not after [`Self::decide`].
    async fn prepare(&self, op: OpKind, path: &Path) -> io::Result<Option<Arc<F::File>>> {
        let delay = {
            let mut state = self.lock();
            if state.crashed.is_some() {
                return Err(crash_error(path));
            }
            let state = &mut *state;
            state.plan.latency.and_then(|latency| {
                (state.rng.gen_range(0..100u8) < latency.percent).then(|| {
                    let micros = state.rng.gen_range(1..=latency.max_micros.max(1));
                    Duration::from_micros(micros)
                })
            })
        };
        let overtaken = self.settle_deferred(op, path).await?;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        Ok(overtaken)
    }

    /// Gives the next call its index — the backend's next log entry — and matches the plan
    /// against it. The caller must reach the disk without awaiting anything else first (see
    /// the module's note on concurrency).
    fn decide(&self, op: OpKind, path: &Path, to: Option<&Path>) -> io::Result<Decision> {
        let next = self.inner.next_index();
        let mut state = self.lock();
        if state.crashed.is_some() {
            return Err(crash_error(path));
        }
        let index = next.unwrap_or(state.calls);
        state.calls += 1;
        let mut decision = Decision {
            index,
            ..Decision::default()
        };
        let kind = CallKind::of(op);
        let fired = Self::fired(&mut state, index, kind, path, to);
        // Draws from the plan's generator happen in this order (corruptions of the fired
        // triggers; the latency was drawn before): the same plan then decides the same way
        // every run.
        for i in fired {
            self.apply(&mut state, &mut decision, i, op, path);
        }
        if decision.error.is_none()
            && let Some(&error) = state.sticky.iter().find(|e| e.applies_to(kind))
        {
            decision.error = Some(injected(error, op, path));
        }
        Ok(decision)
    }

    /// Adds what fired trigger `i` does to the call's decision.
    fn apply(
        &self,
        state: &mut State<F::File>,
        decision: &mut Decision,
        i: usize,
        op: OpKind,
        path: &Path,
    ) {
        let has_crash = state.plan.crash.is_some();
        if has_crash && i == 0 {
            let crash = state.plan.crash.clone().expect("checked");
            decision.crash = Some(crash.moment);
            return;
        }
        let effect = state.plan.faults[i - usize::from(has_crash)].effect.clone();
        // A corruption is reported once it changed a byte (see `read`), not when it fires.
        let corrupts = matches!(effect, Effect::CorruptRead | Effect::FlipDigit);
        let applied = (!corrupts).then(|| effect.clone());
        Self::emit(
            state,
            decision.index,
            op,
            path,
            format!("inject {effect}"),
            applied,
        );
        let kind = CallKind::of(op);
        match effect {
            Effect::Error { error, sticky } => {
                if sticky {
                    state.sticky.push(error);
                }
                decision.error = Some(injected(error, op, path));
            }
            Effect::FailSync if kind == CallKind::Sync => decision.fail_sync = true,
            Effect::FailSync => {
                decision.error = Some(injected(ErrorKind::Eio, op, path));
            }
            Effect::CorruptRead | Effect::FlipDigit => {
                if kind == CallKind::Read {
                    decision.corrupt = Some((effect, state.rng.r#gen()));
                }
            }
            Effect::ClockJump { seconds } => {
                self.shared
                    .clock_offset
                    .fetch_add(seconds, Ordering::SeqCst);
            }
        }
    }

    fn crash(&self, index: u64, op: OpKind, path: &Path, moment: Moment) -> io::Error {
        let hook = {
            let mut state = self.lock();
            state.crashed = Some(index);
            let when = match moment {
                Moment::Before => "before",
                Moment::After => "after",
            };
            Self::emit(
                &state,
                index,
                op,
                path,
                format!("crash {when} this call"),
                None,
            );
            state.on_crash.clone()
        };
        if let Some(hook) = hook {
            hook(index);
        }
        crash_error(path)
    }

    /// Runs the syncs the rename-before-data control holds back, except that of a file this
    /// call renames: that rename is made durable first, and the file's data is left unsynced.
    async fn settle_deferred(&self, op: OpKind, path: &Path) -> io::Result<Option<Arc<F::File>>> {
        let deferred = std::mem::take(&mut self.lock().deferred);
        let mut overtaken = None;
        for d in deferred {
            if CallKind::of(op).is_rename() && d.path == path {
                overtaken = Some(d.file);
            } else {
                d.file.sync().await?;
            }
        }
        Ok(overtaken)
    }

    /// The common path of every call.
    async fn gate<R>(
        &self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        call: impl Future<Output = io::Result<R>>,
    ) -> io::Result<R> {
        let overtaken = self.prepare(op, path).await?;
        let decision = self.decide(op, path, to)?;
        self.finish(decision, overtaken, op, path, to, call).await
    }

    /// Applies a decision to a call: crash before, error, the call, crash after. A call that
    /// does not reach the disk is logged there as answered, under its index.
    async fn finish<R>(
        &self,
        decision: Decision,
        overtaken: Option<Arc<F::File>>,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        call: impl Future<Output = io::Result<R>>,
    ) -> io::Result<R> {
        let index = decision.index;
        if overtaken.is_some() {
            let to = to.expect("only a rename overtakes a sync");
            let what = format!(
                "control rename-before-data: rename to {} durable ahead of its data",
                to.display()
            );
            Self::emit(&self.lock(), index, op, path, what, None);
        }
        let refused = match decision.crash {
            Some(Moment::Before) => Some(self.crash(index, op, path, Moment::Before)),
            _ => decision.error,
        };
        if let Some(error) = refused {
            self.inner.answered(op, path, to, Err(error.kind()));
            return Err(error);
        }
        let result = call.await;
        debug_assert!(
            self.inner.next_index().is_none_or(|next| next == index + 1),
            "call #{index} ({op} {}) is not the op log's entry #{index}: the log is at {:?}",
            path.display(),
            self.inner.next_index()
        );
        if result.is_ok()
            && overtaken.is_some()
            && let Some(to) = to
        {
            // The rename reaches the disk at once; the moved file's data stays unsynced.
            for dir in [path.parent(), to.parent()].into_iter().flatten() {
                self.inner.sync_dir(dir).await?;
            }
        }
        if decision.crash == Some(Moment::After) {
            return Err(self.crash(index, op, path, Moment::After));
        }
        result
    }

    /// A read through [`Self::gate`]; a planned corruption changes one bit of what it returns.
    async fn gate_read(
        &self,
        path: &Path,
        call: impl Future<Output = io::Result<Vec<u8>>>,
    ) -> io::Result<Vec<u8>> {
        let overtaken = self.prepare(OpKind::Read, path).await?;
        let mut decision = self.decide(OpKind::Read, path, None)?;
        let (index, corrupt) = (decision.index, decision.corrupt.take());
        let mut bytes = self
            .finish(decision, overtaken, OpKind::Read, path, None, call)
            .await?;
        if let Some((effect, draw)) = corrupt
            && let Some(what) = corrupt_bytes(&effect, draw, &mut bytes)
        {
            let state = self.lock();
            Self::emit(&state, index, OpKind::Read, path, what, Some(effect));
        }
        Ok(bytes)
    }

    /// A `sync_dir` under the lying-sync-dir control: answered without reaching the disk.
    async fn lying_sync_dir(&self, path: &Path) -> io::Result<()> {
        let overtaken = self.prepare(OpKind::SyncDir, path).await?;
        // The lie still notices a missing directory: only durability is faked. The check is a
        // call of its own on the disk, logged before the `sync_dir` it answers.
        let found = self.inner.metadata(path).await.map(drop);
        let decision = self.decide(OpKind::SyncDir, path, None)?;
        let outcome = found.as_ref().map(|_| ()).map_err(io::Error::kind);
        let call = async {
            self.inner.answered(OpKind::SyncDir, path, None, outcome);
            found
        };
        self.finish(decision, overtaken, OpKind::SyncDir, path, None, call)
            .await
    }
}

impl<F: Backend> Fs for FaultFs<F> {
    type File = FaultFile<F>;
    type Lock = F::Lock;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        let file = self
            .gate(OpKind::Create, path, None, self.inner.create(path, mode))
            .await?;
        Ok(self.wrap(file, path))
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        let file = self
            .gate(OpKind::Open, path, None, self.inner.open(path, mode))
            .await?;
        Ok(self.wrap(file, path))
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.gate_read(path, self.inner.read(path)).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.controlled(Control::LyingSyncDir) {
            return self.lying_sync_dir(path).await;
        }
        self.gate(OpKind::SyncDir, path, None, self.inner.sync_dir(path))
            .await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(OpKind::Rename, from, Some(to), self.inner.rename(from, to))
            .await
    }

    async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(
            OpKind::RenameNoReplace,
            from,
            Some(to),
            self.inner.rename_noreplace(from, to),
        )
        .await
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(
            OpKind::HardLink,
            from,
            Some(to),
            self.inner.hard_link(from, to),
        )
        .await
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        self.gate(OpKind::Unlink, path, None, self.inner.unlink(path))
            .await
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.gate(OpKind::CreateDir, path, None, self.inner.create_dir(path))
            .await
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.gate(
            OpKind::CreateDirAll,
            path,
            None,
            self.inner.create_dir_all(path),
        )
        .await
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.gate(OpKind::RemoveDir, path, None, self.inner.remove_dir(path))
            .await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.gate(OpKind::ListDir, path, None, self.inner.list_dir(path))
            .await
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.gate(OpKind::Metadata, path, None, self.inner.metadata(path))
            .await
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        self.gate(OpKind::Exists, path, None, self.inner.exists(path))
            .await
    }

    /// A call like any other: the backend logs it, so it takes an index, and a trigger on
    /// `any` call (or on its index) can fail it or crash at it.
    async fn try_lock(&self, path: &Path) -> io::Result<Self::Lock> {
        self.gate(OpKind::Lock, path, None, self.inner.try_lock(path))
            .await
    }
}

impl<F: Backend> FsFile for FaultFile<F> {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.fs
            .gate_read(&self.path, self.inner.read_at(offset, len))
            .await
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        self.fs.gate_read(&self.path, self.inner.read_all()).await
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.fs
            .gate(
                OpKind::Write,
                &self.path,
                None,
                self.inner.write_at(offset, buf),
            )
            .await
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        self.fs
            .gate(OpKind::Append, &self.path, None, self.inner.append(buf))
            .await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs
            .gate(OpKind::SetLen, &self.path, None, self.inner.set_len(len))
            .await
    }

    /// A sync, unless a failed fsync or a control answers it: either way one logged call.
    async fn sync(&self) -> io::Result<()> {
        let (fs, path) = (&self.fs, self.path.as_path());
        let overtaken = fs.prepare(OpKind::Sync, path).await?;
        let decision = fs.decide(OpKind::Sync, path, None)?;
        let fail = decision.fail_sync;
        let call = async {
            if fail {
                return Err(F::fail_sync(&self.inner).await);
            }
            let (lying, deferring) = (
                fs.controlled(Control::LyingSync),
                fs.controlled(Control::RenameBeforeData),
            );
            if !lying && !deferring {
                return self.inner.sync().await;
            }
            fs.inner.answered(OpKind::Sync, path, None, Ok(()));
            if deferring && !lying {
                // Held back until the next call, which may overtake it with a rename.
                fs.lock().deferred.push(Deferred {
                    path: self.path.clone(),
                    file: self.inner.clone(),
                });
            }
            Ok(())
        };
        fs.finish(decision, overtaken, OpKind::Sync, path, None, call)
            .await
    }

    async fn len(&self) -> io::Result<u64> {
        self.fs
            .gate(OpKind::Len, &self.path, None, self.inner.len())
            .await
    }
}

/// Reads the clock offset of a fault wrapper without knowing its file type.
trait Offset: Send + Sync {
    fn seconds(&self) -> i64;
}

struct OffsetOf<T>(Arc<Shared<T>>);

impl<T: Send + Sync> Offset for OffsetOf<T> {
    fn seconds(&self) -> i64 {
        self.0.clock_offset.load(Ordering::SeqCst)
    }
}

/// A clock that shows the clock jumps of a [`FaultFs`]'s plan.
#[derive(Clone)]
pub struct FaultClock<C> {
    inner: C,
    offset: Arc<dyn Offset>,
}

impl<C: std::fmt::Debug> std::fmt::Debug for FaultClock<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultClock")
            .field("inner", &self.inner)
            .field("offset_seconds", &self.offset.seconds())
            .finish()
    }
}

impl<C: Clock> Clock for FaultClock<C> {
    fn now(&self) -> SystemTime {
        let now = self.inner.now();
        let seconds = self.offset.seconds();
        let jump = Duration::from_secs(seconds.unsigned_abs());
        if seconds >= 0 {
            now + jump
        } else {
            now.checked_sub(jump).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    async fn sleep(&self, duration: Duration) {
        self.inner.sleep(duration).await;
    }
}

/// Applies corrupting `effect` to `bytes` at the place `draw` picks; says what it changed, or
/// `None` if there was nothing to change (an empty read, or no digit for `FlipDigit`).
fn corrupt_bytes(effect: &Effect, draw: u64, bytes: &mut [u8]) -> Option<String> {
    match effect {
        Effect::CorruptRead if !bytes.is_empty() => {
            let at = (draw % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << ((draw >> 60) & 7);
            Some(format!(
                "flipped a bit of byte {at} of {} read",
                bytes.len()
            ))
        }
        Effect::FlipDigit => {
            let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count() as u64;
            let nth = draw.checked_rem(digits)? as usize;
            let at = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_digit())
                .nth(nth)
                .map(|(at, _)| at)?;
            let was = bytes[at];
            bytes[at] ^= 1;
            debug_assert!(bytes[at].is_ascii_digit(), "a digit stays a digit");
            Some(format!(
                "changed digit {} to {} at byte {at} of {} read",
                was as char,
                bytes[at] as char,
                bytes.len()
            ))
        }
        _ => None,
    }
}

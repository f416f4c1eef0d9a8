//! `FaultFs`: applies a [`FaultPlan`] over any backend.
//!
//! Every call through the wrapper (and its files) gets an index, in the order calls are made.
//! Before a call runs, the plan's triggers are matched against it; whatever fires is applied
//! in a fixed order: deferred syncs of the rename-before-data control, a clock jump, a delay,
//! a crash before the call, an injected error (or a failed fsync), the call itself, a crash
//! after it, and a corrupted read. After a crash every call fails: the process is gone, and
//! the caller of the crash decides what of the disk survives (the crash model, or a real
//! `abort` on a real disk).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_sim::{Clock, CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode, RealFs, SimFs};

use crate::plan::{CallKind, Control, Effect, ErrorKind, FaultPlan, Moment, Trigger};

/// A backend a [`FaultFs`] can wrap: it knows how to fail a sync.
pub trait Backend: Fs {
    /// Fails a sync of `file`, losing its unsynced data where the backend can model that.
    fn fail_sync(file: &Self::File) -> impl Future<Output = io::Error> + Send;
}

impl Backend for SimFs {
    async fn fail_sync(file: &Self::File) -> io::Error {
        file.fail_sync()
    }
}

impl Backend for RealFs {
    /// The real disk cannot be told to drop dirty pages; the sync is not issued and an error is
    /// returned, which is all a caller of a failing fsync learns anyway.
    async fn fail_sync(_file: &Self::File) -> io::Error {
        io::Error::other("sync: input/output error (injected)")
    }
}

/// Something the wrapper did that a trace should show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// Index of the call it happened at.
    pub call: u64,
    pub kind: CallKind,
    pub path: String,
    pub what: String,
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
    /// Calls so far; the next call's index.
    calls: u64,
    /// Per trigger (the crash first, then each fault): matching calls so far.
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
    corrupt: Option<u64>,
    delay: Option<Duration>,
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

fn injected(kind: ErrorKind, call: CallKind, path: &Path) -> io::Error {
    let (io_kind, what) = match kind {
        ErrorKind::Eio => (io::ErrorKind::Other, "input/output error"),
        ErrorKind::Enospc => (io::ErrorKind::StorageFull, "no space left on device"),
    };
    io::Error::new(
        io_kind,
        format!("{call} {}: {what} (injected)", path.display()),
    )
}

fn matches(pattern: &glob::Pattern, path: &Path) -> bool {
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

    /// Calls made so far.
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

    fn emit(state: &State<F::File>, index: u64, kind: CallKind, path: &Path, what: String) {
        if let Some(sink) = &state.events {
            sink(&FaultEvent {
                call: index,
                kind,
                path: path.display().to_string(),
                what,
            });
        }
    }

    /// Matches the plan against the next call.
    fn decide(&self, kind: CallKind, path: &Path, to: Option<&Path>) -> io::Result<Decision> {
        let mut state = self.lock();
        if state.crashed.is_some() {
            return Err(crash_error(path));
        }
        let index = state.calls;
        state.calls += 1;
        let mut decision = Decision {
            index,
            ..Decision::default()
        };
        let fired = Self::fired(&mut state, index, kind, path, to);
        // Draws from the plan's generator happen in this order (corruptions of the fired
        // triggers, then the latency): the same plan then decides the same way every run.
        for i in fired {
            self.apply(&mut state, &mut decision, i, kind, path);
        }
        if decision.error.is_none()
            && let Some(&error) = state.sticky.iter().find(|e| e.applies_to(kind))
        {
            decision.error = Some(injected(error, kind, path));
        }
        if let Some(latency) = state.plan.latency
            && state.rng.gen_range(0..100u8) < latency.percent
        {
            let micros = state.rng.gen_range(1..=latency.max_micros.max(1));
            decision.delay = Some(Duration::from_micros(micros));
        }
        Ok(decision)
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
                Trigger::Call { index: at } => *at == index,
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

    /// Adds what fired trigger `i` does to the call's decision.
    fn apply(
        &self,
        state: &mut State<F::File>,
        decision: &mut Decision,
        i: usize,
        kind: CallKind,
        path: &Path,
    ) {
        let has_crash = state.plan.crash.is_some();
        if has_crash && i == 0 {
            let crash = state.plan.crash.clone().expect("checked");
            decision.crash = Some(crash.moment);
            return;
        }
        let effect = state.plan.faults[i - usize::from(has_crash)].effect.clone();
        Self::emit(
            state,
            decision.index,
            kind,
            path,
            format!("inject {effect}"),
        );
        match effect {
            Effect::Error { error, sticky } => {
                if sticky {
                    state.sticky.push(error);
                }
                decision.error = Some(injected(error, kind, path));
            }
            Effect::FailSync if kind == CallKind::Sync => decision.fail_sync = true,
            Effect::FailSync => {
                decision.error = Some(injected(ErrorKind::Eio, kind, path));
            }
            Effect::CorruptRead => {
                if kind == CallKind::Read {
                    decision.corrupt = Some(state.rng.r#gen());
                }
            }
            Effect::ClockJump { seconds } => {
                self.shared
                    .clock_offset
                    .fetch_add(seconds, Ordering::SeqCst);
            }
        }
    }

    fn crash(&self, index: u64, kind: CallKind, path: &Path, moment: Moment) -> io::Error {
        let hook = {
            let mut state = self.lock();
            state.crashed = Some(index);
            let when = match moment {
                Moment::Before => "before",
                Moment::After => "after",
            };
            Self::emit(&state, index, kind, path, format!("crash {when} this call"));
            state.on_crash.clone()
        };
        if let Some(hook) = hook {
            hook(index);
        }
        crash_error(path)
    }

    /// Runs the syncs the rename-before-data control holds back, except that of a file this
    /// call renames: that rename is made durable first, and the file's data is left unsynced.
    async fn settle_deferred(
        &self,
        index: u64,
        kind: CallKind,
        path: &Path,
        to: Option<&Path>,
    ) -> io::Result<Option<Arc<F::File>>> {
        let deferred = std::mem::take(&mut self.lock().deferred);
        let mut overtaken = None;
        for d in deferred {
            if kind.is_rename() && d.path == path {
                overtaken = Some(d.file);
            } else {
                d.file.sync().await?;
            }
        }
        if overtaken.is_some() {
            let to = to.expect("a rename has a target");
            let state = self.lock();
            Self::emit(
                &state,
                index,
                kind,
                path,
                format!(
                    "control rename-before-data: rename to {} durable ahead of its data",
                    to.display()
                ),
            );
        }
        Ok(overtaken)
    }

    /// The common path of every call.
    async fn gate<R>(
        &self,
        kind: CallKind,
        path: &Path,
        to: Option<&Path>,
        call: impl Future<Output = io::Result<R>>,
    ) -> io::Result<R> {
        let decision = self.decide(kind, path, to)?;
        self.gate_decided(decision, kind, path, to, call).await
    }

    /// Applies a decision to a call: held-back syncs, delay, crash before, error, the call,
    /// crash after.
    async fn gate_decided<R>(
        &self,
        decision: Decision,
        kind: CallKind,
        path: &Path,
        to: Option<&Path>,
        call: impl Future<Output = io::Result<R>>,
    ) -> io::Result<R> {
        let overtaken = self.settle_deferred(decision.index, kind, path, to).await?;
        if let Some(delay) = decision.delay {
            tokio::time::sleep(delay).await;
        }
        if decision.crash == Some(Moment::Before) {
            return Err(self.crash(decision.index, kind, path, Moment::Before));
        }
        if let Some(error) = decision.error {
            return Err(error);
        }
        let result = call.await;
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
            return Err(self.crash(decision.index, kind, path, Moment::After));
        }
        result
    }

    /// A read through [`Self::gate`]; a planned corruption flips one bit of what it returns.
    async fn gate_read(
        &self,
        path: &Path,
        call: impl Future<Output = io::Result<Vec<u8>>>,
    ) -> io::Result<Vec<u8>> {
        let decision = self.decide(CallKind::Read, path, None)?;
        let (index, corrupt) = (decision.index, decision.corrupt);
        let mut bytes = self
            .gate_decided(decision, CallKind::Read, path, None, call)
            .await?;
        if let Some(draw) = corrupt
            && !bytes.is_empty()
        {
            let at = (draw % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << ((draw >> 60) & 7);
            let state = self.lock();
            Self::emit(
                &state,
                index,
                CallKind::Read,
                path,
                format!("flipped a bit of byte {at} of {} read", bytes.len()),
            );
        }
        Ok(bytes)
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
}

impl<F: Backend> Fs for FaultFs<F> {
    type File = FaultFile<F>;
    type Lock = F::Lock;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        let file = self
            .gate(CallKind::Create, path, None, self.inner.create(path, mode))
            .await?;
        Ok(self.wrap(file, path))
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        let file = self
            .gate(CallKind::Any, path, None, self.inner.open(path, mode))
            .await?;
        Ok(self.wrap(file, path))
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.gate_read(path, self.inner.read(path)).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.controlled(Control::LyingSyncDir) {
            // The lie still notices a missing directory: only durability is faked.
            let check = async { self.inner.metadata(path).await.map(drop) };
            return self.gate(CallKind::SyncDir, path, None, check).await;
        }
        self.gate(CallKind::SyncDir, path, None, self.inner.sync_dir(path))
            .await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(
            CallKind::Rename,
            from,
            Some(to),
            self.inner.rename(from, to),
        )
        .await
    }

    async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(
            CallKind::RenameNoReplace,
            from,
            Some(to),
            self.inner.rename_noreplace(from, to),
        )
        .await
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        self.gate(CallKind::Unlink, path, None, self.inner.unlink(path))
            .await
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.gate(CallKind::Create, path, None, self.inner.create_dir(path))
            .await
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.gate(
            CallKind::Create,
            path,
            None,
            self.inner.create_dir_all(path),
        )
        .await
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.gate(CallKind::Unlink, path, None, self.inner.remove_dir(path))
            .await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.gate(CallKind::Any, path, None, self.inner.list_dir(path))
            .await
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.gate(CallKind::Any, path, None, self.inner.metadata(path))
            .await
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        self.gate(CallKind::Any, path, None, self.inner.exists(path))
            .await
    }

    /// Forwarded without a fault: a lock changes nothing on the disk, and a plan has no fault
    /// for it. It is not counted as a call either, so that a plan's call indices keep naming
    /// the calls they named before locks existed.
    async fn try_lock(&self, path: &Path) -> io::Result<Self::Lock> {
        if self.lock().crashed.is_some() {
            return Err(crash_error(path));
        }
        self.inner.try_lock(path).await
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
                CallKind::Write,
                &self.path,
                None,
                self.inner.write_at(offset, buf),
            )
            .await
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        self.fs
            .gate(CallKind::Write, &self.path, None, self.inner.append(buf))
            .await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs
            .gate(CallKind::Write, &self.path, None, self.inner.set_len(len))
            .await
    }

    async fn sync(&self) -> io::Result<()> {
        let (fs, path) = (&self.fs, self.path.as_path());
        let decision = fs.decide(CallKind::Sync, path, None)?;
        let done = async { Ok(()) };
        if decision.fail_sync {
            fs.gate_decided(decision, CallKind::Sync, path, None, done)
                .await?;
            return Err(F::fail_sync(&self.inner).await);
        }
        if fs.controlled(Control::LyingSync) {
            return fs
                .gate_decided(decision, CallKind::Sync, path, None, done)
                .await;
        }
        if fs.controlled(Control::RenameBeforeData) {
            fs.gate_decided(decision, CallKind::Sync, path, None, done)
                .await?;
            // Held back until the next call, which may overtake it with a rename.
            fs.lock().deferred.push(Deferred {
                path: self.path.clone(),
                file: self.inner.clone(),
            });
            return Ok(());
        }
        fs.gate_decided(decision, CallKind::Sync, path, None, self.inner.sync())
            .await
    }

    async fn len(&self) -> io::Result<u64> {
        self.fs
            .gate(CallKind::Any, &self.path, None, self.inner.len())
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

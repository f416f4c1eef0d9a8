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
//!
//! - `spec`: what decides a run ([`RunSpec`]) and how its images are taken ([`Images`]);
//! - `runner`: the run from spec to outcome ([`run`], [`run_with`]);
//! - `drive` and `lifetime`: the workload driver, shared with the pinned recovery outcomes
//!   and the real-disk crash tests;
//! - `live`: what is checked while a lifetime runs (drained on open, the second handle);
//! - `capture`: the crash points, taken inside the disk's observer;
//! - `check`: what is checked at each crash point, at the restart and at the end;
//! - `reuse`: a crash image the same as the one checked before it reuses its verdict;
//! - `verdict`: violations and the run's outcome;
//! - `guarded`: a run whose panic (an assertion firing) is its verdict, not the process's end.

mod capture;
mod check;
mod drive;
mod guarded;
mod lifetime;
mod live;
mod reuse;
mod runner;
mod spec;
mod verdict;

pub(crate) use capture::point_seed;
pub(crate) use drive::{Ctx, drive};
pub use guarded::{panic_message, run_guarded};
pub use runner::{run, run_with};
pub use spec::{Depth, Images, RunSpec};
pub use verdict::{KEPT_VIOLATIONS, Phase, RunOutcome, Violation};

/// Locks `m`, whatever a panicking holder left: the harness's shared state stays meaningful
/// (each update is one assignment).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

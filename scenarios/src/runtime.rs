//! Runs one seeded simulation to completion on the runtime of the current build.
//!
//! Under `--cfg madsim` each run gets a fresh madsim runtime seeded with the run's seed, so the
//! seed decides task interleavings and virtual time as well as the workload. In a normal build
//! a current-thread tokio runtime runs it; the result is the same for workloads whose only I/O
//! is the simulated disk, which never waits.

use std::future::Future;

/// Each run gets a thread of its own. std seeds a thread's `HashMap` keys once, on the
/// thread's first `RandomState`; madsim can make that draw come from the run's seed only if it
/// is the first on the thread. A fresh thread per run keeps it so, whatever ran before in the
/// process (otherwise madsim warns that std `HashMap` order is not deterministic).
#[cfg(madsim)]
#[allow(
    clippy::disallowed_methods,
    reason = "one thread per simulated run, joined at once"
)]
pub fn run_seeded<F: Future + Send>(seed: u64, future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(not(madsim))]
pub fn run_seeded<F: Future + Send>(_seed: u64, future: F) -> F::Output
where
    F::Output: Send,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

/// Whether this binary was built for simulation (`cargo sim ...`).
pub const SIMULATION_BUILD: bool = cfg!(madsim);

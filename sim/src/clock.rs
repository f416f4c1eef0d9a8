//! The clock half of the world interface.

use std::future::Future;
use std::time::{Duration, SystemTime};

/// Wall time and sleeping. Under `--cfg madsim` both are virtual: the simulation's seed fixes
/// the epoch, and sleeping advances virtual time without waiting.
pub trait Clock: Clone + Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// The runtime's clock: the real one on tokio, the virtual one under madsim (which intercepts
/// the process's time calls while a simulation runs).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place the world reads time"
    )]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The clock of a simulated run. Under madsim it is the runtime's virtual clock (the seed fixes
/// its epoch). In a normal build it reads a fixed epoch plus the time slept through it, so that
/// what a run writes to the simulated disk (a commit's timestamps) is the same in every process
/// and a seed's run reproduces byte for byte there too. Clones share one reading.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    slept_nanos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// 2026-01-01T00:00:00Z: where a normal build's [`SimClock`] starts.
#[cfg(not(madsim))]
const SIM_EPOCH_SECS: u64 = 1_767_225_600;

impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        #[cfg(madsim)]
        return SystemClock.now();
        #[cfg(not(madsim))]
        {
            let slept = self.slept_nanos.load(std::sync::atomic::Ordering::Relaxed);
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(SIM_EPOCH_SECS)
                + Duration::from_nanos(slept)
        }
    }

    async fn sleep(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.slept_nanos
            .fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
        SystemClock.sleep(duration).await;
    }
}

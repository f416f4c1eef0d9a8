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

//! The world's clock: real under tokio, virtual under madsim.

use std::time::Duration;

use tally_sim::{Clock, SystemClock};

#[tokio::test]
async fn sleep_advances_now_by_at_least_its_duration() {
    let clock = SystemClock;
    let before = clock.now();
    clock.sleep(Duration::from_millis(20)).await;
    let slept = clock
        .now()
        .duration_since(before)
        .expect("time does not run backwards");
    assert!(slept >= Duration::from_millis(20), "{slept:?}");
}

/// Ten simulated days pass at once: a test that finishes at all shows the sleep was virtual.
#[cfg(madsim)]
#[tokio::test]
async fn simulated_sleep_is_virtual() {
    let clock = SystemClock;
    let before = clock.now();
    clock.sleep(Duration::from_secs(10 * 24 * 3600)).await;
    let slept = clock.now().duration_since(before).unwrap();
    assert!(slept >= Duration::from_secs(10 * 24 * 3600), "{slept:?}");
}

/// The seed fixes the simulated epoch: the same seed reads the same time, another seed another.
#[cfg(madsim)]
#[test]
fn simulated_epoch_comes_from_the_seed() {
    let now = |seed| {
        madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())
            .block_on(async { SystemClock.now() })
    };
    assert_eq!(now(7), now(7));
    assert_ne!(now(7), now(8));
}

//! A crash image the same as the one checked just before it is not recovered again.
//!
//! Why this is sound: a check is a function of the image, the expectation and the clock alone.
//! Recovery and the oracle run on a copy of the image; nothing in them is spawned or raced, so
//! the runtime's random choices cannot steer them; the row cache only memoizes decoding; and
//! the virtual clock stands still while one lifetime's images are checked (nothing in a check
//! sleeps), so the last check is forgotten as each lifetime's checks begin. So an image no process can tell from the previous one
//! ([`SimFs::same_settled_state`]), held to the same expectation, gets the verdict the
//! previous one got, and the marks its check fired, without running it. Consecutive images are
//! often the same disk: under `kill` a sync changes no byte a process can see, and under the
//! strict models an unsynced write leaves the image its call began with. Every
//! [`AUDIT_EVERY`]th reuse is checked afresh as well, and a difference stops the sweep.

use tally_sim::SimFs;

use crate::oracle::{Breach, Expectation, Seen};

/// One reuse in this many is audited by a fresh check.
pub(super) const AUDIT_EVERY: u64 = 32;

/// What the check of one image found.
#[derive(Clone)]
pub(super) struct Found {
    pub verdict: Result<Seen, Breach>,
    /// The marks the check fired (recovery's repairs): counted again for every image the
    /// verdict is reused for, as if it had been checked.
    pub marks: Vec<&'static str>,
}

/// The image a run checked last, what it was held to, and what its check found.
struct LastCheck {
    image: SimFs,
    expect: Expectation,
    /// The call whose image it was, for the trace.
    op_index: u64,
    found: Found,
}

/// The verdicts a run can reuse.
#[derive(Default)]
pub(super) struct Reuse {
    last: Option<LastCheck>,
    /// Verdicts reused so far in the run.
    reused: u64,
}

impl Reuse {
    /// Forgets the last check: called as each lifetime's checks begin. Virtual time stands
    /// still while one lifetime's images are checked (nothing in a check sleeps), but moves
    /// between lifetimes, and recovery reads the clock (expired tombstones are vacuumed).
    pub fn start_lifetime(&mut self) {
        self.last = None;
    }

    /// What checking `image` against `expect` would find, and the call of the image that
    /// found it, if it is the same disk held to the same expectation as the last one checked.
    pub fn answer(&mut self, image: &SimFs, expect: &Expectation) -> Option<(Found, u64)> {
        let last = self.last.as_ref()?;
        if last.expect != *expect || !last.image.same_settled_state(image) {
            return None;
        }
        self.reused += 1;
        Some((last.found.clone(), last.op_index))
    }

    /// Whether the reuse just answered is one to audit.
    pub fn audit_due(&self) -> bool {
        self.reused % AUDIT_EVERY == 1
    }

    /// Keeps what the check of `image` (as it was before recovery ran on it) found.
    pub fn remember(&mut self, image: SimFs, expect: Expectation, op_index: u64, found: Found) {
        self.last = Some(LastCheck {
            image,
            expect,
            op_index,
            found,
        });
    }
}

//! A crash image the same as the one checked just before it is not recovered again.
//!
//! Why this is sound: a check is a function of the image and the expectation alone. Recovery
//! and the oracle run on a copy of the image with a fresh clock; nothing in them is spawned or
//! raced, so the runtime's random choices cannot steer them; the row cache only memoizes
//! decoding. So an image no process can tell from the previous one
//! ([`SimFs::same_settled_state`]), held to the same acknowledged progress, gets the verdict the
//! previous one got, and the marks its check fired, without running it. Consecutive images are
//! often the same disk: under `kill` a sync changes no byte a process can see, and under the
//! strict models an unsynced write leaves the image its call began with. Every
//! [`AUDIT_EVERY`]th reuse is checked afresh as well, and a difference stops the sweep.

use std::collections::BTreeMap;

use tally_sim::SimFs;

use crate::oracle::{Breach, Seen, SourceProgress};

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
    progress: BTreeMap<String, SourceProgress>,
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
    /// What checking `image` held to `progress` would find, and the call of the image that
    /// found it, if it is the same disk held to the same progress as the last one checked.
    pub fn answer(
        &mut self,
        image: &SimFs,
        progress: &BTreeMap<String, SourceProgress>,
    ) -> Option<(Found, u64)> {
        let last = self.last.as_ref()?;
        if last.progress != *progress || !last.image.same_settled_state(image) {
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
    pub fn remember(
        &mut self,
        image: SimFs,
        progress: BTreeMap<String, SourceProgress>,
        op_index: u64,
        found: Found,
    ) {
        self.last = Some(LastCheck {
            image,
            progress,
            op_index,
            found,
        });
    }
}

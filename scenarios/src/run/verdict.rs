//! What a run found: its violations, where each was found, and the run's outcome.

use serde::Serialize;

use crate::oracle::Breach;
use crate::trace::Trace;

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

impl Violation {
    /// A violation found anywhere but at a crash point: it names no call.
    pub(crate) fn at(phase: Phase, life: u32, breach: Breach) -> Self {
        debug_assert!(phase != Phase::CrashPoint, "a crash point names its call");
        Self {
            phase,
            life,
            op_index: None,
            op: None,
            breach,
        }
    }
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
    /// The coverage probes the run reached, with their hits (`coverage`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub probes: crate::coverage::Hits,
    #[serde(skip)]
    pub trace: Vec<String>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }
}

pub const KEPT_VIOLATIONS: usize = 20;

/// The violations of a run as it goes: every one traced and counted, the first
/// [`KEPT_VIOLATIONS`] kept.
#[derive(Default)]
pub(super) struct Violations {
    pub kept: Vec<Violation>,
    pub count: u64,
}

impl Violations {
    pub fn record(&mut self, trace: &Trace, violation: Violation) {
        trace.line(format!("VIOLATION {violation}"));
        self.count += 1;
        if self.kept.len() < KEPT_VIOLATIONS {
            self.kept.push(violation);
        }
        // The kept ones are the first ones: none is dropped while there is room.
        debug_assert_eq!(
            self.kept.len() as u64,
            self.count.min(KEPT_VIOLATIONS as u64)
        );
    }
}

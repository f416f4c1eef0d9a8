//! Fault plans: what goes wrong in a run, and when, as data. A plan is printed, saved as JSON,
//! edited by hand or by the shrinker, and replayed; [`crate::FaultFs`] applies it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tally_sim::{CrashModel, OpKind};

/// Everything injected into one process lifetime of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The process crash that ends the lifetime, if any, and what of the disk survives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<Crash>,
    /// Errors, failed syncs, corrupted reads and clock jumps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Disk misbehaviour a correct pipeline cannot survive: under a control, the harness must
    /// report violations (negative controls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<Control>,
    /// Seeded delays before calls, so that concurrent tasks interleave differently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Seeds the choices a plan leaves open (which byte a corrupted read flips, which calls
    /// are delayed and by how much).
    #[serde(default)]
    pub seed: u64,
}

/// The process dies at `at`; the disk keeps what `model` lets survive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    pub at: Trigger,
    /// Whether the triggering call reaches the disk before the process dies.
    #[serde(default)]
    pub moment: Moment,
    #[serde(with = "model_name")]
    pub model: CrashModel,
}

/// Before or after the triggering call takes effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Moment {
    Before,
    #[default]
    After,
}

/// Which call a fault or crash hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "trigger")]
pub enum Trigger {
    /// The call with this index (0-based) in the disk's op log (`#N` in a trace), or, when
    /// that entry is not a call through the wrapper (the harness's own reads, a control's
    /// helper calls), the first call through the wrapper after it. On a backend without an
    /// op log, the index counts the wrapper's calls.
    Call { index: u64 },
    /// The `n`-th call (1-based) of `kind` on a path matching `path` (a glob: `*` matches any
    /// run of characters, `/` included).
    Nth {
        kind: CallKind,
        path: String,
        n: u64,
    },
}

/// Kinds of calls a trigger can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallKind {
    Sync,
    SyncDir,
    /// `rename`, and also `rename_noreplace`: a trigger on renames keeps hitting a rename
    /// that became a no-replace one.
    Rename,
    /// `rename_noreplace` only.
    #[serde(rename = "rename-noreplace")]
    RenameNoReplace,
    Unlink,
    /// `write_at`, `append` and `set_len`.
    Write,
    /// `create`, `create_dir`, `create_dir_all` and `hard_link`: calls that make a new name.
    Create,
    /// `read`, `read_at` and `read_all`.
    Read,
    /// Any call.
    Any,
}

impl CallKind {
    pub const ALL: [CallKind; 9] = [
        CallKind::Sync,
        CallKind::SyncDir,
        CallKind::Rename,
        CallKind::RenameNoReplace,
        CallKind::Unlink,
        CallKind::Write,
        CallKind::Create,
        CallKind::Read,
        CallKind::Any,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CallKind::Sync => "sync",
            CallKind::SyncDir => "sync-dir",
            CallKind::Rename => "rename",
            CallKind::RenameNoReplace => "rename-noreplace",
            CallKind::Unlink => "unlink",
            CallKind::Write => "write",
            CallKind::Create => "create",
            CallKind::Read => "read",
            CallKind::Any => "any",
        }
    }

    /// Whether a call of `call` is counted by a trigger on `self`.
    pub fn counts(self, call: CallKind) -> bool {
        self == CallKind::Any
            || self == call
            || (self == CallKind::Rename && call == CallKind::RenameNoReplace)
    }

    /// Whether the call moves a name (`rename` or `rename_noreplace`).
    pub fn is_rename(self) -> bool {
        matches!(self, CallKind::Rename | CallKind::RenameNoReplace)
    }

    /// The kind a trigger sees a call of `op` as. `Any` is the kind of calls no trigger names
    /// on its own (`open`, `list_dir`, `metadata`, `exists`, `len`, `lock`).
    pub fn of(op: OpKind) -> CallKind {
        match op {
            OpKind::Sync => CallKind::Sync,
            OpKind::SyncDir => CallKind::SyncDir,
            OpKind::Rename => CallKind::Rename,
            OpKind::RenameNoReplace => CallKind::RenameNoReplace,
            OpKind::Unlink | OpKind::RemoveDir => CallKind::Unlink,
            OpKind::Write | OpKind::Append | OpKind::SetLen => CallKind::Write,
            OpKind::Create | OpKind::CreateDir | OpKind::CreateDirAll | OpKind::HardLink => {
                CallKind::Create
            }
            OpKind::Read => CallKind::Read,
            OpKind::Open
            | OpKind::ListDir
            | OpKind::Metadata
            | OpKind::Exists
            | OpKind::Len
            | OpKind::Lock => CallKind::Any,
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub at: Trigger,
    pub effect: Effect,
}

/// What a fault does to the call it hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "effect")]
pub enum Effect {
    /// The call fails with `error` without reaching the disk. A sticky error also fails every
    /// later call it applies to, until the process restarts.
    Error { error: ErrorKind, sticky: bool },
    /// A `sync` fails and the file's unsynced data is lost (fsyncgate): it never becomes
    /// durable, whatever later syncs report. On any other call: an I/O error.
    FailSync,
    /// A read returns its bytes with one bit flipped.
    CorruptRead,
    /// A read returns its bytes with one ASCII digit changed into another (its lowest bit
    /// flipped, so `0`↔`1`, ..., `8`↔`9`): a JSON or text body stays well-formed and only a
    /// number or a name in it changes, which a parser alone cannot notice. A read holding no
    /// digit is returned as it is (and the fault did nothing).
    FlipDigit,
    /// The clock jumps by this many seconds (negative: backwards) before the call.
    ClockJump { seconds: i64 },
}

/// Injected error kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// `EIO`: applies to every call.
    Eio,
    /// `ENOSPC`: applies to calls that may allocate space (create, write, append, set_len,
    /// rename, rename_noreplace, create_dir, sync, sync_dir).
    Enospc,
}

impl ErrorKind {
    pub fn applies_to(self, call: CallKind) -> bool {
        match self {
            ErrorKind::Eio => true,
            ErrorKind::Enospc => !matches!(call, CallKind::Read | CallKind::Unlink),
        }
    }
}

/// Negative controls: a disk that breaks a promise the pipeline relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    /// `sync(file)` returns success and makes nothing durable.
    LyingSync,
    /// `sync_dir(dir)` returns success and makes nothing durable.
    LyingSyncDir,
    /// A rename (or no-replace rename) reaches the disk ahead of the data of the file it moves:
    /// a file's `sync` is deferred to the next call, and when that call renames the file the
    /// rename is made durable first (with a sync of the directories involved) and the data only
    /// after it.
    RenameBeforeData,
}

impl Control {
    pub const ALL: [Control; 3] = [
        Control::LyingSync,
        Control::LyingSyncDir,
        Control::RenameBeforeData,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Control::LyingSync => "lying-sync",
            Control::LyingSyncDir => "lying-sync-dir",
            Control::RenameBeforeData => "rename-before-data",
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Control {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Control::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown control {s:?}; expected lying-sync, lying-sync-dir or rename-before-data"
                )
            })
    }
}

/// Seeded delays: each call is delayed with probability `percent`/100 by up to `max_micros`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub percent: u8,
    pub max_micros: u64,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `#N` as the op log prints the call: a trace names a call by one index.
            Trigger::Call { index } => write!(f, "call #{index}"),
            Trigger::Nth { kind, path, n } => write!(f, "{kind} #{n} on {path}"),
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Error { error, sticky } => {
                let name = match error {
                    ErrorKind::Eio => "EIO",
                    ErrorKind::Enospc => "ENOSPC",
                };
                write!(f, "{name} ({})", if *sticky { "sticky" } else { "once" })
            }
            Effect::FailSync => f.write_str("failing fsync (unsynced data lost)"),
            Effect::CorruptRead => f.write_str("corrupted read"),
            Effect::FlipDigit => f.write_str("corrupted read (a digit changed)"),
            Effect::ClockJump { seconds } => write!(f, "clock jump {seconds:+} s"),
        }
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(crash) = &self.crash {
            let moment = match crash.moment {
                Moment::Before => "before",
                Moment::After => "after",
            };
            parts.push(format!("crash {moment} {} ({})", crash.at, crash.model));
        }
        for fault in &self.faults {
            parts.push(format!("{} at {}", fault.effect, fault.at));
        }
        for control in &self.controls {
            parts.push(format!("control {control}"));
        }
        if let Some(latency) = self.latency {
            parts.push(format!(
                "latency {}% up to {} µs",
                latency.percent, latency.max_micros
            ));
        }
        if parts.is_empty() {
            f.write_str("no faults")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// Serializes a crash model by its name (`strict`, `subset`, `prefix`, `torn-512`, `torn-4k`,
/// `kill`).
pub mod model_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use tally_sim::CrashModel;

    pub fn serialize<S: Serializer>(model: &CrashModel, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(model.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CrashModel, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_round_trips_through_json() {
        let plan = FaultPlan {
            crash: Some(Crash {
                at: Trigger::Nth {
                    kind: CallKind::Rename,
                    path: "*/data/*".into(),
                    n: 2,
                },
                moment: Moment::After,
                model: CrashModel::Torn512,
            }),
            faults: vec![
                Fault {
                    at: Trigger::Call { index: 7 },
                    effect: Effect::Error {
                        error: ErrorKind::Enospc,
                        sticky: true,
                    },
                },
                Fault {
                    at: Trigger::Call { index: 9 },
                    effect: Effect::ClockJump { seconds: -3600 },
                },
            ],
            controls: vec![Control::RenameBeforeData],
            latency: Some(Latency {
                percent: 20,
                max_micros: 500,
            }),
            seed: 42,
        };
        let json = serde_json::to_string_pretty(&plan).unwrap();
        assert!(json.contains("\"torn-512\""), "{json}");
        assert_eq!(serde_json::from_str::<FaultPlan>(&json).unwrap(), plan);
        assert_eq!(
            plan.to_string(),
            "crash after rename #2 on */data/* (torn-512); ENOSPC (sticky) at call #7; \
             clock jump -3600 s at call #9; control rename-before-data; latency 20% up to 500 µs"
        );
    }

    #[test]
    fn an_unknown_model_is_refused_by_name() {
        let err = serde_json::from_str::<Crash>(
            r#"{"at": {"trigger": "call", "index": 1}, "model": "lazy"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown crash model"), "{err}");
    }
}

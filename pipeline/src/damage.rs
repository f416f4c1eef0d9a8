//! A damaged commit point: what is known about it and what rolling back over it would lose.
//! A leaf module, so that errors (`Error::Damaged`) and recovery's report can both hold it.

use std::fmt;

use serde::Serialize;

/// A commit of the Delta log that cannot be read (or follows one that cannot): everything
/// from it on is newer than the last good version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DamagedManifest {
    /// Path relative to the root (`_delta_log/<version>.json`).
    pub file: String,
    pub reason: String,
}

/// A table file the last good version does not reference: rolling back over a damaged
/// commit loses it, since it may hold rows only the damaged version published. Described by
/// its footer alone (recovery never reads data pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    /// Path relative to the root.
    pub file: String,
    pub level: u32,
    pub id: u64,
    /// Rows and sequence range by its footer; `None` when the footer is unreadable.
    pub rows: Option<u64>,
    pub seq: Option<(u64, u64)>,
    pub unreadable: Option<String>,
}

impl fmt::Display for AtRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rows, self.seq, &self.unreadable) {
            (Some(rows), Some((lo, hi)), _) => {
                write!(f, "{} ({rows} rows, seq {lo}..={hi})", self.file)
            }
            (Some(rows), None, _) => write!(f, "{} ({rows} rows)", self.file),
            (None, _, why) => write!(
                f,
                "{} (footer unreadable: {})",
                self.file,
                why.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// The newest commit point cannot be read: the damaged commits, the last good version and
/// what a rollback to it loses. Opening refuses with it ([`crate::Error::Damaged`]) unless the
/// loss is accepted; then it is what the rollback lost ([`RecoveryReport::rolled_back`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub root: String,
    /// Newest first.
    pub damaged: Vec<DamagedManifest>,
    /// 0: no readable manifest, the empty store.
    pub last_good_version: u64,
    /// In name order.
    pub at_risk: Vec<AtRisk>,
    /// The rows of `at_risk` by their footers.
    pub rows_at_risk: u64,
}

impl Damage {
    pub(crate) fn damaged_list(&self) -> String {
        let names: Vec<String> = self
            .damaged
            .iter()
            .map(|d| format!("{} ({})", d.file, d.reason))
            .collect();
        names.join(", ")
    }

    /// What a rollback loses, as one sentence.
    pub(crate) fn loss(&self) -> String {
        let files = if self.at_risk.is_empty() {
            format!(
                "no table file (every table file on disk is referenced by version {})",
                self.last_good_version
            )
        } else {
            let names: Vec<String> = self.at_risk.iter().map(ToString::to_string).collect();
            format!(
                "{}: {} rows by their footers, which may hold rows only the damaged version published",
                names.join(", "),
                self.rows_at_risk
            )
        };
        format!(
            "{files}. The damaged version's ledger cannot be read, so which sources' acknowledged rows it recorded is unknown: \
             after a rollback the ledger forgets them, and re-ingesting those sources may duplicate rows downstream (an export already holding them gets them again)"
        )
    }
}

/// The refusal: what is damaged, what a rollback would lose, and the way out.
impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the store's newest commit point is damaged: {} cannot be read. The last good version is {}. \
             Rolling back to it would lose {}. Nothing was changed. Way out: restore the damaged commits from a backup, \
             or accept the loss with `tally recover --root {} --accept-loss`, which rolls back to version {} and sets the \
             damaged commits and those files aside in _tally/quarantine/",
            self.damaged_list(),
            self.last_good_version,
            self.loss(),
            self.root,
            self.last_good_version
        )
    }
}

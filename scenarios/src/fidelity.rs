//! Fidelity of the simulated disk to a real one: after a power-loss run on LazyFS, what the
//! real disk kept is set beside what the simulated disk, mirrored call for call
//! ([`crate::mirror`]), says a crash at that moment keeps (docs/harness.md, "Fidelity").
//!
//! Two images of the simulated disk are taken at the crash:
//! - `strict`: only what is durable (the `strict` crash model);
//! - `predicted`: what LazyFS should keep — every directory entry (LazyFS passes creates,
//!   renames, links and unlinks to the disk under it at once) over each file's durable data.
//!
//! The real disk must hold exactly `predicted`. A difference between `predicted` and `strict`
//! is the gap LazyFS leaves (directory entries), reported and not a failure. Any other
//! difference is a disagreement: one of the two disks is wrong, and the run fails. The worst
//! kind is a file whose data the simulated disk holds durable and the real disk lost.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tally_sim::{CrashModel, CrashPlan, Fs, PendingTarget, SimFs};

/// One path of an image: a directory, or a file's length and the hash of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    Dir,
    File {
        len: u64,
        xxh64: u64,
    },
    /// A symbolic link (the pipeline makes none; the simulated disk has none).
    Symlink,
}

impl Entry {
    fn file(bytes: &[u8]) -> Self {
        Entry::File {
            len: bytes.len() as u64,
            xxh64: twox_hash::XxHash64::oneshot(0, bytes),
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Dir => f.write_str("a directory"),
            Entry::File { len, xxh64 } => write!(f, "{len} bytes (xxh64 {xxh64:016x})"),
            Entry::Symlink => f.write_str("a symbolic link"),
        }
    }
}

/// Paths relative to the run's directory.
pub type Image = BTreeMap<String, Entry>;

/// What the simulated disk says a crash at this moment keeps, written by the child at its
/// crash (or its end) for the parent to compare after the power loss.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Expected {
    pub strict: Image,
    pub predicted: Image,
    /// Why the images cannot be compared (a call was half made on the two disks when the
    /// process stopped), if so.
    pub indeterminate: Option<String>,
    /// Calls the real disk made and the simulated one refused or answered differently.
    pub divergences: Vec<String>,
}

/// The two images of `sim` under `dir`.
pub fn expected(sim: &SimFs, dir: &Path) -> Expected {
    Expected {
        strict: under(&sim.crash(CrashModel::Strict, 0), dir),
        predicted: under(&entries_kept(sim), dir),
        ..Expected::default()
    }
}

/// The disk a crash of `sim` leaves when every pending directory op survives and no pending
/// data op does: what LazyFS keeps.
pub fn entries_kept(sim: &SimFs) -> SimFs {
    let plan = CrashPlan {
        survivors: sim
            .pending_ops()
            .into_iter()
            .filter(|op| matches!(op.target, PendingTarget::DirEntries(_)))
            .map(|op| op.seq)
            .collect(),
        tear: None,
    };
    sim.crash_with(&plan)
        .expect("directory ops depend only on directory ops: the plan is closed")
}

fn under(disk: &SimFs, dir: &Path) -> Image {
    let prefix = format!("{}/", dir.display());
    disk.tree()
        .into_iter()
        .filter_map(|(path, bytes)| {
            let rel = path.strip_prefix(&prefix)?.to_owned();
            Some((rel, bytes.map_or(Entry::Dir, |b| Entry::file(&b))))
        })
        .collect()
}

/// What `fs` holds under `dir` (nothing if `dir` is missing).
pub async fn kept<F: Fs>(fs: &F, dir: &Path) -> io::Result<Image> {
    let mut image = Image::new();
    if !fs.exists(dir).await? {
        return Ok(image);
    }
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            dir.to_owned()
        } else {
            dir.join(&rel)
        };
        for entry in fs.list_dir(&path).await? {
            let child = if rel.is_empty() {
                entry.name.clone()
            } else {
                format!("{rel}/{}", entry.name)
            };
            let found = if entry.is_symlink {
                Entry::Symlink
            } else if entry.is_dir {
                stack.push(child.clone());
                Entry::Dir
            } else {
                Entry::file(&fs.read(&dir.join(&child)).await?)
            };
            image.insert(child, found);
        }
    }
    Ok(image)
}

/// One path on which the real disk and the simulated disk's prediction differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    pub path: String,
    pub strict: Option<Entry>,
    pub predicted: Option<Entry>,
    pub kept: Option<Entry>,
}

impl Disagreement {
    /// The simulated disk holds the file durable under this name (and predicts it so) and the
    /// real disk lost some of it (kept less of it, other bytes, or no file).
    pub fn lost_durable_data(&self) -> bool {
        let Some(Entry::File { len: durable, .. }) = self.strict else {
            return false;
        };
        // Longer than the durable data: unsynced data kept, which hashes cannot tell apart
        // from a changed durable prefix; counted as a disagreement, not as a loss.
        let kept_more = matches!(self.kept, Some(Entry::File { len, .. }) if len > durable);
        self.predicted == self.strict && self.kept != self.strict && !kept_more
    }
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |e: &Option<Entry>| e.map_or_else(|| "nothing".to_owned(), |e| e.to_string());
        write!(
            f,
            "{}: {}the real disk kept {}, the simulated disk predicts {} (durable: {})",
            self.path,
            if self.lost_durable_data() {
                "durable data lost: "
            } else {
                ""
            },
            show(&self.kept),
            show(&self.predicted),
            show(&self.strict)
        )
    }
}

/// The comparison of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Fidelity {
    /// Paths the real disk kept or the simulated disk predicts.
    pub paths: u64,
    /// Of them, paths where the real disk holds exactly the prediction.
    pub agreeing: u64,
    /// Directory entries the real disk kept that the strict image drops (not yet durable).
    pub entries_beyond_strict: u64,
    /// Directory entries of the strict image the real disk no longer has (unlinked or renamed
    /// away, not yet durably).
    pub entries_short_of_strict: u64,
    pub disagreements: Vec<Disagreement>,
    pub divergences: Vec<String>,
    pub indeterminate: Option<String>,
}

impl Fidelity {
    /// Whether the run shows one of the two disks wrong.
    pub fn failed(&self) -> bool {
        !self.disagreements.is_empty() || !self.divergences.is_empty()
    }
}

/// Sets what the real disk kept beside what the simulated disk expected.
pub fn compare(expected: &Expected, kept: &Image) -> Fidelity {
    let mut out = Fidelity {
        divergences: expected.divergences.clone(),
        indeterminate: expected.indeterminate.clone(),
        ..Fidelity::default()
    };
    if out.indeterminate.is_some() {
        return out;
    }
    let mut paths: Vec<&String> = expected.predicted.keys().chain(kept.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let (strict, predicted, real) = (
            expected.strict.get(path).copied(),
            expected.predicted.get(path).copied(),
            kept.get(path).copied(),
        );
        out.paths += 1;
        if real == predicted {
            out.agreeing += 1;
        } else {
            out.disagreements.push(Disagreement {
                path: path.clone(),
                strict,
                predicted,
                kept: real,
            });
        }
    }
    out.entries_beyond_strict = kept
        .keys()
        .filter(|p| !expected.strict.contains_key(*p))
        .count() as u64;
    out.entries_short_of_strict = expected
        .strict
        .keys()
        .filter(|p| !kept.contains_key(*p))
        .count() as u64;
    out
}

#[cfg(test)]
mod tests;

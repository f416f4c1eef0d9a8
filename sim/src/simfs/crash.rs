//! Crash models: which pending ops survive a crash, and the disk image that results.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::content::Content;
use super::disk::Disk;
use super::node::{DataOpKind, DirNode, EntryOp, FileNode, Node, direct_deps};

/// What a crash lets survive. See `docs/durability-model.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrashModel {
    /// Only durable state.
    Strict,
    /// A dependency-closed subset of the pending ops.
    Subset,
    /// Per file and per directory, a prefix of its pending ops.
    Prefix,
    /// One pending write torn in 512-byte sectors, after the earlier ops of its file.
    Torn512,
    /// One pending write torn in 4 KiB sectors, after the earlier ops of its file.
    Torn4k,
    /// Every pending op (a process kill: the page cache survives).
    Kill,
}

impl CrashModel {
    pub const ALL: [CrashModel; 6] = [
        CrashModel::Strict,
        CrashModel::Subset,
        CrashModel::Prefix,
        CrashModel::Torn512,
        CrashModel::Torn4k,
        CrashModel::Kill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashModel::Strict => "strict",
            CrashModel::Subset => "subset",
            CrashModel::Prefix => "prefix",
            CrashModel::Torn512 => "torn-512",
            CrashModel::Torn4k => "torn-4k",
            CrashModel::Kill => "kill",
        }
    }
}

impl fmt::Display for CrashModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CrashModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "torn" {
            return Ok(CrashModel::Torn4k);
        }
        CrashModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = CrashModel::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown crash model {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What becomes of one sector of a torn write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectorFate {
    /// The bytes of the write.
    New,
    /// The bytes the file held before the write (zeros past its old end).
    Old,
    Zeros,
    /// Bytes from a generator seeded by the tear's `garbage_seed`.
    Garbage,
}

impl SectorFate {
    pub const ALL: [SectorFate; 4] = [
        SectorFate::New,
        SectorFate::Old,
        SectorFate::Zeros,
        SectorFate::Garbage,
    ];
}

/// A pending write that persists partly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tear {
    /// The write's sequence number; it must also be among the plan's survivors.
    pub seq: u64,
    /// 512 or 4096.
    pub sector_size: u32,
    /// One fate per sector the write touches, in order.
    pub fates: Vec<SectorFate>,
    pub garbage_seed: u64,
}

/// An exact choice of what survives a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashPlan {
    /// Sequence numbers of the pending ops that survive.
    pub survivors: BTreeSet<u64>,
    pub tear: Option<Tear>,
}

/// Which object a pending op belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PendingTarget {
    /// The data of the file with this inode number.
    FileData(u64),
    /// The entries of the directory with this inode number.
    DirEntries(u64),
}

/// A pending (not yet durable) op, as a crash sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    pub seq: u64,
    pub target: PendingTarget,
    /// Earlier pending ops that must survive for this one to.
    pub deps: Vec<u64>,
    /// For a write: its offset and length, which a tear cuts into sectors.
    pub write: Option<(u64, u64)>,
}

/// Why [`crate::SimFs::crash_with`] refused a plan.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("op {0} is not pending on this disk")]
    NotPending(u64),
    #[error("op {op} survives but op {missing}, which it depends on, does not")]
    NotClosed { op: u64, missing: u64 },
    #[error("the torn op {0} is not a pending write")]
    TearNotAWrite(u64),
    #[error("the torn op {0} is not among the survivors")]
    TearNotSurviving(u64),
    #[error("sector size {0} is not 512 or 4096")]
    SectorSize(u32),
    #[error("the torn write spans {expected} sectors but the plan gives {got} fates")]
    FateCount { expected: usize, got: usize },
}

/// Sectors of `sector` bytes that the range `[offset, offset + len)` touches: the number of
/// fates a [`Tear`] of a write of that range needs.
pub fn sectors_spanned(offset: u64, len: u64, sector: u32) -> usize {
    if len == 0 {
        return 0;
    }
    let sector = u64::from(sector);
    ((offset + len - 1) / sector - offset / sector + 1) as usize
}

impl Disk {
    /// Every pending op, in sequence order, with its direct dependencies.
    pub(crate) fn pending_ops(&self) -> Vec<PendingOp> {
        let mut out = Vec::new();
        for (&ino, node) in &self.nodes {
            match node {
                Node::File(file) => {
                    let deps = direct_deps(&file.pending, |a, b| a.conflicts_with(b));
                    for (op, deps) in file.pending.iter().zip(deps) {
                        out.push(PendingOp {
                            seq: op.seq,
                            target: PendingTarget::FileData(ino),
                            deps: deps.iter().map(|&i| file.pending[i].seq).collect(),
                            write: match &op.kind {
                                DataOpKind::Write { offset, data } => {
                                    Some((*offset, data.len() as u64))
                                }
                                DataOpKind::SetLen(_) => None,
                            },
                        });
                    }
                }
                Node::Dir(dir) => {
                    let deps = direct_deps(&dir.pending, EntryOp::conflicts_with);
                    for (op, deps) in dir.pending.iter().zip(deps) {
                        out.push(PendingOp {
                            seq: op.seq,
                            target: PendingTarget::DirEntries(ino),
                            deps: deps.iter().map(|&i| dir.pending[i].seq).collect(),
                            write: None,
                        });
                    }
                }
            }
        }
        out.sort_by_key(|op| op.seq);
        out
    }

    /// The plan `model` chooses, drawing from ChaCha8 seeded with `seed`.
    pub(crate) fn plan(&self, model: CrashModel, seed: u64) -> CrashPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pending = self.pending_ops();
        let mut plan = CrashPlan::default();
        match model {
            CrashModel::Strict => {}
            CrashModel::Kill => plan.survivors = pending.iter().map(|op| op.seq).collect(),
            CrashModel::Subset => {
                for op in &pending {
                    let deps_kept = op.deps.iter().all(|d| plan.survivors.contains(d));
                    if rng.gen_bool(0.5) && deps_kept {
                        plan.survivors.insert(op.seq);
                    }
                }
            }
            CrashModel::Prefix => {
                let mut per_target: BTreeMap<PendingTarget, Vec<u64>> = BTreeMap::new();
                for op in &pending {
                    per_target.entry(op.target).or_default().push(op.seq);
                }
                for seqs in per_target.values() {
                    let keep = rng.gen_range(0..=seqs.len());
                    plan.survivors.extend(&seqs[..keep]);
                }
            }
            CrashModel::Torn512 | CrashModel::Torn4k => {
                let sector_size = if model == CrashModel::Torn512 {
                    512
                } else {
                    4096
                };
                let writes: Vec<&PendingOp> = pending
                    .iter()
                    .filter(|op| op.write.is_some_and(|(_, len)| len > 0))
                    .collect();
                if writes.is_empty() {
                    return plan;
                }
                let torn = writes[rng.gen_range(0..writes.len())];
                plan.survivors = pending
                    .iter()
                    .filter(|op| op.target == torn.target && op.seq <= torn.seq)
                    .map(|op| op.seq)
                    .collect();
                let (offset, len) = torn.write.expect("chosen among writes");
                let fates = (0..sectors_spanned(offset, len, sector_size))
                    .map(|_| SectorFate::ALL[rng.gen_range(0..SectorFate::ALL.len())])
                    .collect();
                plan.tear = Some(Tear {
                    seq: torn.seq,
                    sector_size,
                    fates,
                    garbage_seed: rng.next_u64(),
                });
            }
        }
        plan
    }

    /// The disk a crash under `plan` leaves: durable state plus the surviving ops, all durable.
    pub(crate) fn image(&self, plan: &CrashPlan) -> Result<Disk, PlanError> {
        self.validate(plan)?;
        let mut image = Disk {
            nodes: BTreeMap::new(),
            next_ino: self.next_ino,
            next_seq: self.next_seq,
            options: self.options,
            gc_watermark: 1,
        };
        for (&ino, node) in &self.nodes {
            let crashed = match node {
                Node::File(file) if file.pending.is_empty() => node.clone(),
                Node::Dir(dir) if dir.pending.is_empty() => node.clone(),
                Node::File(file) => {
                    let mut content = file.durable.clone();
                    for op in file
                        .pending
                        .iter()
                        .filter(|op| plan.survivors.contains(&op.seq))
                    {
                        match &plan.tear {
                            Some(tear) if tear.seq == op.seq => tear_write(&mut content, op, tear),
                            _ => op.apply(&mut content),
                        }
                    }
                    Node::File(Arc::new(FileNode {
                        durable: content.clone(),
                        visible: content,
                        pending: Vec::new(),
                    }))
                }
                Node::Dir(dir) => {
                    let mut entries = dir.durable.clone();
                    for op in dir
                        .pending
                        .iter()
                        .filter(|op| plan.survivors.contains(&op.seq))
                    {
                        op.apply(&mut entries);
                    }
                    Node::Dir(Arc::new(DirNode {
                        durable: entries.clone(),
                        visible: entries,
                        pending: Vec::new(),
                    }))
                }
            };
            image.nodes.insert(ino, crashed);
        }
        image.prune_unreachable();
        Ok(image)
    }

    fn validate(&self, plan: &CrashPlan) -> Result<(), PlanError> {
        let pending: BTreeMap<u64, PendingOp> = self
            .pending_ops()
            .into_iter()
            .map(|op| (op.seq, op))
            .collect();
        for &seq in &plan.survivors {
            let op = pending.get(&seq).ok_or(PlanError::NotPending(seq))?;
            if let Some(&missing) = op.deps.iter().find(|d| !plan.survivors.contains(d)) {
                return Err(PlanError::NotClosed { op: seq, missing });
            }
        }
        if let Some(tear) = &plan.tear {
            let (offset, len) = pending
                .get(&tear.seq)
                .and_then(|op| op.write)
                .ok_or(PlanError::TearNotAWrite(tear.seq))?;
            if !plan.survivors.contains(&tear.seq) {
                return Err(PlanError::TearNotSurviving(tear.seq));
            }
            if tear.sector_size != 512 && tear.sector_size != 4096 {
                return Err(PlanError::SectorSize(tear.sector_size));
            }
            let expected = sectors_spanned(offset, len, tear.sector_size);
            if tear.fates.len() != expected {
                return Err(PlanError::FateCount {
                    expected,
                    got: tear.fates.len(),
                });
            }
        }
        Ok(())
    }
}

/// Applies a write sector by sector, each sector's part taking its fate whole.
fn tear_write(content: &mut Content, op: &super::node::DataOp, tear: &Tear) {
    let DataOpKind::Write { offset, data } = &op.kind else {
        unreachable!("validated: the torn op is a write");
    };
    let sector = u64::from(tear.sector_size);
    let end = offset + data.len() as u64;
    let mut garbage = ChaCha8Rng::seed_from_u64(tear.garbage_seed);
    let mut torn = Vec::with_capacity(data.len());
    let mut pos = *offset;
    for fate in &tear.fates {
        let piece_end = ((pos / sector + 1) * sector).min(end);
        let piece = (pos - offset) as usize..(piece_end - offset) as usize;
        match fate {
            SectorFate::New => torn.extend_from_slice(&data[piece]),
            SectorFate::Old => {
                let mut old = content.read(pos, piece.len());
                old.resize(piece.len(), 0);
                torn.extend_from_slice(&old);
            }
            SectorFate::Zeros => torn.resize(torn.len() + piece.len(), 0),
            SectorFate::Garbage => {
                let start = torn.len();
                torn.resize(start + piece.len(), 0);
                garbage.fill_bytes(&mut torn[start..]);
            }
        }
        pos = piece_end;
    }
    debug_assert_eq!(pos, end);
    content.write(*offset, &torn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sectors_spanned_counts_partial_sectors() {
        assert_eq!(sectors_spanned(0, 512, 512), 1);
        assert_eq!(sectors_spanned(1, 512, 512), 2);
        assert_eq!(sectors_spanned(511, 2, 512), 2);
        assert_eq!(sectors_spanned(0, 0, 512), 0);
        assert_eq!(sectors_spanned(4000, 200, 4096), 2);
    }

    #[test]
    fn model_names_round_trip() {
        for model in CrashModel::ALL {
            assert_eq!(model.name().parse::<CrashModel>(), Ok(model));
        }
        assert_eq!("torn".parse::<CrashModel>(), Ok(CrashModel::Torn4k));
        assert!("lazy".parse::<CrashModel>().is_err());
    }
}

//! Inodes of the simulated disk: durable state, pending ops, and the visible state they make.
//!
//! Invariant (checked in debug builds by `check_invariant` on every change): for every node,
//! `visible` equals `durable` with every op of `pending` applied in order. `sync` therefore
//! needs no replay: the durable state simply becomes the visible one.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::content::Content;

pub(crate) type Ino = u64;
pub(crate) const ROOT: Ino = 0;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    File(Arc<FileNode>),
    Dir(Arc<DirNode>),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FileNode {
    pub(crate) durable: Content,
    pub(crate) visible: Content,
    pub(crate) pending: Vec<DataOp>,
}

#[derive(Clone, Debug)]
pub(crate) struct DataOp {
    pub(crate) seq: u64,
    pub(crate) kind: DataOpKind,
}

#[derive(Clone, Debug)]
pub(crate) enum DataOpKind {
    Write { offset: u64, data: Arc<[u8]> },
    SetLen(u64),
}

impl DataOp {
    /// Data ops of one file conflict when their byte ranges overlap; a `set_len` conflicts
    /// with every other data op (it moves the end every later op is relative to).
    pub(crate) fn conflicts_with(&self, other: &DataOp) -> bool {
        match (&self.kind, &other.kind) {
            (
                DataOpKind::Write {
                    offset: a,
                    data: da,
                },
                DataOpKind::Write {
                    offset: b,
                    data: db,
                },
            ) => {
                let (a_end, b_end) = (a + da.len() as u64, b + db.len() as u64);
                *a < b_end && *b < a_end
            }
            _ => true,
        }
    }

    pub(crate) fn apply(&self, content: &mut Content) {
        match &self.kind {
            DataOpKind::Write { offset, data } => content.write(*offset, data),
            DataOpKind::SetLen(len) => content.set_len(*len),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DirNode {
    pub(crate) durable: BTreeMap<String, Ino>,
    pub(crate) visible: BTreeMap<String, Ino>,
    pub(crate) pending: Vec<EntryOp>,
}

#[derive(Clone, Debug)]
pub(crate) struct EntryOp {
    pub(crate) seq: u64,
    pub(crate) kind: EntryOpKind,
}

#[derive(Clone, Debug)]
pub(crate) enum EntryOpKind {
    /// A name now refers to `ino` (create, create_dir, the arriving half of a rename).
    Link { name: String, ino: Ino },
    /// A name is removed (unlink, remove_dir, the leaving half of a rename).
    Unlink { name: String },
    /// A rename inside this directory: one op, so it persists whole or not at all.
    Rename { from: String, to: String, ino: Ino },
}

impl EntryOp {
    fn names(&self) -> (&str, Option<&str>) {
        match &self.kind {
            EntryOpKind::Link { name, .. } | EntryOpKind::Unlink { name } => (name, None),
            EntryOpKind::Rename { from, to, .. } => (from, Some(to)),
        }
    }

    /// Entry ops of one directory conflict when they touch a common name.
    pub(crate) fn conflicts_with(&self, other: &EntryOp) -> bool {
        let (a1, a2) = self.names();
        let (b1, b2) = other.names();
        let touches = |name: &str| name == b1 || Some(name) == b2;
        touches(a1) || a2.is_some_and(touches)
    }

    /// The inode this op makes a name refer to, if any.
    pub(crate) fn linked_ino(&self) -> Option<Ino> {
        match &self.kind {
            EntryOpKind::Link { ino, .. } | EntryOpKind::Rename { ino, .. } => Some(*ino),
            EntryOpKind::Unlink { .. } => None,
        }
    }

    pub(crate) fn apply(&self, entries: &mut BTreeMap<String, Ino>) {
        match &self.kind {
            EntryOpKind::Link { name, ino } => {
                entries.insert(name.clone(), *ino);
            }
            EntryOpKind::Unlink { name } => {
                entries.remove(name);
            }
            EntryOpKind::Rename { from, to, ino } => {
                // Dependency closure guarantees `from` still names `ino` here.
                debug_assert_eq!(entries.get(from), Some(ino));
                entries.remove(from);
                entries.insert(to.clone(), *ino);
            }
        }
    }
}

#[cfg(debug_assertions)]
impl FileNode {
    /// Debug check of the module invariant: visible == durable + pending, replayed.
    pub(crate) fn check_invariant(&self, ino: Ino) {
        let mut replay = self.durable.clone();
        self.pending.iter().for_each(|op| op.apply(&mut replay));
        assert!(
            replay.same_bytes(&self.visible),
            "file inode {ino}: visible != durable + pending"
        );
    }
}

#[cfg(debug_assertions)]
impl DirNode {
    /// Debug check of the module invariant: visible == durable + pending, replayed.
    pub(crate) fn check_invariant(&self, ino: Ino) {
        let mut replay = self.durable.clone();
        self.pending.iter().for_each(|op| op.apply(&mut replay));
        assert_eq!(replay, self.visible, "directory inode {ino}");
    }
}

/// Direct dependencies of each op in `ops`: the earlier ops of the same object it conflicts
/// with. Indices are positions in `ops`.
pub(crate) fn direct_deps<T>(ops: &[T], conflicts: impl Fn(&T, &T) -> bool) -> Vec<Vec<usize>> {
    (0..ops.len())
        .map(|j| (0..j).filter(|&i| conflicts(&ops[i], &ops[j])).collect())
        .collect()
}

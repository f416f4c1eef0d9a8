//! The state of a simulated disk and the operations on it, without locking or logging.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, ErrorKind};
use std::path::Path;
use std::sync::Arc;

use super::node::{DataOp, DataOpKind, DirNode, EntryOp, EntryOpKind, FileNode, Ino, Node, ROOT};
use crate::fs::error;

/// Behaviour switches of a simulated disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimFsOptions {
    /// `sync(file)` also makes durable the pending entries that name the file (as some
    /// journaling filesystems do). Off by default: durable code must not rely on it.
    pub sync_persists_new_entry: bool,
    /// The filesystem has no hard links (as vfat and exFAT): `hard_link` fails with
    /// `PermissionDenied`, as `link(2)` fails with `EPERM` there.
    pub no_hard_links: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Disk {
    pub(crate) nodes: BTreeMap<Ino, Node>,
    pub(crate) next_ino: Ino,
    pub(crate) next_seq: u64,
    pub(crate) options: SimFsOptions,
    /// Node count after the last garbage collection; the next runs when it has doubled.
    pub(crate) gc_watermark: usize,
}

impl Disk {
    pub(crate) fn new(options: SimFsOptions) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::Dir(Arc::default()));
        Disk {
            nodes,
            next_ino: ROOT + 1,
            next_seq: 0,
            options,
            gc_watermark: 1,
        }
    }

    pub(crate) fn file(&self, ino: Ino) -> &FileNode {
        match &self.nodes[&ino] {
            Node::File(file) => file,
            Node::Dir(_) => unreachable!("inode {ino} is a directory"),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> &mut FileNode {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(file)) => Arc::make_mut(file),
            _ => unreachable!("inode {ino} is not a file"),
        }
    }

    pub(crate) fn dir(&self, ino: Ino) -> &DirNode {
        match &self.nodes[&ino] {
            Node::Dir(dir) => dir,
            Node::File(_) => unreachable!("inode {ino} is a file"),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> &mut DirNode {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(dir)) => Arc::make_mut(dir),
            _ => unreachable!("inode {ino} is not a directory"),
        }
    }

    pub(crate) fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.nodes[&ino], Node::Dir(_))
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    // ---- paths ----

    /// The names of `path` below `/`. Relative paths are taken from `/`. A `..` is resolved as
    /// the kernel does: what precedes it must be an existing directory, and it steps back one.
    pub(crate) fn components<'p>(&self, path: &'p Path, op: &str) -> io::Result<Vec<&'p str>> {
        // Split by hand: `Path::components` costs several times more, and every call on the
        // disk resolves its path.
        let Some(text) = path.to_str() else {
            return Err(error(
                ErrorKind::InvalidInput,
                op,
                path,
                "name is not UTF-8",
            ));
        };
        let mut out: Vec<&'p str> = Vec::new();
        for name in text.split('/') {
            match name {
                "" | "." => {}
                ".." => {
                    if !self.is_dir(self.lookup(&out, op, path)?) {
                        return Err(error(ErrorKind::NotADirectory, op, path, "not a directory"));
                    }
                    out.pop();
                }
                name => out.push(name),
            }
        }
        Ok(out)
    }

    pub(crate) fn lookup(&self, names: &[&str], op: &str, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for name in names {
            let Node::Dir(dir) = &self.nodes[&ino] else {
                return Err(error(ErrorKind::NotADirectory, op, path, "not a directory"));
            };
            ino = *dir
                .visible
                .get(*name)
                .ok_or_else(|| error(ErrorKind::NotFound, op, path, "no such file or directory"))?;
        }
        Ok(ino)
    }

    /// The directory that holds (or would hold) the last component of `names`.
    pub(crate) fn lookup_parent<'a>(
        &self,
        names: &[&'a str],
        op: &str,
        path: &Path,
    ) -> io::Result<(Ino, &'a str)> {
        let Some((name, parents)) = names.split_last() else {
            return Err(error(
                ErrorKind::InvalidInput,
                op,
                path,
                "the root has no parent",
            ));
        };
        let parent = self.lookup(parents, op, path)?;
        if !self.is_dir(parent) {
            return Err(error(ErrorKind::NotADirectory, op, path, "not a directory"));
        }
        Ok((parent, name))
    }

    pub(crate) fn entry(&self, dir: Ino, name: &str) -> Option<Ino> {
        self.dir(dir).visible.get(name).copied()
    }

    // ---- mutations: each appends a pending op and applies it to the visible state ----

    pub(crate) fn new_file(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::File(Arc::default()));
        ino
    }

    pub(crate) fn new_dir(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::Dir(Arc::default()));
        ino
    }

    pub(crate) fn push_data(&mut self, ino: Ino, kind: DataOpKind) {
        let op = DataOp {
            seq: self.take_seq(),
            kind,
        };
        let file = self.file_mut(ino);
        op.apply(&mut file.visible);
        file.pending.push(op);
        #[cfg(debug_assertions)]
        file.check_invariant(ino);
    }

    pub(crate) fn push_entry(&mut self, dir: Ino, kind: EntryOpKind) {
        let op = EntryOp {
            seq: self.take_seq(),
            kind,
        };
        let node = self.dir_mut(dir);
        op.apply(&mut node.visible);
        node.pending.push(op);
        #[cfg(debug_assertions)]
        node.check_invariant(dir);
    }

    // ---- durability ----

    pub(crate) fn sync_file(&mut self, ino: Ino) {
        // Checked before `file_mut`, which would copy a node shared with a snapshot even when
        // there is nothing to make durable.
        if !self.file(ino).pending.is_empty() {
            let file = self.file_mut(ino);
            file.durable = file.visible.clone();
            file.pending.clear();
        }
        if self.options.sync_persists_new_entry {
            self.persist_entries_naming(ino);
        }
    }

    /// Drops a file's pending data ops: they never become durable, and reads see the durable
    /// content again. What a failed fsync does to the data it could not write.
    pub(crate) fn discard_file(&mut self, ino: Ino) {
        if !self.file(ino).pending.is_empty() {
            let file = self.file_mut(ino);
            file.visible = file.durable.clone();
            file.pending.clear();
        }
    }

    pub(crate) fn sync_dir(&mut self, ino: Ino) {
        if !self.dir(ino).pending.is_empty() {
            let dir = self.dir_mut(ino);
            dir.durable = dir.visible.clone();
            dir.pending.clear();
        }
    }

    /// Makes durable every pending entry op that links `ino`, with the ops it depends on.
    fn persist_entries_naming(&mut self, ino: Ino) {
        let dirs: Vec<Ino> = self
            .nodes
            .iter()
            .filter_map(|(&d, node)| match node {
                Node::Dir(dir) if dir.pending.iter().any(|op| op.linked_ino() == Some(ino)) => {
                    Some(d)
                }
                _ => None,
            })
            .collect();
        for d in dirs {
            let dir = self.dir_mut(d);
            let deps = super::node::direct_deps(&dir.pending, EntryOp::conflicts_with);
            let mut keep = vec![false; dir.pending.len()];
            for (j, op) in dir.pending.iter().enumerate().rev() {
                if op.linked_ino() == Some(ino) {
                    keep[j] = true;
                }
                if keep[j] {
                    for &i in &deps[j] {
                        keep[i] = true;
                    }
                }
            }
            let mut rest = Vec::new();
            for (op, persist) in std::mem::take(&mut dir.pending).into_iter().zip(keep) {
                if persist {
                    op.apply(&mut dir.durable);
                } else {
                    rest.push(op);
                }
            }
            dir.pending = rest;
            #[cfg(debug_assertions)]
            dir.check_invariant(d);
        }
    }

    // ---- garbage ----

    /// Drops inodes that no name (visible, durable or pending) and no open handle can reach.
    /// Runs when the node count has doubled since the last run, so its cost is amortised.
    pub(crate) fn maybe_collect(&mut self, open: &BTreeMap<Ino, usize>) {
        if self.nodes.len() < 2 * self.gc_watermark.max(16) {
            return;
        }
        let mut live: BTreeSet<Ino> = BTreeSet::new();
        let mut stack: Vec<Ino> = vec![ROOT];
        stack.extend(open.keys().copied());
        while let Some(ino) = stack.pop() {
            if !live.insert(ino) {
                continue;
            }
            if let Some(Node::Dir(dir)) = self.nodes.get(&ino) {
                stack.extend(dir.visible.values().copied());
                stack.extend(dir.durable.values().copied());
                stack.extend(dir.pending.iter().filter_map(EntryOp::linked_ino));
            }
        }
        self.nodes.retain(|ino, _| live.contains(ino));
        self.gc_watermark = self.nodes.len();
    }

    /// Drops every inode not reachable from `/` through (durable) entries. Used on crash images,
    /// which have no pending ops and no open handles.
    pub(crate) fn prune_unreachable(&mut self) {
        let mut live: BTreeSet<Ino> = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if live.insert(ino) {
                if let Some(Node::Dir(dir)) = self.nodes.get(&ino) {
                    stack.extend(dir.durable.values().copied());
                }
            }
        }
        self.nodes.retain(|ino, _| live.contains(ino));
        self.gc_watermark = self.nodes.len();
    }

    /// Every visible path, sorted, with the file's bytes (`None` for a directory).
    pub(crate) fn tree(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((ino, prefix)) = stack.pop() {
            // Directories have one name each (moves between parents are refused), so this never
            // skips anything; it only guarantees the walk ends.
            if !seen.insert(ino) {
                continue;
            }
            for (name, &child) in &self.dir(ino).visible {
                let path = format!("{prefix}/{name}");
                match &self.nodes[&child] {
                    Node::File(file) => {
                        out.insert(path, Some(file.visible.to_vec()));
                    }
                    Node::Dir(_) => {
                        out.insert(path.clone(), None);
                        stack.push((child, path));
                    }
                }
            }
        }
        out
    }
}

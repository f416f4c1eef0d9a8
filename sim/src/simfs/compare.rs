//! Whether two disks are indistinguishable to a process: the harness checks a crash image once
//! and reuses the verdict for every later image that is the same disk.

use std::collections::BTreeMap;

use super::disk::Disk;
use super::node::{Ino, Node, ROOT};

impl Disk {
    /// The same tree of names, the same kinds, the same bytes in every file and the same hard
    /// links, with nothing pending on either (so the durable state is the visible one and a
    /// crash of either loses nothing). Inode numbers are not compared: no `Fs` call shows them.
    pub(crate) fn same_settled_state(&self, other: &Disk) -> bool {
        // Which inode of `other` each inode of `self` stands for, and back: a hard link on
        // one side must be the same hard link on the other.
        let mut pairs: BTreeMap<Ino, Ino> = BTreeMap::new();
        let mut back: BTreeMap<Ino, Ino> = BTreeMap::new();
        let mut stack = vec![(ROOT, ROOT)];
        while let Some((mine, theirs)) = stack.pop() {
            match (pairs.insert(mine, theirs), back.insert(theirs, mine)) {
                (None, None) => {}
                (Some(a), Some(b)) if a == theirs && b == mine => continue,
                _ => return false,
            }
            match (&self.nodes[&mine], &other.nodes[&theirs]) {
                (Node::File(a), Node::File(b)) => {
                    let settled = a.pending.is_empty() && b.pending.is_empty();
                    if !settled || !a.visible.same_bytes(&b.visible) {
                        return false;
                    }
                }
                (Node::Dir(a), Node::Dir(b)) => {
                    let settled = a.pending.is_empty() && b.pending.is_empty();
                    if !settled || a.visible.len() != b.visible.len() {
                        return false;
                    }
                    for ((name_a, &ino_a), (name_b, &ino_b)) in a.visible.iter().zip(&b.visible) {
                        if name_a != name_b {
                            return false;
                        }
                        stack.push((ino_a, ino_b));
                    }
                }
                _ => return false,
            }
        }
        true
    }
}

//! Decoding memoized by a file's exact bytes (feature `memo`, enabled by the simulation build
//! of the harness only).
//!
//! Decoding a checkpoint or a commit is a pure function of its bytes (and version). A
//! production process decodes each once; the simulator recovers thousands of crash images a
//! second that share the same few checkpoints and commits, and decoding them again was more
//! than half its time. An entry
//! answers only bytes equal to its own (compared in full, not by hash), so a damaged copy is
//! always decoded, and refused, afresh.

use std::collections::VecDeque;

/// The last few decodings, newest last.
pub(crate) struct Memo<V> {
    entries: VecDeque<(u64, Vec<u8>, V)>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    pub(crate) const fn new(capacity: usize) -> Self {
        Memo {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// What decoding `bytes` under `tag` gave before, if it is still kept.
    pub(crate) fn get(&self, tag: u64, bytes: &[u8]) -> Option<V> {
        self.entries
            .iter()
            .rev()
            .find(|(t, b, _)| *t == tag && b.as_slice() == bytes)
            .map(|(_, _, value)| value.clone())
    }

    /// Keeps what decoding `bytes` under `tag` gave, dropping the oldest entry when full.
    pub(crate) fn put(&mut self, tag: u64, bytes: Vec<u8>, value: V) {
        debug_assert!(self.get(tag, &bytes).is_none(), "decoded twice while kept");
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((tag, bytes, value));
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn a_memo_answers_only_the_same_bytes_under_the_same_tag() {
        let mut memo = Memo::new(2);
        memo.put(1, b"abc".to_vec(), "one");
        assert_eq!(memo.get(1, b"abc"), Some("one"));
        assert_eq!(memo.get(2, b"abc"), None, "another version");
        assert_eq!(memo.get(1, b"abd"), None, "one byte changed");
        assert_eq!(memo.get(1, b"ab"), None, "truncated");
        memo.put(1, b"x".to_vec(), "two");
        memo.put(1, b"y".to_vec(), "three");
        assert_eq!(memo.get(1, b"abc"), None, "the oldest is dropped when full");
        assert_eq!(memo.get(1, b"y"), Some("three"));
    }
}

//! File contents as a list of shared 4 KiB chunks.
//!
//! Cloning `Content` costs one reference count per chunk; writing copies only the chunks it
//! touches that are still shared with another copy. That is what makes a disk snapshot after
//! every operation affordable.

use std::sync::Arc;

pub(crate) const CHUNK: usize = 4096;
const CHUNK_U64: u64 = CHUNK as u64;

/// Bytes of one file. A `None` chunk reads as zeros and takes no memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Content {
    len: u64,
    chunks: Vec<Option<Arc<[u8; CHUNK]>>>,
}

fn chunks_for(len: u64) -> usize {
    usize::try_from(len.div_ceil(CHUNK_U64)).expect("simulated file larger than memory")
}

impl Content {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Up to `len` bytes at `offset`, fewer where the content ends.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let end = self.len.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Vec::new();
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            let index = (pos / CHUNK_U64) as usize;
            let start = (pos % CHUNK_U64) as usize;
            let take = (CHUNK - start).min((end - pos) as usize);
            match &self.chunks[index] {
                Some(chunk) => out.extend_from_slice(&chunk[start..start + take]),
                None => out.resize(out.len() + take, 0),
            }
            pos += take as u64;
        }
        out
    }

    pub(crate) fn to_vec(&self) -> Vec<u8> {
        self.read(0, self.len as usize)
    }

    /// Whether both hold the same bytes, compared chunk by chunk without copying them out
    /// (chunks still shared are equal without being read).
    pub(crate) fn same_bytes(&self, other: &Content) -> bool {
        let zero = [0u8; CHUNK];
        self.len == other.len
            && self
                .chunks
                .iter()
                .zip(&other.chunks)
                .all(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
                    (Some(c), None) | (None, Some(c)) => c[..] == zero[..],
                    (None, None) => true,
                })
    }

    /// Writes `data` at `offset`, extending the content (with zeros up to `offset`) if needed.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if end > self.len {
            self.grow(end);
        }
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = (pos / CHUNK_U64) as usize;
            let start = (pos % CHUNK_U64) as usize;
            let take = (CHUNK - start).min(rest.len());
            let chunk = self.chunks[index].get_or_insert_with(|| Arc::new([0; CHUNK]));
            Arc::make_mut(chunk)[start..start + take].copy_from_slice(&rest[..take]);
            pos += take as u64;
            rest = &rest[take..];
        }
    }

    /// Truncates or extends (with zeros) to `len`.
    pub(crate) fn set_len(&mut self, len: u64) {
        if len >= self.len {
            self.grow(len);
            return;
        }
        self.chunks.truncate(chunks_for(len));
        self.len = len;
        // Bytes past the end must read as zeros if the file grows again.
        let tail = (len % CHUNK_U64) as usize;
        if tail != 0 {
            if let Some(Some(chunk)) = self.chunks.last_mut() {
                Arc::make_mut(chunk)[tail..].fill(0);
            }
        }
    }

    fn grow(&mut self, len: u64) {
        self.chunks.resize(chunks_for(len), None);
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_past_end_leaves_a_zero_hole() {
        let mut c = Content::default();
        c.write(5000, b"xy");
        assert_eq!(c.len(), 5002);
        let all = c.to_vec();
        assert!(all[..5000].iter().all(|&b| b == 0));
        assert_eq!(&all[5000..], b"xy");
    }

    #[test]
    fn truncate_then_grow_reads_zeros() {
        let mut c = Content::default();
        c.write(0, &[7; 6000]);
        c.set_len(4100);
        c.set_len(8000);
        let all = c.to_vec();
        assert!(all[..4100].iter().all(|&b| b == 7));
        assert!(all[4100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn clone_is_unaffected_by_later_writes() {
        let mut a = Content::default();
        a.write(0, &[1; 9000]);
        let b = a.clone();
        a.write(4095, &[2; 2]);
        assert_eq!(b.to_vec(), vec![1; 9000]);
        assert_eq!(a.read(4094, 4), vec![1, 2, 2, 1]);
    }

    #[test]
    fn read_is_clipped_at_the_end() {
        let mut c = Content::default();
        c.write(0, b"hello");
        assert_eq!(c.read(3, 100), b"lo");
        assert!(c.read(5, 10).is_empty());
        assert!(c.read(500, 10).is_empty());
    }
}

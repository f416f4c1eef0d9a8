//! A filesystem that counts its durability calls and the bytes written through it, for
//! benchmarks: how many fsyncs an acknowledged batch cost, how many bytes a row cost on disk.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tally_sim::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode};

/// What a [`CountingFs`] saw, summed over every handle to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `FsFile::sync` calls.
    pub file_syncs: u64,
    /// `Fs::sync_dir` calls.
    pub dir_syncs: u64,
    /// Bytes passed to `write_at` and `append`.
    pub bytes_written: u64,
}

#[derive(Debug, Default)]
struct Counters {
    file_syncs: AtomicU64,
    dir_syncs: AtomicU64,
    bytes_written: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Wraps `F`, counting calls; behaviour is `F`'s.
#[derive(Clone, Debug)]
pub struct CountingFs<F> {
    inner: F,
    counters: Arc<Counters>,
}

impl<F: Fs> CountingFs<F> {
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            file_syncs: c.file_syncs.load(Ordering::Relaxed),
            dir_syncs: c.dir_syncs.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
        }
    }
}

/// A file of a [`CountingFs`].
#[derive(Debug)]
pub struct CountingFile<T> {
    inner: T,
    counters: Arc<Counters>,
}

impl<F: Fs> Fs for CountingFs<F> {
    type File = CountingFile<F::File>;
    type Lock = F::Lock;

    forward_fs_namespace!();

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        Ok(CountingFile {
            inner: self.inner.create(path, mode).await?,
            counters: self.counters.clone(),
        })
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        Ok(CountingFile {
            inner: self.inner.open(path, mode).await?,
            counters: self.counters.clone(),
        })
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        bump(&self.counters.dir_syncs, 1);
        self.inner.sync_dir(path).await
    }
}

impl<T: FsFile> FsFile for CountingFile<T> {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_at(offset, len).await
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        self.inner.read_all().await
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        bump(&self.counters.bytes_written, buf.len() as u64);
        self.inner.write_at(offset, buf).await
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        bump(&self.counters.bytes_written, buf.len() as u64);
        self.inner.append(buf).await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
    }

    async fn sync(&self) -> io::Result<()> {
        bump(&self.counters.file_syncs, 1);
        self.inner.sync().await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }
}

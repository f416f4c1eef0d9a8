//! A filesystem whose durability calls take time: `sync` and `sync_dir` sleep on tokio's clock
//! (virtual time under madsim) before doing their work. While one task waits for a sync, other
//! tasks run — the situation group commit exists for, which an instant simulated disk never
//! creates on its own.

use std::io;
use std::path::Path;
use std::time::Duration;

use tally_sim::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode};

/// Wraps `F`, delaying each `sync` and `sync_dir` by a fixed duration.
#[derive(Clone, Debug)]
pub struct SlowSyncFs<F> {
    inner: F,
    delay: Duration,
}

impl<F: Fs> SlowSyncFs<F> {
    pub fn new(inner: F, delay: Duration) -> Self {
        Self { inner, delay }
    }

    pub fn inner(&self) -> &F {
        &self.inner
    }
}

/// A file of a [`SlowSyncFs`].
#[derive(Debug)]
pub struct SlowSyncFile<T> {
    inner: T,
    delay: Duration,
}

impl<F: Fs> Fs for SlowSyncFs<F> {
    type File = SlowSyncFile<F::File>;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        Ok(SlowSyncFile {
            inner: self.inner.create(path, mode).await?,
            delay: self.delay,
        })
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        Ok(SlowSyncFile {
            inner: self.inner.open(path, mode).await?,
            delay: self.delay,
        })
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path).await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.sync_dir(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to).await
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        self.inner.unlink(path).await
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir(path).await
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path).await
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path).await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.list_dir(path).await
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.inner.metadata(path).await
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path).await
    }
}

impl<T: FsFile> FsFile for SlowSyncFile<T> {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read_at(offset, len).await
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        self.inner.read_all().await
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf).await
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        self.inner.append(buf).await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len).await
    }

    async fn sync(&self) -> io::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.sync().await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }
}

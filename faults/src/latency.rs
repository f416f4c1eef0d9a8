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
    type Lock = F::Lock;

    forward_fs_namespace!();

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

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.sync_dir(path).await
    }
}

impl<T: FsFile> FsFile for SlowSyncFile<T> {
    forward_file_data!();

    async fn sync(&self) -> io::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.sync().await
    }
}

//! A filesystem that lies about durability: `sync` and/or `sync_dir` return success without
//! doing anything, as a disk with a volatile write cache that ignores flushes would.

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;

use tally_sim::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode};

/// Which durability calls are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lie {
    /// `sync(file)` succeeds without making the data durable.
    Sync,
    /// `sync_dir(dir)` succeeds without making the entries durable.
    SyncDir,
}

impl Lie {
    pub const ALL: [Lie; 2] = [Lie::Sync, Lie::SyncDir];

    pub fn name(self) -> &'static str {
        match self {
            Lie::Sync => "sync",
            Lie::SyncDir => "sync-dir",
        }
    }
}

impl fmt::Display for Lie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Lie {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Lie::ALL
            .into_iter()
            .find(|lie| lie.name() == s)
            .ok_or_else(|| format!("unknown lie {s:?}; expected sync or sync-dir"))
    }
}

/// Wraps `F`, ignoring the durability call named by `lie`; everything else passes through.
#[derive(Clone, Debug)]
pub struct LyingFs<F> {
    inner: F,
    lie: Lie,
}

impl<F: Fs> LyingFs<F> {
    pub fn new(inner: F, lie: Lie) -> Self {
        Self { inner, lie }
    }

    pub fn inner(&self) -> &F {
        &self.inner
    }
}

/// A file of a [`LyingFs`].
#[derive(Debug)]
pub struct LyingFile<T> {
    inner: T,
    lie: Lie,
}

impl<F: Fs> Fs for LyingFs<F> {
    type File = LyingFile<F::File>;

    forward_fs_namespace!();

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Self::File> {
        let inner = self.inner.create(path, mode).await?;
        Ok(LyingFile {
            inner,
            lie: self.lie,
        })
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        let inner = self.inner.open(path, mode).await?;
        Ok(LyingFile {
            inner,
            lie: self.lie,
        })
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match self.lie {
            // The lie still notices a missing directory: only durability is faked.
            Lie::SyncDir => self.inner.metadata(path).await.map(drop),
            Lie::Sync => self.inner.sync_dir(path).await,
        }
    }
}

impl<T: FsFile> FsFile for LyingFile<T> {
    forward_file_data!();

    async fn sync(&self) -> io::Result<()> {
        match self.lie {
            Lie::Sync => Ok(()),
            Lie::SyncDir => self.inner.sync().await,
        }
    }
}

//! Setting a damaged file aside in `_tally/quarantine/`, where nothing reads it again and
//! nothing deletes it (docs/protocol.md, step 2).
//!
//! The invariant: from the first call to the last, and at every crash in between, the file is
//! under its own name, under a quarantine name, or both — never under neither. A `rename`
//! between two directories cannot promise that (its two halves persist apart:
//! docs/durability-model.md), so the file gets its quarantine name first, durably, and loses
//! its own name after: a hard link, or, on a filesystem without hard links, a synced copy.

use std::io;
use std::path::{Path, PathBuf};

use tally_sim::{Clock, CreateMode, Fs, FsFile, OpenMode};

use super::report::Quarantined;
use super::{Recovery, is_permanent};
use crate::error::Result;

/// Bytes copied per read when a filesystem without hard links makes a copy.
const COPY_CHUNK: usize = 8 << 20;

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Moves `dir/name` to `quarantine/<name>.<n>` (the first free `n`), durably in both
    /// directories, and reports it. A crash between the quarantine name becoming durable and
    /// the unlink leaves the file under both names; the next rollback sets it aside again
    /// under the next free name.
    pub(super) async fn quarantine(
        &mut self,
        dir: &Path,
        name: &str,
        reason: String,
    ) -> Result<()> {
        let qdir = self.layout.quarantine_dir();
        if self.ensure_dir(&qdir).await? {
            self.fs.sync_dir(&self.layout.private_dir()).await?;
        }
        let from = dir.join(name);
        let to = if self.twins.quarantine_by_rename {
            let to = qdir.join(free_name(self.fs, &qdir, name).await?);
            self.retry(|| self.fs.rename(&from, &to)).await?;
            to
        } else {
            // Each attempt picks its name anew: an attempt that failed after linking leaves a
            // name taken, and its retry must not stumble on it.
            match self.retry(|| link_aside(self.fs, &from, &qdir, name)).await {
                Ok(to) => to,
                Err(e) if is_permanent(&e) => self.copy_aside(&from, &qdir, name).await?,
                Err(e) => return Err(e.into()),
            }
        };
        self.fs.sync_dir(&qdir).await?;
        if !self.twins.quarantine_by_rename {
            tally_sim::probe!("recover.quarantine-linked");
            self.remove(&from).await?;
        }
        self.fs.sync_dir(dir).await?;
        tally_sim::probe!("recover.quarantined");
        tracing::warn!(file = %from.display(), %reason, "quarantined");
        self.report.quarantined.push(Quarantined {
            file: self.relative(&from),
            moved_to: self.relative(&to),
            reason,
        });
        Ok(())
    }

    /// On a filesystem without hard links: copies `from` to a temporary name in `qdir`, syncs
    /// it and renames it (inside `qdir`) to its quarantine name, which the caller's directory
    /// sync makes durable. A crash part way leaves `from` whole and at most a temporary file
    /// in the quarantine, which the next attempt writes over.
    async fn copy_aside(&self, from: &Path, qdir: &Path, name: &str) -> Result<PathBuf> {
        tracing::warn!(file = %from.display(), "no hard links here: setting the file aside by copying it");
        let target = free_name(self.fs, qdir, name).await?;
        let (temp, to) = (qdir.join(format!("{target}.tmp")), qdir.join(&target));
        let source = self.fs.open(from, OpenMode::Read).await?;
        let copy = self.fs.create(&temp, CreateMode::Truncate).await?;
        let len = source.len().await?;
        let mut offset = 0;
        while offset < len {
            let want = usize::try_from(len - offset).map_or(COPY_CHUNK, |n| n.min(COPY_CHUNK));
            let bytes = source.read_at(offset, want).await?;
            if bytes.is_empty() {
                break;
            }
            copy.write_at(offset, &bytes).await?;
            offset += bytes.len() as u64;
        }
        // Only a whole copy gets the quarantine name: a short one would set aside less than
        // the file (another program shortened it meanwhile).
        if offset != len {
            return Err(crate::error::Error::corrupt(
                from,
                format!(
                    "shrank from {len} to {offset} bytes while it was copied aside; nothing was moved"
                ),
            ));
        }
        copy.sync().await?;
        drop(copy);
        self.retry(|| self.fs.rename(&temp, &to)).await?;
        tally_sim::probe!("recover.quarantine-copied");
        Ok(to)
    }
}

/// Links `from` into `qdir` under the first free `<name>.<n>`; returns that path.
async fn link_aside<F: Fs>(fs: &F, from: &Path, qdir: &Path, name: &str) -> io::Result<PathBuf> {
    let to = qdir.join(free_name(fs, qdir, name).await?);
    fs.hard_link(from, &to).await?;
    Ok(to)
}

/// The first `<name>.<n>` not in `qdir`.
async fn free_name<F: Fs>(fs: &F, qdir: &Path, name: &str) -> io::Result<String> {
    let taken = fs.list_dir(qdir).await?;
    let mut n = 0;
    loop {
        let candidate = format!("{name}.{n}");
        if !taken.iter().any(|e| e.name == candidate) {
            return Ok(candidate);
        }
        n += 1;
    }
}

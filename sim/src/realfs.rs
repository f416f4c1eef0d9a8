//! The real disk.
//!
//! Each call is one or two syscalls: with no buffering of its own, a large sequential write costs
//! one `pwrite`, and a durable commit costs exactly the `fsync`s the caller asks for. Reads,
//! writes and namespace operations run on the calling task; `sync` and `sync_dir` run on tokio's
//! blocking pool (when called inside a tokio runtime), so that while one task waits for the disk
//! others keep running — which is what lets concurrent committers share one `fsync`. `sync` is `fsync` (`File::sync_all`); `sync_dir` opens the
//! directory and `fsync`s it, which is what makes creates, renames and unlinks durable on Linux.
//!
//! Errors carry the operation and path, and are normalised where Linux would be laxer than
//! `SimFs` (opening or syncing the wrong kind of object), so that both backends agree.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "RealFs is the world's real-disk backend"
)]

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode, annotate, error};

/// The real filesystem. Paths are used as given (absolute, or relative to the working
/// directory).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

/// An open file on the real disk.
#[derive(Debug)]
pub struct RealFile {
    file: Arc<File>,
    path: Arc<PathBuf>,
    writable: bool,
}

impl RealFile {
    fn check_writable(&self, op: &str) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(error(
                ErrorKind::PermissionDenied,
                op,
                &self.path,
                "file is open for reading only",
            ))
        }
    }
}

fn opened(file: File, path: &Path, op: &str, writable: bool) -> io::Result<RealFile> {
    // Linux lets a directory be opened read-only; the world interface does not.
    if file.metadata().map_err(|e| annotate(e, op, path))?.is_dir() {
        return Err(error(ErrorKind::IsADirectory, op, path, "is a directory"));
    }
    Ok(RealFile {
        file: Arc::new(file),
        path: Arc::new(path.to_path_buf()),
        writable,
    })
}

/// An exclusive `flock` on a file or directory of the real disk, held until dropped (closing
/// the descriptor releases it; so does the end of the process, however it ends).
#[derive(Debug)]
pub struct RealLock {
    _file: File,
    pub path: PathBuf,
}

/// Runs a blocking call on tokio's blocking pool when inside a runtime, inline otherwise.
async fn off_task<T: Send + 'static>(
    call: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    #[cfg(not(madsim))]
    if tokio::runtime::Handle::try_current().is_ok() {
        return tokio::task::spawn_blocking(call)
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
    }
    call()
}

impl Fs for RealFs {
    type File = RealFile;
    type Lock = RealLock;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<RealFile> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match mode {
            CreateMode::Exclusive => options.create_new(true),
            CreateMode::Truncate => options.create(true).truncate(true),
        };
        let file = options
            .open(path)
            .map_err(|e| annotate(e, "create", path))?;
        opened(file, path, "create", true)
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<RealFile> {
        let writable = mode == OpenMode::Write;
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| annotate(e, "open", path))?;
        opened(file, path, "open", writable)
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path, OpenMode::Read).await?;
        file.read_all().await
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = File::open(path).map_err(|e| annotate(e, "sync_dir", path))?;
        if !dir
            .metadata()
            .map_err(|e| annotate(e, "sync_dir", path))?
            .is_dir()
        {
            return Err(error(
                ErrorKind::NotADirectory,
                "sync_dir",
                path,
                "not a directory",
            ));
        }
        off_task(move || dir.sync_all())
            .await
            .map_err(|e| annotate(e, "sync_dir", path))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("rename {} -> {}: {e}", from.display(), to.display()),
            )
        })
    }

    async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        rename_noreplace(from, to).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "rename_noreplace {} -> {}: {e}",
                    from.display(),
                    to.display()
                ),
            )
        })
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("hard_link {} -> {}: {e}", from.display(), to.display()),
            )
        })
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path).map_err(|e| annotate(e, "unlink", path))
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path).map_err(|e| annotate(e, "create_dir", path))
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path).map_err(|e| annotate(e, "create_dir_all", path))
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path).map_err(|e| annotate(e, "remove_dir", path))
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| annotate(e, "list_dir", path))? {
            let entry = entry.map_err(|e| annotate(e, "list_dir", path))?;
            let name = entry.file_name().into_string().map_err(|name| {
                error(
                    ErrorKind::InvalidData,
                    "list_dir",
                    path,
                    &format!("entry name is not UTF-8: {name:?}"),
                )
            })?;
            // `file_type` does not follow a symbolic link.
            let kind = entry
                .file_type()
                .map_err(|e| annotate(e, "list_dir", path))?;
            entries.push(DirEntry {
                name,
                is_dir: kind.is_dir(),
                is_symlink: kind.is_symlink(),
            });
        }
        entries.sort();
        Ok(entries)
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| annotate(e, "metadata", path))?;
        Ok(Metadata {
            len: if meta.is_dir() { 0 } else { meta.len() },
            is_dir: meta.is_dir(),
            is_symlink: meta.file_type().is_symlink(),
        })
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists().map_err(|e| annotate(e, "exists", path))
    }

    async fn try_lock(&self, path: &Path) -> io::Result<RealLock> {
        // A directory opens read-only on Linux, and `flock` takes no write access.
        let file = File::open(path).map_err(|e| annotate(e, "lock", path))?;
        #[allow(
            clippy::incompatible_msrv,
            reason = "`File::try_lock` is std's since 1.89; the workspace already needs 1.88 \
                      (let chains) while declaring 1.85, and raising the declared version makes \
                      clippy suggest let chains in files of other crates"
        )]
        let locked = file.try_lock();
        match locked {
            Ok(()) => Ok(RealLock {
                _file: file,
                path: path.to_path_buf(),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(error(
                ErrorKind::WouldBlock,
                "lock",
                path,
                "held by another holder",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(annotate(e, "lock", path)),
        }
    }
}

/// `renameat2(RENAME_NOREPLACE)`: the kernel checks the target and moves in one step. A
/// filesystem (or kernel, or sandbox) without it answers `EINVAL`, `ENOSYS` or `EOPNOTSUPP`;
/// a file is then moved by [`link_then_unlink`]. A directory cannot be hard-linked, so for one
/// the call fails there: with `AlreadyExists` if the target exists (as the kernel would have
/// answered), with the kernel's error otherwise. The kernel checks the target before it
/// checks for a directory moved into itself (its other `EINVAL`), so where `renameat2` works,
/// that `EINVAL` is returned as it is.
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(errno @ (Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)) => {
            if !is_dir(from) {
                link_then_unlink(from, to)
            } else if std::fs::symlink_metadata(to).is_ok() {
                Err(io::Error::from(ErrorKind::AlreadyExists))
            } else {
                Err(errno.into())
            }
        }
        Err(errno) => Err(errno.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    link_then_unlink(from, to)
}

#[cfg(target_os = "linux")]
fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// A no-replace rename of a file without `renameat2`: `link` fails with `EEXIST` if anything
/// is at `to`, so no caller ever replaces a target. Not atomic against a crash: between the
/// two calls (or if the `unlink` fails, which is then the error) the file has both names; a
/// crash there leaves both, and the caller's recovery removes its leftover temporary name.
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

impl FsFile for RealFile {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        // Allocate what the file can return, not what was asked for.
        let available = self.len().await?.saturating_sub(offset);
        let len = len.min(usize::try_from(available).unwrap_or(usize::MAX));
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < len {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(annotate(e, "read", &self.path)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        // `read_at` clips to the file's length itself: one `fstat`, not two.
        self.read_at(0, usize::MAX).await
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.check_writable("write")?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| annotate(e, "write", &self.path))
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        self.check_writable("append")?;
        let mut file = &*self.file;
        let offset = file
            .seek(SeekFrom::End(0))
            .map_err(|e| annotate(e, "append", &self.path))?;
        file.write_all(buf)
            .map_err(|e| annotate(e, "append", &self.path))?;
        Ok(offset)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable("set_len")?;
        self.file
            .set_len(len)
            .map_err(|e| annotate(e, "set_len", &self.path))
    }

    async fn sync(&self) -> io::Result<()> {
        let file = self.file.clone();
        off_task(move || file.sync_all())
            .await
            .map_err(|e| annotate(e, "sync", &self.path))
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| annotate(e, "len", &self.path))?
            .len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback is taken only where `renameat2` is missing; it is held to the same claims
    /// here, on whatever filesystem the temporary directory is on.
    #[test]
    fn link_then_unlink_refuses_an_existing_target_and_moves_to_a_free_one() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        std::fs::write(&from, b"new").unwrap();
        std::fs::write(&to, b"old").unwrap();
        let err = link_then_unlink(&from, &to).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), b"old");
        assert_eq!(std::fs::read(&from).unwrap(), b"new");

        std::fs::remove_file(&to).unwrap();
        link_then_unlink(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"new");
        assert!(!from.exists());
        let missing = link_then_unlink(&from, &dir.path().join("other")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    }
}

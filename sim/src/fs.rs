//! The filesystem half of the world interface.
//!
//! Every operation returns `std::io::Error` whose message names the path, so that an error
//! surfacing at the top of the pipeline says which file it was about. Both backends return the
//! same [`io::ErrorKind`] for the same misuse; `sim/tests/conformance.rs` holds them to it.

use std::future::Future;
use std::io;
use std::path::Path;

/// How [`Fs::create`] treats an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    /// Fail with `AlreadyExists` if the path exists (`O_CREAT | O_EXCL`).
    Exclusive,
    /// Create, or truncate an existing file to zero length (`O_CREAT | O_TRUNC`).
    Truncate,
}

/// How [`Fs::open`] opens an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Reads only; writes fail.
    Read,
    /// Reads and writes (at an offset or appended); the file is not truncated.
    Write,
}

/// What [`Fs::metadata`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Length in bytes (0 for a directory).
    pub len: u64,
    pub is_dir: bool,
    /// The path names a symbolic link (never followed: `is_dir` is then false). `SimFs` has
    /// no symbolic links.
    pub is_symlink: bool,
}

/// One entry of a directory listing. A symbolic link is never followed: it is reported as
/// `is_symlink`, with `is_dir` false whatever it points at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub is_symlink: bool,
}

/// A filesystem. Cloning it yields another handle to the same disk.
///
/// Directory listings are sorted by name, so that code iterating over them is deterministic.
pub trait Fs: Clone + std::fmt::Debug + Send + Sync + 'static {
    type File: FsFile;
    /// An exclusive lock taken by [`Fs::try_lock`], released when dropped.
    type Lock: std::fmt::Debug + Send + Sync + 'static;

    /// Creates a file (see [`CreateMode`]) and opens it for reading and writing.
    fn create(
        &self,
        path: &Path,
        mode: CreateMode,
    ) -> impl Future<Output = io::Result<Self::File>> + Send;
    /// Opens an existing file. Opening a directory fails with `IsADirectory`.
    fn open(
        &self,
        path: &Path,
        mode: OpenMode,
    ) -> impl Future<Output = io::Result<Self::File>> + Send;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> impl Future<Output = io::Result<Vec<u8>>> + Send;
    /// Makes the entries of a directory durable (creates, renames and unlinks in it).
    fn sync_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Atomically renames `from` to `to`, replacing a file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Atomically renames `from` to `to` only if nothing is at `to`: a durable
    /// create-if-absent is write a temporary file, `sync` it, `rename_noreplace` it to its
    /// final name, `sync_dir`. If `to` exists (a file, a directory, a symbolic link, or `from`
    /// itself) it fails with `AlreadyExists` and changes nothing; otherwise it behaves as
    /// [`Fs::rename`] (same-directory and cross-directory alike).
    ///
    /// Atomic: no observer sees both names, and two racing calls for one `to` cannot both
    /// succeed. Durable: like a rename, only after [`Fs::sync_dir`] of the directory (of both
    /// directories when they differ); before that a crash may keep `from` and lose `to`. It
    /// orders nothing against the moved file's data, which must be synced before the call.
    ///
    /// `RealFs` uses `renameat2(RENAME_NOREPLACE)`. On a filesystem without it a file is moved
    /// by `link` then `unlink` (a directory cannot be, and fails), which no other caller can
    /// race into a replacement but which is not atomic against a crash: a crash between the two
    /// may leave the file under both names, so the caller removes a leftover temporary name on
    /// recovery, as it removes any other.
    fn rename_noreplace(
        &self,
        from: &Path,
        to: &Path,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// Gives the file at `from` a second name `to`, which must not exist. Durable after
    /// [`Fs::sync_dir`] of `to`'s directory; then `unlink(from)` completes a move no crash can
    /// lose, as a `rename` between two directories can (docs/durability-model.md).
    fn hard_link(&self, from: &Path, to: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Removes a file's name. Removing a directory this way fails with `IsADirectory`.
    fn unlink(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;
    fn create_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Creates a directory and its missing parents; an existing directory is fine.
    fn create_dir_all(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> impl Future<Output = io::Result<()>> + Send;
    /// Lists a directory, sorted by name.
    fn list_dir(&self, path: &Path) -> impl Future<Output = io::Result<Vec<DirEntry>>> + Send;
    /// What is at `path`. A symbolic link at `path` itself is not followed (`lstat`).
    fn metadata(&self, path: &Path) -> impl Future<Output = io::Result<Metadata>> + Send;
    /// `Ok(false)` if nothing is at `path`; an error if that cannot be known.
    fn exists(&self, path: &Path) -> impl Future<Output = io::Result<bool>> + Send;
    /// Takes an exclusive lock on the file or directory at `path` without waiting: one holder
    /// at a time, across processes on the real disk (`flock`), across handles of one disk on
    /// the simulated one. Fails with `WouldBlock` while another holder has it; the lock is
    /// released when the returned guard is dropped, or when the process ends. A crash image
    /// holds no lock: the crash killed its holder.
    fn try_lock(&self, path: &Path) -> impl Future<Output = io::Result<Self::Lock>> + Send;
}

/// An open file. Operations take `&self`: a handle may be shared between tasks.
#[allow(
    clippy::len_without_is_empty,
    reason = "an async length that can fail; emptiness is `len == 0`"
)]
pub trait FsFile: std::fmt::Debug + Send + Sync + 'static {
    /// Reads up to `len` bytes at `offset`; fewer only where the file ends.
    fn read_at(&self, offset: u64, len: usize) -> impl Future<Output = io::Result<Vec<u8>>> + Send;
    /// Reads the whole file.
    fn read_all(&self) -> impl Future<Output = io::Result<Vec<u8>>> + Send;
    /// Writes all of `buf` at `offset`, extending the file (with zeros) if needed.
    fn write_at(&self, offset: u64, buf: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Writes all of `buf` at the end of the file; returns the offset it was written at.
    fn append(&self, buf: &[u8]) -> impl Future<Output = io::Result<u64>> + Send;
    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> + Send;
    /// Makes the file's data durable (not its directory entry: see [`Fs::sync_dir`]).
    fn sync(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn len(&self) -> impl Future<Output = io::Result<u64>> + Send;
}

/// An error of `kind` whose message names the operation and the path.
pub(crate) fn error(kind: io::ErrorKind, op: &str, path: &Path, what: &str) -> io::Error {
    io::Error::new(kind, format!("{op} {}: {what}", path.display()))
}

/// Prefixes an OS error with the operation and the path, keeping its kind.
pub(crate) fn annotate(err: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{op} {}: {err}", path.display()))
}

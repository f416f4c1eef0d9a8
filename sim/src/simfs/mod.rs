//! `SimFs`: the simulated disk. Its contract is `docs/durability-model.md`.

mod compare;
mod content;
mod crash;
mod disk;
mod node;
mod oplog;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, ErrorKind};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub use crash::{
    CrashModel, CrashPlan, PendingOp, PendingTarget, PlanError, SectorFate, Tear, sectors_spanned,
};
pub use disk::SimFsOptions;

pub use oplog::{OpKind, OpOutcome, OpRecord};

use crate::fs::{CreateMode, DirEntry, Fs, FsFile, Metadata, OpenMode, error};
use disk::Disk;
use node::{DataOpKind, EntryOpKind, Ino, Node};

/// A simulated disk. Clones share one disk; [`SimFs::snapshot`] and [`SimFs::crash`] make new
/// ones.
///
/// Every call completes without waiting: the disk adds no latency of its own (the fault layer
/// does), so a run's interleavings are decided by the runtime's scheduler alone.
#[derive(Clone, Debug)]
pub struct SimFs {
    shared: Arc<Mutex<Shared>>,
}

/// Called after every call on the disk, outside its lock, so it may snapshot or crash the disk.
type Observer = Arc<dyn Fn(&SimFs, &OpRecord) + Send + Sync>;

struct Shared {
    disk: Disk,
    log: Vec<OpRecord>,
    /// Open handles per inode: an unlinked file stays alive while one is open.
    open: BTreeMap<Ino, usize>,
    /// Inodes locked by [`Fs::try_lock`] through a live guard. Not part of the disk: a
    /// snapshot or crash image starts with none (a crash kills every holder).
    locks: BTreeSet<Ino>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("disk", &self.disk)
            .field("log", &self.log.len())
            .field("open", &self.open)
            .field("locks", &self.locks)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for SimFs {
    fn default() -> Self {
        Self::new()
    }
}

impl SimFs {
    /// An empty disk holding only `/`, with default options.
    pub fn new() -> Self {
        Self::with_options(SimFsOptions::default())
    }

    pub fn with_options(options: SimFsOptions) -> Self {
        Self::from_disk(Disk::new(options))
    }

    fn from_disk(disk: Disk) -> Self {
        SimFs {
            shared: Arc::new(Mutex::new(Shared {
                disk,
                log: Vec::new(),
                open: BTreeMap::new(),
                locks: BTreeSet::new(),
                observer: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves the disk as the panicking op left it, which is
        // still a consistent state: each op validates before it mutates.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of this disk, as [`SimFs::snapshot`], behaving under `options` from now on.
    pub fn snapshot_with(&self, options: SimFsOptions) -> SimFs {
        let mut disk = self.lock().disk.clone();
        disk.options = options;
        Self::from_disk(disk)
    }

    pub fn options(&self) -> SimFsOptions {
        self.lock().disk.options
    }

    /// A copy of this disk, visible and durable state alike, sharing contents copy-on-write.
    /// Open handles and the op log are not copied.
    pub fn snapshot(&self) -> SimFs {
        Self::from_disk(self.lock().disk.clone())
    }

    /// Whether a process could tell the two disks apart, now or after a crash: `true` when
    /// both hold the same names, kinds, bytes and hard links and neither has anything pending
    /// (as every crash image). Open handles, locks and op logs are not compared.
    pub fn same_settled_state(&self, other: &SimFs) -> bool {
        if Arc::ptr_eq(&self.shared, &other.shared) {
            let shared = self.lock();
            return shared.disk.same_settled_state(&shared.disk);
        }
        // Locked in address order, so two comparisons of the same pair cannot deadlock.
        let (first, second) = if Arc::as_ptr(&self.shared) < Arc::as_ptr(&other.shared) {
            (self, other)
        } else {
            (other, self)
        };
        let (a, b) = (first.lock(), second.lock());
        a.disk.same_settled_state(&b.disk)
    }

    /// The disk a crash leaves under `model`, its choices drawn from `seed`.
    pub fn crash(&self, model: CrashModel, seed: u64) -> SimFs {
        let shared = self.lock();
        let plan = shared.disk.plan(model, seed);
        let image = shared
            .disk
            .image(&plan)
            .expect("a model's own plan is valid");
        Self::from_disk(image)
    }

    /// The plan `model` would choose with `seed`, for inspection or editing.
    pub fn crash_plan(&self, model: CrashModel, seed: u64) -> CrashPlan {
        self.lock().disk.plan(model, seed)
    }

    /// The disk a crash leaves when exactly `plan` survives. Refuses a plan that is not
    /// dependency-closed or names ops that are not pending.
    pub fn crash_with(&self, plan: &CrashPlan) -> Result<SimFs, PlanError> {
        Ok(Self::from_disk(self.lock().disk.image(plan)?))
    }

    /// The ops a crash could still lose, in sequence order.
    pub fn pending_ops(&self) -> Vec<PendingOp> {
        self.lock().disk.pending_ops()
    }

    /// Every call made on this disk so far.
    pub fn op_log(&self) -> Vec<OpRecord> {
        self.lock().log.clone()
    }

    /// The number of calls made on this disk so far.
    pub fn op_count(&self) -> u64 {
        self.lock().log.len() as u64
    }

    /// Logs a call that a layer above the disk answered itself, without reaching it (an
    /// injected error, a lying sync, a crash before the call): the disk does not change, but the
    /// call takes its place in the op log and the observer sees it, so that one numbering names
    /// every call the process made.
    pub fn record_answered(
        &self,
        kind: OpKind,
        path: &Path,
        to: Option<&Path>,
        outcome: Result<(), ErrorKind>,
    ) {
        let _ = self.call(kind, path, to, |_| match outcome {
            Ok(()) => Ok(((), None)),
            Err(kind) => Err(io::Error::from(kind)),
        });
    }

    /// Calls `observer` after every call on this disk (not on its snapshots or crash images),
    /// with the call's log record. It runs outside the disk's lock: it may snapshot the disk or
    /// take a crash image, which is how a harness checks a crash at every step.
    pub fn set_observer(&self, observer: impl Fn(&SimFs, &OpRecord) + Send + Sync + 'static) {
        self.lock().observer = Some(Arc::new(observer));
    }

    /// Every visible path, sorted, with the file's bytes (`None` for a directory).
    pub fn tree(&self) -> BTreeMap<String, Option<Vec<u8>>> {
        self.lock().disk.tree()
    }

    /// Runs `f` on the disk under the lock and logs the call.
    fn call<R>(
        &self,
        kind: OpKind,
        path: &Path,
        to: Option<&Path>,
        f: impl FnOnce(&mut Shared) -> io::Result<(R, Option<u64>)>,
    ) -> io::Result<R> {
        let mut shared = self.lock();
        let result = f(&mut shared);
        let (outcome, size) = match &result {
            Ok((_, size)) => (OpOutcome::Ok, *size),
            Err(e) => (OpOutcome::Err(e.kind()), None),
        };
        let record = OpRecord {
            index: shared.log.len() as u64,
            kind,
            path: path_text(path),
            to: to.map(path_text),
            size,
            outcome,
        };
        let observer = shared.observer.clone();
        match observer {
            Some(observer) => {
                shared.log.push(record.clone());
                drop(shared);
                observer(self, &record);
            }
            None => shared.log.push(record),
        }
        result.map(|(value, _)| value)
    }

    fn handle(&self, shared: &mut Shared, ino: Ino, path: &Path, writable: bool) -> SimFile {
        *shared.open.entry(ino).or_default() += 1;
        SimFile {
            fs: self.clone(),
            ino,
            path: Arc::from(path),
            writable,
        }
    }
}

/// A path as logged: the same text as `display()`, without the formatting machinery or the
/// lossy decoder for the common case (every call of every disk, crash images included, is
/// logged).
fn path_text(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => path.to_string_lossy().into_owned(),
    }
}

/// Whether a rename may replace what is at its target.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Allowed,
    Refused,
}

/// The body of `rename` and `rename_noreplace`. Both push the same entry ops, so a no-replace
/// rename has exactly a rename's crash semantics; the only difference is the check of the
/// target, made under the disk's lock, hence atomic with the move.
fn move_entry(
    shared: &mut Shared,
    from: &Path,
    to: &Path,
    replace: Replace,
) -> io::Result<((), Option<u64>)> {
    let op = match replace {
        Replace::Allowed => "rename",
        Replace::Refused => "rename_noreplace",
    };
    let fail = |kind, what| {
        io::Error::new(
            kind,
            format!("{op} {} -> {}: {what}", from.display(), to.display()),
        )
    };
    let src_names = shared.disk.components(from, op)?;
    let dst_names = shared.disk.components(to, op)?;
    let disk = &mut shared.disk;
    let (src_dir, src_name) = disk.lookup_parent(&src_names, op, from)?;
    let ino = disk
        .entry(src_dir, src_name)
        .ok_or_else(|| fail(ErrorKind::NotFound, "no such file or directory"))?;
    let (dst_dir, dst_name) = disk.lookup_parent(&dst_names, op, to)?;
    let replaced = disk.entry(dst_dir, dst_name);
    // As `renameat2` checks: any entry at the target refuses, even `from`'s own.
    if replace == Replace::Refused && replaced.is_some() {
        return Err(fail(ErrorKind::AlreadyExists, "file exists"));
    }
    if replaced == Some(ino) {
        return Ok(((), None));
    }
    let moving_dir = disk.is_dir(ino);
    if moving_dir && dst_names.starts_with(&src_names) {
        return Err(fail(
            ErrorKind::InvalidInput,
            "cannot move a directory into itself",
        ));
    }
    if let Some(old) = replaced {
        match (moving_dir, disk.is_dir(old)) {
            (false, true) => return Err(fail(ErrorKind::IsADirectory, "is a directory")),
            (true, false) => return Err(fail(ErrorKind::NotADirectory, "not a directory")),
            (true, true) if !disk.dir(old).visible.is_empty() => {
                return Err(fail(ErrorKind::DirectoryNotEmpty, "directory not empty"));
            }
            _ => {}
        }
    }
    if moving_dir && src_dir != dst_dir {
        // Its two halves could persist apart and leave one directory under two names,
        // which no journaling filesystem does; see docs/durability-model.md.
        return Err(fail(
            ErrorKind::Unsupported,
            "the simulated disk does not move a directory to another parent",
        ));
    }
    push_move(disk, (src_dir, src_name), (dst_dir, dst_name), ino);
    disk.maybe_collect(&shared.open);
    Ok(((), None))
}

/// The body of `hard_link`: one `link` op in the target's directory, naming `from`'s inode.
fn link_entry(shared: &mut Shared, from: &Path, to: &Path) -> io::Result<((), Option<u64>)> {
    let fail = |kind, what| {
        io::Error::new(
            kind,
            format!("hard_link {} -> {}: {what}", from.display(), to.display()),
        )
    };
    if shared.disk.options.no_hard_links {
        return Err(fail(
            ErrorKind::PermissionDenied,
            "operation not permitted (no hard links on this filesystem)",
        ));
    }
    let src_names = shared.disk.components(from, "hard_link")?;
    let dst_names = shared.disk.components(to, "hard_link")?;
    let disk = &mut shared.disk;
    let (src_dir, src_name) = disk.lookup_parent(&src_names, "hard_link", from)?;
    let ino = disk
        .entry(src_dir, src_name)
        .ok_or_else(|| fail(ErrorKind::NotFound, "no such file or directory"))?;
    if disk.is_dir(ino) {
        return Err(fail(ErrorKind::PermissionDenied, "is a directory"));
    }
    let (dst_dir, dst_name) = disk.lookup_parent(&dst_names, "hard_link", to)?;
    if disk.entry(dst_dir, dst_name).is_some() {
        return Err(fail(ErrorKind::AlreadyExists, "file exists"));
    }
    let name = dst_name.to_owned();
    disk.push_entry(dst_dir, EntryOpKind::Link { name, ino });
    Ok(((), None))
}

/// The entry ops of a move: one `rename` op inside a directory (it persists whole or not at
/// all), an `unlink` and a `link` between two (they persist independently).
fn push_move(
    disk: &mut Disk,
    (src_dir, src_name): (Ino, &str),
    (dst_dir, dst_name): (Ino, &str),
    ino: Ino,
) {
    if src_dir == dst_dir {
        let (from, to) = (src_name.to_owned(), dst_name.to_owned());
        disk.push_entry(src_dir, EntryOpKind::Rename { from, to, ino });
    } else {
        disk.push_entry(
            src_dir,
            EntryOpKind::Unlink {
                name: src_name.to_owned(),
            },
        );
        disk.push_entry(
            dst_dir,
            EntryOpKind::Link {
                name: dst_name.to_owned(),
                ino,
            },
        );
    }
}

/// An open file on a [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    ino: Ino,
    path: Arc<Path>,
    writable: bool,
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut shared = self.fs.lock();
        if let Some(count) = shared.open.get_mut(&self.ino) {
            *count -= 1;
            if *count == 0 {
                shared.open.remove(&self.ino);
            }
        }
    }
}

/// An exclusive lock on one inode of a [`SimFs`], released when dropped.
#[derive(Debug)]
pub struct SimLock {
    fs: SimFs,
    ino: Ino,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.lock().locks.remove(&self.ino);
    }
}

/// The largest file the simulated disk holds. Contents are kept in memory with one slot per
/// 4 KiB, so the limit bounds what a runaway offset can cost.
pub const MAX_FILE_SIZE: u64 = 16 << 30;

impl SimFile {
    /// Refuses a write or length that ends past `MAX_FILE_SIZE`, before anything changes.
    /// Offsets past `i64::MAX` are invalid, as the kernel's `off_t` makes them on `RealFs`.
    fn check_end(&self, op: &str, start: u64, len: u64) -> io::Result<()> {
        let end = start.checked_add(len).filter(|&end| end <= i64::MAX as u64);
        match end {
            None => Err(error(
                ErrorKind::InvalidInput,
                op,
                &self.path,
                "offset out of range",
            )),
            Some(end) if end > MAX_FILE_SIZE => Err(error(
                ErrorKind::FileTooLarge,
                op,
                &self.path,
                &format!("the simulated disk holds files of at most {MAX_FILE_SIZE} bytes"),
            )),
            Some(_) => Ok(()),
        }
    }

    fn writable(&self, op: &str) -> io::Result<()> {
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

impl SimFile {
    /// A `sync` that fails, as an fsync hit by an I/O error does: the file's pending data is
    /// lost (it never becomes durable, and reads see the durable content again) and the call
    /// returns the error. Logged as a `sync` that failed. A caller that retries the sync and
    /// takes its success as durability of the lost data is wrong, and a crash will show it.
    pub fn fail_sync(&self) -> io::Error {
        let result: io::Result<()> = self.fs.call(OpKind::Sync, &self.path, None, |shared| {
            shared.disk.discard_file(self.ino);
            Err(error(
                ErrorKind::Other,
                "sync",
                &self.path,
                "input/output error; the file's unsynced data is lost",
            ))
        });
        result.expect_err("a failed sync fails")
    }
}

impl Fs for SimFs {
    type File = SimFile;
    type Lock = SimLock;

    async fn create(&self, path: &Path, mode: CreateMode) -> io::Result<SimFile> {
        self.call(OpKind::Create, path, None, |shared| {
            let names = shared.disk.components(path, "create")?;
            let disk = &mut shared.disk;
            let (parent, name) = disk.lookup_parent(&names, "create", path)?;
            let ino = match (disk.entry(parent, name), mode) {
                (Some(_), CreateMode::Exclusive) => {
                    return Err(error(
                        ErrorKind::AlreadyExists,
                        "create",
                        path,
                        "file exists",
                    ));
                }
                (Some(ino), CreateMode::Truncate) => {
                    if disk.is_dir(ino) {
                        return Err(error(
                            ErrorKind::IsADirectory,
                            "create",
                            path,
                            "is a directory",
                        ));
                    }
                    if disk.file(ino).visible.len() > 0 {
                        disk.push_data(ino, DataOpKind::SetLen(0));
                    }
                    ino
                }
                (None, _) => {
                    let ino = disk.new_file();
                    disk.push_entry(
                        parent,
                        EntryOpKind::Link {
                            name: name.to_owned(),
                            ino,
                        },
                    );
                    ino
                }
            };
            Ok((self.handle(shared, ino, path, true), None))
        })
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        self.call(OpKind::Open, path, None, |shared| {
            let names = shared.disk.components(path, "open")?;
            let ino = shared.disk.lookup(&names, "open", path)?;
            if shared.disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::IsADirectory,
                    "open",
                    path,
                    "is a directory",
                ));
            }
            Ok((
                self.handle(shared, ino, path, mode == OpenMode::Write),
                None,
            ))
        })
    }

    async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.call(OpKind::Read, path, None, |shared| {
            let names = shared.disk.components(path, "read")?;
            let ino = shared.disk.lookup(&names, "read", path)?;
            if shared.disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::IsADirectory,
                    "read",
                    path,
                    "is a directory",
                ));
            }
            let bytes = shared.disk.file(ino).visible.to_vec();
            let size = bytes.len() as u64;
            Ok((bytes, Some(size)))
        })
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.call(OpKind::SyncDir, path, None, |shared| {
            let names = shared.disk.components(path, "sync_dir")?;
            let ino = shared.disk.lookup(&names, "sync_dir", path)?;
            if !shared.disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::NotADirectory,
                    "sync_dir",
                    path,
                    "not a directory",
                ));
            }
            shared.disk.sync_dir(ino);
            shared.disk.maybe_collect(&shared.open);
            Ok(((), None))
        })
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(OpKind::Rename, from, Some(to), |shared| {
            move_entry(shared, from, to, Replace::Allowed)
        })
    }

    async fn rename_noreplace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(OpKind::RenameNoReplace, from, Some(to), |shared| {
            move_entry(shared, from, to, Replace::Refused)
        })
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(OpKind::HardLink, from, Some(to), |shared| {
            link_entry(shared, from, to)
        })
    }

    async fn unlink(&self, path: &Path) -> io::Result<()> {
        self.call(OpKind::Unlink, path, None, |shared| {
            let names = shared.disk.components(path, "unlink")?;
            let disk = &mut shared.disk;
            let (parent, name) = disk.lookup_parent(&names, "unlink", path)?;
            let ino = disk
                .entry(parent, name)
                .ok_or_else(|| error(ErrorKind::NotFound, "unlink", path, "no such file"))?;
            if disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::IsADirectory,
                    "unlink",
                    path,
                    "is a directory",
                ));
            }
            disk.push_entry(
                parent,
                EntryOpKind::Unlink {
                    name: name.to_owned(),
                },
            );
            disk.maybe_collect(&shared.open);
            Ok(((), None))
        })
    }

    async fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.call(OpKind::CreateDir, path, None, |shared| {
            let names = shared.disk.components(path, "create_dir")?;
            if names.is_empty() {
                return Err(error(
                    ErrorKind::AlreadyExists,
                    "create_dir",
                    path,
                    "file exists",
                ));
            }
            let disk = &mut shared.disk;
            let (parent, name) = disk.lookup_parent(&names, "create_dir", path)?;
            if disk.entry(parent, name).is_some() {
                return Err(error(
                    ErrorKind::AlreadyExists,
                    "create_dir",
                    path,
                    "file exists",
                ));
            }
            let ino = disk.new_dir();
            disk.push_entry(
                parent,
                EntryOpKind::Link {
                    name: name.to_owned(),
                    ino,
                },
            );
            Ok(((), None))
        })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.call(OpKind::CreateDirAll, path, None, |shared| {
            let names = shared.disk.components(path, "create_dir_all")?;
            let disk = &mut shared.disk;
            let mut dir = node::ROOT;
            for (depth, name) in names.iter().enumerate() {
                dir = match disk.entry(dir, name) {
                    Some(ino) if disk.is_dir(ino) => ino,
                    Some(_) if depth + 1 == names.len() => {
                        return Err(error(
                            ErrorKind::AlreadyExists,
                            "create_dir_all",
                            path,
                            "file exists",
                        ));
                    }
                    Some(_) => {
                        return Err(error(
                            ErrorKind::NotADirectory,
                            "create_dir_all",
                            path,
                            "not a directory",
                        ));
                    }
                    None => {
                        let ino = disk.new_dir();
                        disk.push_entry(
                            dir,
                            EntryOpKind::Link {
                                name: (*name).to_owned(),
                                ino,
                            },
                        );
                        ino
                    }
                };
            }
            Ok(((), None))
        })
    }

    async fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.call(OpKind::RemoveDir, path, None, |shared| {
            let names = shared.disk.components(path, "remove_dir")?;
            let disk = &mut shared.disk;
            let (parent, name) = disk.lookup_parent(&names, "remove_dir", path)?;
            let ino = disk.entry(parent, name).ok_or_else(|| {
                error(ErrorKind::NotFound, "remove_dir", path, "no such directory")
            })?;
            if !disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::NotADirectory,
                    "remove_dir",
                    path,
                    "not a directory",
                ));
            }
            if !disk.dir(ino).visible.is_empty() {
                return Err(error(
                    ErrorKind::DirectoryNotEmpty,
                    "remove_dir",
                    path,
                    "directory not empty",
                ));
            }
            disk.push_entry(
                parent,
                EntryOpKind::Unlink {
                    name: name.to_owned(),
                },
            );
            disk.maybe_collect(&shared.open);
            Ok(((), None))
        })
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.call(OpKind::ListDir, path, None, |shared| {
            let names = shared.disk.components(path, "list_dir")?;
            let disk = &shared.disk;
            let ino = disk.lookup(&names, "list_dir", path)?;
            if !disk.is_dir(ino) {
                return Err(error(
                    ErrorKind::NotADirectory,
                    "list_dir",
                    path,
                    "not a directory",
                ));
            }
            let entries = disk
                .dir(ino)
                .visible
                .iter()
                .map(|(name, &child)| DirEntry {
                    name: name.clone(),
                    is_dir: disk.is_dir(child),
                    is_symlink: false,
                })
                .collect();
            Ok((entries, None))
        })
    }

    async fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.call(OpKind::Metadata, path, None, |shared| {
            let names = shared.disk.components(path, "metadata")?;
            let ino = shared.disk.lookup(&names, "metadata", path)?;
            let meta = match &shared.disk.nodes[&ino] {
                Node::File(file) => Metadata {
                    len: file.visible.len(),
                    is_dir: false,
                    is_symlink: false,
                },
                Node::Dir(_) => Metadata {
                    len: 0,
                    is_dir: true,
                    is_symlink: false,
                },
            };
            Ok((meta, None))
        })
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        self.call(OpKind::Exists, path, None, |shared| {
            let names = shared.disk.components(path, "exists")?;
            match shared.disk.lookup(&names, "exists", path) {
                Ok(_) => Ok((true, None)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok((false, None)),
                Err(e) => Err(e),
            }
        })
    }

    async fn try_lock(&self, path: &Path) -> io::Result<SimLock> {
        self.call(OpKind::Lock, path, None, |shared| {
            let names = shared.disk.components(path, "lock")?;
            let ino = shared.disk.lookup(&names, "lock", path)?;
            if !shared.locks.insert(ino) {
                return Err(error(
                    ErrorKind::WouldBlock,
                    "lock",
                    path,
                    "held by another holder",
                ));
            }
            let lock = SimLock {
                fs: self.clone(),
                ino,
            };
            Ok((lock, None))
        })
    }
}

impl FsFile for SimFile {
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.fs.call(OpKind::Read, &self.path, None, |shared| {
            let bytes = shared.disk.file(self.ino).visible.read(offset, len);
            let size = bytes.len() as u64;
            Ok((bytes, Some(size)))
        })
    }

    async fn read_all(&self) -> io::Result<Vec<u8>> {
        self.fs.call(OpKind::Read, &self.path, None, |shared| {
            let bytes = shared.disk.file(self.ino).visible.to_vec();
            let size = bytes.len() as u64;
            Ok((bytes, Some(size)))
        })
    }

    async fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.fs.call(OpKind::Write, &self.path, None, |shared| {
            self.writable("write")?;
            self.check_end("write", offset, buf.len() as u64)?;
            if !buf.is_empty() {
                let data = Arc::from(buf);
                shared
                    .disk
                    .push_data(self.ino, DataOpKind::Write { offset, data });
            }
            Ok(((), Some(buf.len() as u64)))
        })
    }

    async fn append(&self, buf: &[u8]) -> io::Result<u64> {
        self.fs.call(OpKind::Append, &self.path, None, |shared| {
            self.writable("append")?;
            let offset = shared.disk.file(self.ino).visible.len();
            self.check_end("append", offset, buf.len() as u64)?;
            if !buf.is_empty() {
                let data = Arc::from(buf);
                shared
                    .disk
                    .push_data(self.ino, DataOpKind::Write { offset, data });
            }
            Ok((offset, Some(buf.len() as u64)))
        })
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.call(OpKind::SetLen, &self.path, None, |shared| {
            self.writable("set_len")?;
            self.check_end("set_len", len, 0)?;
            shared.disk.push_data(self.ino, DataOpKind::SetLen(len));
            Ok(((), Some(len)))
        })
    }

    async fn sync(&self) -> io::Result<()> {
        self.fs.call(OpKind::Sync, &self.path, None, |shared| {
            shared.disk.sync_file(self.ino);
            Ok(((), None))
        })
    }

    async fn len(&self) -> io::Result<u64> {
        self.fs.call(OpKind::Len, &self.path, None, |shared| {
            Ok((shared.disk.file(self.ino).visible.len(), None))
        })
    }
}

//! The record of every call made on a `SimFs`.

use std::fmt;
use std::io;

/// The kind of a filesystem call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Create,
    Open,
    Read,
    Write,
    Append,
    SetLen,
    Sync,
    SyncDir,
    Rename,
    /// [`crate::Fs::rename_noreplace`]: a rename refused when its target exists. Its entry
    /// ops, and so its crash semantics, are a rename's.
    RenameNoReplace,
    /// [`crate::Fs::hard_link`]: a second name for a file.
    HardLink,
    Unlink,
    CreateDir,
    CreateDirAll,
    RemoveDir,
    ListDir,
    Metadata,
    Exists,
    Len,
    /// [`crate::Fs::try_lock`]: takes a lock, changing nothing on the disk.
    Lock,
}

impl OpKind {
    /// Whether the call can change the disk (visible or durable state), so that a crash just
    /// before and just after it may differ.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            OpKind::Create
                | OpKind::Write
                | OpKind::Append
                | OpKind::SetLen
                | OpKind::Sync
                | OpKind::SyncDir
                | OpKind::Rename
                | OpKind::RenameNoReplace
                | OpKind::HardLink
                | OpKind::Unlink
                | OpKind::CreateDir
                | OpKind::CreateDirAll
                | OpKind::RemoveDir
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Open => "open",
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Append => "append",
            OpKind::SetLen => "set_len",
            OpKind::Sync => "sync",
            OpKind::SyncDir => "sync_dir",
            OpKind::Rename => "rename",
            OpKind::RenameNoReplace => "rename_noreplace",
            OpKind::HardLink => "hard_link",
            OpKind::Unlink => "unlink",
            OpKind::CreateDir => "create_dir",
            OpKind::CreateDirAll => "create_dir_all",
            OpKind::RemoveDir => "remove_dir",
            OpKind::ListDir => "list_dir",
            OpKind::Metadata => "metadata",
            OpKind::Exists => "exists",
            OpKind::Len => "len",
            OpKind::Lock => "lock",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOutcome {
    Ok,
    Err(io::ErrorKind),
}

/// One logged call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// Position in this disk's log, from 0.
    pub index: u64,
    pub kind: OpKind,
    pub path: String,
    /// The target of a rename or a no-replace rename.
    pub to: Option<String>,
    /// Bytes read or written, or the new length of a `set_len`.
    pub size: Option<u64>,
    pub outcome: OpOutcome,
}

impl fmt::Display for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}", self.index, self.kind, self.path)?;
        if let Some(to) = &self.to {
            write!(f, " -> {to}")?;
        }
        if let Some(size) = self.size {
            write!(f, " ({size} B)")?;
        }
        match self.outcome {
            OpOutcome::Ok => write!(f, " ok"),
            OpOutcome::Err(kind) => write!(f, " err {kind:?}"),
        }
    }
}

//! Before recovery touches anything: the root is ours, one writer holds it, and no symbolic
//! link leads out of it (see `docs/protocol.md`, "Recover", step 0).
//!
//! The order is what keeps a foreign directory untouched: the root is only created if it does
//! not exist; the lock (on the root directory itself, so no file is created for it) is taken
//! before anything in the root is read or written; the marker is written only into a
//! directory that is empty, or holds nothing but a marker's temp file (a store whose creation
//! a crash interrupted); and the symbolic-link check runs before any step that could delete
//! or move a file.

use std::io::ErrorKind;
use std::path::Path;

use tally_sim::{Clock, CreateMode, DirEntry, Fs, FsFile};

use super::Recovery;
use crate::error::{Error, Result};
use crate::layout::{self, Layout, MARKER_CONTENT, MARKER_FILE};

/// Whether an open may create a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A missing or empty root becomes a new store (a writer's open).
    CreateIfNeeded,
    /// The root must already be a store (export, and every reader).
    Existing,
}

/// What the root's entries say it is.
enum Found {
    Store,
    /// A `TALLY` holding a strict prefix of the marker line (empty included): written by
    /// tally, and then torn by a disk that lost synced data (a lying fsync). The store is
    /// ours; a writer writes the marker again.
    TornMarker,
    /// Empty, or only the marker's temp file: a store not yet created, or whose creation a
    /// crash interrupted before the marker's rename was durable.
    Uninitialized,
    Foreign(String),
}

/// The temp name the marker is written under.
fn marker_temp() -> String {
    crate::commit::temp_name(MARKER_FILE)
}

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Step 0: makes sure the root is a tally store this handle alone writes, creating it
    /// under [`Claim::CreateIfNeeded`]. Returns the writer lock, held until dropped.
    pub(super) async fn claim_root(&self, claim: Claim) -> Result<F::Lock> {
        let root = self.layout.root.clone();
        if !self.fs.exists(&root).await? {
            if claim == Claim::Existing {
                return Err(not_a_store(
                    &root,
                    "does not exist: there is no tally store there",
                ));
            }
            let missing = crate::commit::missing_dirs(self.fs, &root).await?;
            self.retry(|| self.fs.create_dir_all(&root)).await?;
            crate::commit::sync_new_dirs(self.fs, &missing).await?;
        }
        let lock = match self.fs.try_lock(&root).await {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(Error::Locked { root }),
            Err(e) => return Err(e.into()),
        };
        let entries = list_root(self.fs, &root).await?;
        match classify(self.fs, self.layout, &entries).await? {
            Found::Store => refuse_symlinks(&root, &entries)?,
            Found::TornMarker => {
                refuse_symlinks(&root, &entries)?;
                tracing::warn!(root = %root.display(), "store marker torn; writing it again");
                self.write_marker().await?;
            }
            Found::Uninitialized if claim == Claim::CreateIfNeeded => self.write_marker().await?,
            Found::Uninitialized => {
                return Err(not_a_store(
                    &root,
                    &format!("is not a tally store (it has no {MARKER_FILE} marker)"),
                ));
            }
            Found::Foreign(what) => return Err(not_a_store(&root, &what)),
        }
        check_own_dirs(self.fs, self.layout, &entries).await?;
        Ok(lock)
    }

    /// Creates the marker: temp, write, sync, rename, `sync_dir ROOT`. A crash before the
    /// rename is durable leaves the root empty or holding only `TALLY.tmp` (any bytes), which
    /// the next open takes as not yet created and writes again.
    async fn write_marker(&self) -> Result<()> {
        let root = &self.layout.root;
        let (temp, marker) = (root.join(marker_temp()), self.layout.marker());
        let file = self.fs.create(&temp, CreateMode::Truncate).await?;
        file.write_at(0, MARKER_CONTENT).await?;
        file.sync().await?;
        drop(file);
        self.retry(|| self.fs.rename(&temp, &marker)).await?;
        self.fs.sync_dir(root).await?;
        Ok(())
    }
}

/// `data/`, `log/` and `quarantine/` hold no symbolic link (the directories themselves were
/// checked with the root's entries).
async fn check_own_dirs<F: Fs>(fs: &F, layout: &Layout, root_entries: &[DirEntry]) -> Result<()> {
    for name in [layout::DATA_DIR, layout::LOG_DIR, layout::QUARANTINE_DIR] {
        if root_entries.iter().any(|e| e.name == name && e.is_dir) {
            let dir = layout.root.join(name);
            let entries = fs.list_dir(&dir).await?;
            refuse_symlinks(&dir, &entries)?;
        }
    }
    Ok(())
}

/// Checks, without changing anything or taking the lock, that `layout.root` is a tally store:
/// what a reader (`verify`, `inspect`) asks before reporting on it.
pub async fn require_store<F: Fs>(fs: &F, layout: &Layout) -> Result<()> {
    let root = &layout.root;
    if !fs.exists(root).await? {
        return Err(not_a_store(
            root,
            "does not exist: there is no tally store there",
        ));
    }
    let entries = list_root(fs, root).await?;
    match classify(fs, layout, &entries).await? {
        Found::Store | Found::TornMarker => {
            refuse_symlinks(root, &entries)?;
            check_own_dirs(fs, layout, &entries).await
        }
        Found::Uninitialized => Err(not_a_store(
            root,
            &format!("is not a tally store (it has no {MARKER_FILE} marker)"),
        )),
        Found::Foreign(what) => Err(not_a_store(root, &what)),
    }
}

/// The root's entries, refusing a root that is not a directory.
async fn list_root<F: Fs>(fs: &F, root: &Path) -> Result<Vec<DirEntry>> {
    match fs.list_dir(root).await {
        Ok(entries) => Ok(entries),
        Err(e) if e.kind() == ErrorKind::NotADirectory => {
            Err(not_a_store(root, "is not a directory"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn classify<F: Fs>(fs: &F, layout: &Layout, entries: &[DirEntry]) -> Result<Found> {
    let temp = marker_temp();
    if let Some(marker) = entries.iter().find(|e| e.name == MARKER_FILE) {
        // The marker is renamed into place only after its bytes were synced: a store's
        // marker is whole, or (if the disk lost synced data) a prefix of its line; any other
        // `TALLY`, a directory or a symbolic link among them, was not written by tally.
        let bytes = if marker.is_dir || marker.is_symlink {
            None
        } else {
            Some(fs.read(&layout.marker()).await?)
        };
        match bytes {
            Some(b) if b == MARKER_CONTENT => return Ok(Found::Store),
            // A prefix (an empty file included) is tally's only in a root holding nothing
            // but tally's names: an empty `TALLY` dropped among a user's files claims nothing.
            Some(b)
                if MARKER_CONTENT.starts_with(&b)
                    && entries.iter().all(|e| layout::is_root_entry(&e.name)) =>
            {
                return Ok(Found::TornMarker);
            }
            _ => {}
        }
        return Ok(Found::Foreign(format!(
            "holds a {MARKER_FILE} that is not a tally store marker; \
             tally only opens an empty directory or its own store"
        )));
    }
    // A symbolic link under the temp's name is not tally's: writing the marker through it
    // would write outside the root.
    if entries
        .iter()
        .all(|e| e.name == temp && !e.is_dir && !e.is_symlink)
    {
        return Ok(Found::Uninitialized);
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).take(3).collect();
    if entries.len() > 3 {
        names.push("...");
    }
    Ok(Found::Foreign(format!(
        "is not empty and is not a tally store (it holds {}); \
         tally only opens an empty directory or its own store",
        names.join(", ")
    )))
}

fn refuse_symlinks(dir: &Path, entries: &[DirEntry]) -> Result<()> {
    match entries.iter().find(|e| e.is_symlink) {
        Some(link) => Err(Error::Symlink {
            path: dir.join(&link.name),
        }),
        None => Ok(()),
    }
}

fn not_a_store(root: &Path, detail: &str) -> Error {
    Error::NotAStore {
        root: root.to_path_buf(),
        detail: detail.to_string(),
    }
}

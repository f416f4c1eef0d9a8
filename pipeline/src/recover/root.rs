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
                    &format!(
                        "is not a tally store (it has no {}/{MARKER_FILE} marker)",
                        layout::PRIVATE_DIR
                    ),
                ));
            }
            Found::Foreign(what) => return Err(not_a_store(&root, &what)),
        }
        check_own_dirs(self.fs, self.layout).await?;
        Ok(lock)
    }

    /// Creates the marker: `_tally/` (then `sync_dir ROOT`), then temp, write, sync, rename,
    /// `sync_dir _tally/`. A crash before the rename is durable leaves the root empty or
    /// holding only `_tally/`, itself empty or holding only `TALLY.tmp` (any bytes), which the
    /// next open takes as not yet created and writes again.
    async fn write_marker(&self) -> Result<()> {
        let private = self.layout.private_dir();
        if self.ensure_dir(&private).await? {
            self.fs.sync_dir(&self.layout.root).await?;
        }
        let (temp, marker) = (private.join(marker_temp()), self.layout.marker());
        let file = self.fs.create(&temp, CreateMode::Truncate).await?;
        file.write_at(0, MARKER_CONTENT).await?;
        file.sync().await?;
        drop(file);
        self.retry(|| self.fs.rename(&temp, &marker)).await?;
        self.fs.sync_dir(&private).await?;
        Ok(())
    }
}

/// `data/`, `_delta_log/`, `_tally/`, `_tally/log/` and `_tally/quarantine/` hold no
/// symbolic link (the root's entries were checked by the caller; each directory is checked
/// before what it holds is listed).
async fn check_own_dirs<F: Fs>(fs: &F, layout: &Layout) -> Result<()> {
    for dir in [
        layout.data_dir(),
        layout.delta_log_dir(),
        layout.private_dir(),
        layout.log_dir(),
        layout.quarantine_dir(),
    ] {
        match fs.list_dir(&dir).await {
            Ok(entries) => refuse_symlinks(&dir, &entries)?,
            Err(e) if crate::fsutil::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
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
            check_own_dirs(fs, layout).await
        }
        Found::Uninitialized => Err(not_a_store(
            root,
            &format!(
                "is not a tally store (it has no {}/{MARKER_FILE} marker)",
                layout::PRIVATE_DIR
            ),
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
    match entries.iter().find(|e| e.name == layout::PRIVATE_DIR) {
        Some(private) if private.is_symlink => Err(Error::Symlink {
            path: layout.private_dir(),
        }),
        Some(private) if private.is_dir => {
            let inside = fs.list_dir(&layout.private_dir()).await?;
            classify_private(fs, layout, entries, &inside).await
        }
        Some(_) => Ok(Found::Foreign(format!(
            "holds a {} that is not a directory; tally only opens an empty directory or its own store",
            layout::PRIVATE_DIR
        ))),
        None if entries.is_empty() => Ok(Found::Uninitialized),
        None => Ok(Found::Foreign(foreign_root(fs, layout, entries).await?)),
    }
}

/// What `_tally/` says: a store (its marker whole, or torn), one whose creation a crash
/// interrupted, or not tally's.
async fn classify_private<F: Fs>(
    fs: &F,
    layout: &Layout,
    root_entries: &[DirEntry],
    private_entries: &[DirEntry],
) -> Result<Found> {
    if let Some(marker) = private_entries.iter().find(|e| e.name == MARKER_FILE) {
        // The marker is renamed into place only after its bytes were synced: a store's
        // marker is whole, or (if the disk lost synced data) a prefix of its line; any other
        // `TALLY`, a directory or a symbolic link among them, was not written by tally.
        let bytes = if marker.is_dir || marker.is_symlink {
            None
        } else {
            Some(fs.read(&layout.marker()).await?)
        };
        return Ok(match bytes {
            Some(b) if b == MARKER_CONTENT => Found::Store,
            // A prefix (an empty file included) is tally's only where every name is tally's:
            // an empty `TALLY` dropped among a user's files claims nothing.
            Some(b)
                if MARKER_CONTENT.starts_with(&b)
                    && root_entries.iter().all(|e| layout::is_root_entry(&e.name))
                    && private_entries
                        .iter()
                        .all(|e| layout::is_private_entry(&e.name)) =>
            {
                Found::TornMarker
            }
            Some(b) => Found::Foreign(other_marker(&b)),
            None => Found::Foreign(other_marker(b"")),
        });
    }
    // A symbolic link under the temp's name is not tally's: writing the marker through it
    // would write outside the root.
    let temp = marker_temp();
    if root_entries.len() == 1
        && private_entries
            .iter()
            .all(|e| e.name == temp && !e.is_dir && !e.is_symlink)
    {
        return Ok(Found::Uninitialized);
    }
    Ok(Found::Foreign(format!(
        "holds a {} without a {MARKER_FILE} marker: it is not a tally store",
        layout::PRIVATE_DIR
    )))
}

/// Why a marker that is not this format's is refused: a store of another format version
/// is named as such.
fn other_marker(bytes: &[u8]) -> String {
    match bytes.strip_prefix(b"tally-store ") {
        Some(version) => format!(
            "is a tally store of format {}, which this tally (format 2) does not open; \
             re-ingest its sources into a new root",
            String::from_utf8_lossy(version).trim()
        ),
        None => format!(
            "holds a {}/{MARKER_FILE} that is not a tally store marker; \
             tally only opens an empty directory or its own store",
            layout::PRIVATE_DIR
        ),
    }
}

/// Why a non-empty root without `_tally/` is refused: a store of tally's first format kept
/// its marker in the root, and is named as such.
async fn foreign_root<F: Fs>(fs: &F, layout: &Layout, entries: &[DirEntry]) -> Result<String> {
    if entries
        .iter()
        .any(|e| e.name == MARKER_FILE && !e.is_dir && !e.is_symlink)
    {
        let bytes = fs.read(&layout.root.join(MARKER_FILE)).await?;
        if bytes.starts_with(b"tally-store ") {
            return Ok(other_marker(&bytes));
        }
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).take(3).collect();
    if entries.len() > 3 {
        names.push("...");
    }
    Ok(format!(
        "is not empty and is not a tally store (it holds {}); \
         tally only opens an empty directory or its own store",
        names.join(", ")
    ))
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

//! Durable, atomic replacement of one file.
//!
//! Crash argument, step by step (see `docs/durability-model.md` for the rules used):
//!
//! 1. `create(dir/name.tmp)`, `write` — a crash leaves the old `name` untouched, and perhaps a
//!    partial `name.tmp`, which the next replacement truncates.
//! 2. `sync(tmp)` — the new bytes are durable before any name can point at them; without it
//!    the rename below could persist ahead of the data and a crash would publish an empty or
//!    torn file.
//! 3. `rename(tmp, name)` — atomic for readers, but not yet durable: a crash may still show
//!    the old `name` (and the complete `name.tmp`).
//! 4. `sync_dir(dir)` — the rename is durable. Only now may the caller acknowledge.
//!
//! At every point a crash leaves `name` holding either the old bytes or the new ones, whole.

use std::io;
use std::path::{Path, PathBuf};

use tally_sim::{CreateMode, Fs, FsFile};

/// The temporary name a replacement of `name` writes first.
pub fn temp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// Atomically and durably replaces `dir/name` with `bytes`. When this returns `Ok`, the new
/// bytes survive any crash; if it fails or a crash interrupts it, `dir/name` holds its old
/// bytes or the new ones, never a mix.
pub async fn replace_file<F: Fs>(fs: &F, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(temp_name(name));
    let file = fs.create(&temp, CreateMode::Truncate).await?;
    file.write_at(0, bytes).await?;
    file.sync().await?;
    drop(file);
    tally_sim::probe!("replace.synced");
    fs.rename(&temp, &dir.join(name)).await?;
    tally_sim::probe!("replace.renamed");
    fs.sync_dir(dir).await
}

/// The directories `create_dir_all(dir)` would create: `dir` and its missing ancestors,
/// deepest first.
pub async fn missing_dirs<F: Fs>(fs: &F, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(d) = current.filter(|d| !d.as_os_str().is_empty()) {
        if fs.exists(d).await? {
            break;
        }
        missing.push(d.to_path_buf());
        current = d.parent();
    }
    Ok(missing)
}

/// Makes the entries of directories just created durable: syncs the parent of each, the
/// shallowest first. Without it a crash could lose a new directory, and all it holds, however
/// well its files were synced.
pub async fn sync_new_dirs<F: Fs>(fs: &F, created: &[PathBuf]) -> io::Result<()> {
    for dir in created.iter().rev() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent).await?;
        }
    }
    Ok(())
}

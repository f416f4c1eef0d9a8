//! The Delta log on disk: listing and replaying its commits into the table's state, and
//! writing the next one (create-if-absent, made durable).

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use tally_sim::{CreateMode, Fs, FsFile};

use super::checkpoint::{self, BadCheckpoint, Seal};
use super::commit::{self, Unreadable};
use crate::damage::DamagedManifest;
use crate::error::Result;
use crate::fsutil::is_not_found;
use crate::layout::{self, Layout};
use crate::manifest::Manifest;

/// What replaying the log found.
#[derive(Debug)]
pub struct Replayed {
    /// The state after the newest readable commit of an unbroken run from commit 0, or from
    /// the checkpoint replay started from ([`Manifest::empty`] if there is none).
    pub table: Manifest,
    /// Whether any commit was read: `false` for a table not created yet.
    pub created: bool,
    /// Commits at or after the first one that cannot be read (or is missing while a later
    /// one exists), newest first. Empty for an undamaged log.
    pub damaged: Vec<DamagedManifest>,
    /// The checkpoint replay started from (the newest usable one at or below the target),
    /// with its seal.
    pub checkpoint: Option<Seal>,
    /// Checkpoints newer than that one that cannot be used (torn, damaged, not tally's, or
    /// not made from the log's commit of their version), newest first. Replay went on without
    /// them: the commits hold the truth.
    pub bad_checkpoints: Vec<BadCheckpoint>,
    /// Whether `_delta_log/` holds a `_last_checkpoint` (read only by who must check it).
    pub last_checkpoint_listed: bool,
}

/// What `_delta_log/` holds, from one listing: commit and checkpoint versions in increasing
/// order, and whether `_last_checkpoint` is there.
#[derive(Debug, Default)]
pub struct Listing {
    pub commits: Vec<u64>,
    pub checkpoints: Vec<u64>,
    pub last_checkpoint: bool,
}

/// Lists `_delta_log/` once (nothing if the directory is missing).
pub async fn list<F: Fs>(fs: &F, layout: &Layout) -> Result<Listing> {
    let entries = match fs.list_dir(&layout.delta_log_dir()).await {
        Ok(entries) => entries,
        Err(e) if is_not_found(&e) => return Ok(Listing::default()),
        Err(e) => return Err(e.into()),
    };
    let mut listing = Listing::default();
    for entry in entries.iter().filter(|e| !e.is_dir) {
        if let Some(v) = layout::parse_commit_name(&entry.name) {
            listing.commits.push(v);
        } else if let Some(v) = layout::parse_checkpoint_name(&entry.name) {
            listing.checkpoints.push(v);
        } else if entry.name == layout::LAST_CHECKPOINT {
            listing.last_checkpoint = true;
        }
    }
    listing.commits.sort_unstable();
    listing.checkpoints.sort_unstable();
    Ok(listing)
}

/// The versions of every commit in `_delta_log/`, in increasing order (none if the directory
/// is missing).
pub async fn commit_versions<F: Fs>(fs: &F, layout: &Layout) -> Result<Vec<u64>> {
    Ok(list(fs, layout).await?.commits)
}

/// Replays the log, changing nothing: from the newest usable checkpoint (or from commit 0),
/// then every commit after it. A commit that cannot be read, or a gap in the versions, ends
/// the readable run: it and every later commit are reported damaged. No crash leaves either
/// (a commit is named only once its bytes are synced, and the next one is written only once
/// its name is durable).
pub async fn replay<F: Fs>(fs: &F, layout: &Layout) -> Result<Replayed> {
    replay_through(fs, layout, u64::MAX).await
}

/// [`replay`] of the commits up to `version` only: the table as it was at that version (time
/// travel), or at the newest one if the log ends before it.
pub async fn replay_through<F: Fs>(fs: &F, layout: &Layout, version: u64) -> Result<Replayed> {
    let listing = list(fs, layout).await?;
    let mut bad_checkpoints = Vec::new();
    let start = checkpoint::newest_good(
        fs,
        layout,
        &listing.checkpoints,
        version,
        &mut bad_checkpoints,
    )
    .await?;
    let (table, seal) = match start {
        Some(c) => (Some(c.table), Some(c.seal)),
        None => (None, None),
    };
    let mut replayed = replay_listed(fs, layout, listing.commits, table, version).await?;
    replayed.checkpoint = seal;
    replayed.bad_checkpoints = bad_checkpoints;
    replayed.last_checkpoint_listed = listing.last_checkpoint;
    Ok(replayed)
}

/// Replays the commits from 0 through `version`, ignoring every checkpoint: what `tally
/// verify` compares checkpoints with.
pub async fn replay_commits_through<F: Fs>(
    fs: &F,
    layout: &Layout,
    version: u64,
) -> Result<Replayed> {
    replay_commits(fs, layout, None, version).await
}

/// Applies the commits after `start` (from 0 without one) through `version`.
pub(crate) async fn replay_commits<F: Fs>(
    fs: &F,
    layout: &Layout,
    start: Option<Manifest>,
    version: u64,
) -> Result<Replayed> {
    let versions = commit_versions(fs, layout).await?;
    replay_listed(fs, layout, versions, start, version).await
}

/// [`replay_commits`] over the commit `versions` listed.
async fn replay_listed<F: Fs>(
    fs: &F,
    layout: &Layout,
    mut versions: Vec<u64>,
    start: Option<Manifest>,
    version: u64,
) -> Result<Replayed> {
    let first = start.as_ref().map_or(0, |t| t.version + 1);
    versions.retain(|&v| v >= first && v <= version);
    let mut table = start;
    let mut broken: Option<(usize, String)> = None;
    for (at, &version) in versions.iter().enumerate() {
        let expected = first + at as u64;
        if version != expected {
            broken = Some((at, format!("commit {expected} is missing")));
            break;
        }
        // A clone, so that the state before an unreadable commit is kept: it is the last good
        // version.
        match read_commit(fs, layout, table.clone(), version).await? {
            Ok(next) => table = Some(next),
            Err(why) => {
                broken = Some((at, why.0));
                break;
            }
        }
    }
    let created = table.is_some();
    let mut damaged = Vec::new();
    if let Some((at, reason)) = broken {
        let first = versions[at];
        for &version in versions[at..].iter().rev() {
            damaged.push(DamagedManifest {
                file: format!("{}/{}", layout::DELTA_LOG_DIR, layout::commit_name(version)),
                reason: if version == first {
                    reason.clone()
                } else {
                    format!("follows commit {first}, which cannot be read")
                },
            });
        }
    }
    Ok(Replayed {
        table: table.unwrap_or_else(Manifest::empty),
        created,
        damaged,
        checkpoint: None,
        bad_checkpoints: Vec::new(),
        last_checkpoint_listed: false,
    })
}

/// Reads and applies commit `version`: `Ok(Err(why))` if it cannot be read as tally wrote it
/// (including a file gone since the listing: only a rollback removes commits).
async fn read_commit<F: Fs>(
    fs: &F,
    layout: &Layout,
    table: Option<Manifest>,
    version: u64,
) -> Result<std::result::Result<Manifest, Unreadable>> {
    let bytes = match fs.read(&layout.commit(version)).await {
        Ok(bytes) => bytes,
        Err(e) if is_not_found(&e) => return Ok(Err(Unreadable("it is missing".into()))),
        Err(e) => return Err(e.into()),
    };
    Ok(commit::decode(&bytes).and_then(|actions| commit::apply(table, version, actions)))
}

/// Makes `bytes` commit `version`, durably, only if no commit of that version exists:
/// `create _commit_<v>.json.tmp`, `write`, `sync`, `rename_noreplace → <v>.json`, `sync_dir
/// _delta_log/`. A taken version fails with `AlreadyExists` (the temp file removed) and
/// changes nothing: tally is one writer per root, and never replaces a commit.
pub async fn write_commit<F: Fs>(
    fs: &F,
    layout: &Layout,
    version: u64,
    bytes: &[u8],
) -> io::Result<()> {
    write_commit_steps(fs, layout, version, bytes, true).await
}

/// [`write_commit`], whose last step (the directory's sync) the `commit_dir_unsynced` twin
/// leaves out: every other caller syncs.
pub(crate) async fn write_commit_steps<F: Fs>(
    fs: &F,
    layout: &Layout,
    version: u64,
    bytes: &[u8],
    sync_dir: bool,
) -> io::Result<()> {
    let temp = layout.commit_temp(version);
    let file = fs.create(&temp, CreateMode::Truncate).await?;
    file.write_at(0, bytes).await?;
    file.sync().await?;
    drop(file);
    tally_sim::probe!("commit.synced");
    let target = layout.commit(version);
    if let Err(e) = fs.rename_noreplace(&temp, &target).await {
        if e.kind() == io::ErrorKind::AlreadyExists {
            tally_sim::probe!("commit.version-taken");
            let _ = fs.unlink(&temp).await;
        }
        return Err(e);
    }
    tally_sim::probe!("commit.renamed");
    if sync_dir {
        fs.sync_dir(&layout.delta_log_dir()).await?;
    }
    tally_sim::probe!("commit.durable");
    Ok(())
}

/// Milliseconds since the Unix epoch of a clock reading (negative before it), as Delta's
/// timestamps count.
pub fn millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

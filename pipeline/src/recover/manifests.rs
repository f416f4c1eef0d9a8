//! Recovery steps 2 and 3: replay the Delta log into the current state (from the newest
//! usable checkpoint; creating the table if no commit exists), setting unusable checkpoints
//! aside, and check that what it publishes is on disk.

use tally_sim::{Clock, Fs};

use super::Recovery;
use crate::damage::{AtRisk, Damage, DamagedManifest};
use crate::delta;
use crate::error::{Error, Result};
use crate::fsutil::is_not_found;
use crate::layout::{self, Layout};
use crate::manifest::{Leftover, Manifest, StoreDir};
use crate::table;

/// What rolling back from `damaged` to `last_good` loses: the table files in `data/` that
/// `last_good` does not reference, described by their footers (no data page is read).
/// Changes nothing; `tally verify` reports it too.
pub(crate) async fn assess_damage<F: Fs>(
    fs: &F,
    layout: &Layout,
    last_good: &Manifest,
    damaged: Vec<DamagedManifest>,
) -> Result<Damage> {
    let data = layout.data_dir();
    let mut names: Vec<String> = fs
        .list_dir(&data)
        .await?
        .into_iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.name)
        .collect();
    names.sort_unstable();
    let mut at_risk = Vec::new();
    for name in names {
        let Some(Leftover::Unreferenced { id }) =
            last_good.leftover(StoreDir::Data, &name, |_| false)
        else {
            continue;
        };
        let (level, _) = layout::parse_table_file_name(&name).expect("an unreferenced table file");
        let mut risk = AtRisk {
            file: format!("data/{name}"),
            level,
            id,
            rows: None,
            seq: None,
            unreadable: None,
        };
        match table::read_footer(fs, &data.join(&name)).await {
            Ok(footer) => {
                risk.rows = Some(footer.rows);
                risk.seq = footer.seq_min.zip(footer.seq_max);
            }
            Err(e @ Error::Corrupt { .. }) => risk.unreadable = Some(e.to_string()),
            Err(e) => return Err(e),
        }
        at_risk.push(risk);
    }
    Ok(Damage {
        root: layout.root.display().to_string(),
        damaged,
        last_good_version: last_good.version,
        rows_at_risk: at_risk.iter().filter_map(|r| r.rows).sum(),
        at_risk,
    })
}

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Step 2: the state after the newest commit is current. If a commit (and so every one
    /// after it) cannot be read, the store's commit point is damaged: opening refuses, saying
    /// what a rollback to the last readable version would lose, unless the loss is accepted
    /// (then it rolls back, setting the damaged commits and the files only they may reference
    /// aside). With no commit at all, commit 0 creates the table.
    pub(super) async fn pick_manifest(&mut self) -> Result<Manifest> {
        let mut replayed = delta::replay(self.fs, self.layout).await?;
        let current = std::mem::replace(&mut replayed.table, Manifest::empty());
        let mut created = replayed.created;
        if !replayed.damaged.is_empty() {
            // Decided before anything is removed: a refusal changes nothing on disk.
            let damaged = std::mem::take(&mut replayed.damaged);
            self.roll_back(&current, damaged).await?;
            created = current.version > 0 || created;
        }
        self.report.checkpoint = replayed.checkpoint.as_ref().map(|s| s.version);
        if self.report.checkpoint.is_some() {
            tally_sim::probe!("recover.from-checkpoint");
        }
        self.repair_checkpoints(&replayed).await?;
        if created {
            return Ok(current);
        }
        self.create_table().await
    }

    /// Sets every checkpoint replay could not use aside (engines fail on a torn checkpoint
    /// under its name, even with every commit there), then makes `_last_checkpoint` name the
    /// one it started from, `newest` (or removes it when there is none): a hint naming a bad
    /// or missing checkpoint breaks every engine too. Both durable before the store opens;
    /// the commits are untouched, so nothing published is lost.
    async fn repair_checkpoints(&mut self, replayed: &delta::Replayed) -> Result<()> {
        let newest = replayed.checkpoint.as_ref();
        let log_dir = self.layout.delta_log_dir();
        for checkpoint in &replayed.bad_checkpoints {
            let name = layout::checkpoint_name(checkpoint.version);
            let reason = format!("checkpoint not used: {}", checkpoint.reason);
            self.quarantine(&log_dir, &name, reason).await?;
        }
        // Read only when listed: a store without checkpoints costs no operation here.
        let hint = match replayed.last_checkpoint_listed {
            true => delta::checkpoint::read_hint(self.fs, self.layout).await?,
            false => None,
        };
        let wanted = newest.map(delta::checkpoint::hint_bytes);
        if hint == wanted {
            return Ok(());
        }
        let was = hint.map_or_else(
            || "missing".to_string(),
            |h| format!("{:?}", String::from_utf8_lossy(&h)),
        );
        delta::checkpoint::write_hint(self.fs, self.layout, newest).await?;
        let now = wanted.map_or_else(
            || "removed".to_string(),
            |h| format!("{:?}", String::from_utf8_lossy(&h)),
        );
        tracing::warn!(%was, %now, "repaired _last_checkpoint");
        tally_sim::probe!("recover.last-checkpoint-repaired");
        self.report.last_checkpoint_repaired = Some(format!("was {was}, now {now}"));
        Ok(())
    }

    /// Commit 0: the protocol, the table's metadata (no user column yet) and tally's empty
    /// state. Before it is durable no row can have been acknowledged (ingest starts after
    /// recovery), so a crash loses nothing and the next open writes it again.
    async fn create_table(&mut self) -> Result<Manifest> {
        let now = self.clock.now();
        let now_ms = delta::millis(now);
        let mut table = Manifest::empty();
        table.table_id = table_id(&self.layout.root, now_ms);
        let bytes = delta::commit::encode(None, &table, now_ms)
            .expect("a table without user columns always has a Delta schema");
        delta::write_commit(self.fs, self.layout, 0, &bytes).await?;
        tally_sim::probe!("recover.table-created");
        self.report.table_created = true;
        Ok(table)
    }

    /// Refuses with `Error::Damaged`, or with `accept_loss` rolls back to `last_good`: the
    /// table files it does not reference are set aside first, then the damaged manifests, so
    /// that a crash in between leaves the damage in place (the next open refuses again)
    /// rather than files only the damaged version referenced as orphans to delete.
    async fn roll_back(
        &mut self,
        last_good: &Manifest,
        damaged: Vec<DamagedManifest>,
    ) -> Result<()> {
        let damage = assess_damage(self.fs, self.layout, last_good, damaged).await?;
        if !self.options.accept_loss {
            return Err(Error::Damaged(Box::new(damage)));
        }
        tracing::warn!(
            last_good = damage.last_good_version,
            rows_at_risk = damage.rows_at_risk,
            "rolling back over a damaged manifest: the loss was accepted"
        );
        if self.twins.rollback_commits_first {
            self.set_damaged_commits_aside(&damage).await?;
        }
        let data = self.layout.data_dir();
        for file in &damage.at_risk {
            let name = layout::table_file_name(file.level, file.id);
            let reason = format!(
                "referenced by no readable commit: rolled back to version {}",
                damage.last_good_version
            );
            self.quarantine(&data, &name, reason).await?;
        }
        if !self.twins.rollback_commits_first {
            self.set_damaged_commits_aside(&damage).await?;
        }
        tally_sim::probe!("recover.rolled-back");
        self.report.rolled_back = Some(damage);
        Ok(())
    }

    /// Newest first: a crash part way leaves the oldest damaged commit in place, and the next
    /// open refuses again.
    async fn set_damaged_commits_aside(&mut self, damage: &Damage) -> Result<()> {
        let log_dir = self.layout.delta_log_dir();
        for commit in &damage.damaged {
            let name = commit.file.rsplit('/').next().unwrap_or(&commit.file);
            self.quarantine(&log_dir, name, commit.reason.clone())
                .await?;
        }
        Ok(())
    }

    /// Step 3: the manifest's files hold the rows its ledger records, and each is on disk with
    /// a footer agreeing with its entry. Otherwise acknowledged rows are gone: fail closed.
    pub(super) async fn check_published(&self, manifest: &Manifest) -> Result<()> {
        if self.twins.no_restart_check {
            return Ok(());
        }
        // A manifest no publish could have written (its checksum was recomputed over damage,
        // or a bug wrote it) is not guessed around: fail closed, naming it.
        if let Err(why) = manifest.check_files() {
            let path = self.layout.commit(manifest.version);
            return Err(Error::corrupt(
                &path,
                format!(
                    "the table at version {}: {why}; no publish writes such a state. Way out: \
                     restore the log from a backup; the store is not opened over it",
                    manifest.version
                ),
            ));
        }
        let source_rows = manifest.source_rows();
        if manifest.rows() != source_rows {
            return Err(Error::MissingRows {
                acknowledged: source_rows,
                found: manifest.rows(),
                detail: format!(
                    "version {} lists files holding {} rows but its ledger records {}",
                    manifest.version,
                    manifest.rows(),
                    source_rows
                ),
            });
        }
        let mut missing = Vec::new();
        let mut found = 0;
        for entry in &manifest.files {
            let path = self.layout.table_file(entry.level, entry.id);
            let name = self.relative(&path);
            match table::read_footer(self.fs, &path).await {
                Ok(footer) => match footer.disagreement(entry) {
                    None => found += entry.rows,
                    Some(why) => missing.push(format!("{name}: {why}")),
                },
                Err(Error::Io { source }) if is_not_found(&source) => {
                    missing.push(format!("{name} ({} rows) is missing", entry.rows));
                }
                Err(Error::Corrupt { detail, .. }) => {
                    missing.push(format!(
                        "{name} ({} rows) is unreadable: {detail}",
                        entry.rows
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::MissingRows {
            acknowledged: manifest.rows(),
            found,
            detail: format!("version {}: {}", manifest.version, missing.join("; ")),
        })
    }
}

/// A Delta table id (`metaData.id`) in the form of a UUID, derived from the root and the time
/// of creation: no randomness, so a simulated run is reproducible from its seed.
fn table_id(root: &std::path::Path, now_ms: i64) -> String {
    let path = root.display().to_string();
    let a = crc32c::crc32c(path.as_bytes());
    let b = crc32c::crc32c(&now_ms.to_le_bytes());
    let c = crc32c::crc32c_append(a, &now_ms.to_le_bytes());
    let d = crc32c::crc32c_append(b, path.as_bytes());
    format!(
        "{a:08x}-{:04x}-4{:03x}-8{:03x}-{:04x}{d:08x}",
        b >> 16,
        b & 0xfff,
        c >> 20,
        c & 0xffff
    )
}

//! Recovery steps 2 and 3: choose the current manifest, and check that what it publishes is
//! on disk.

use tally_sim::{Clock, Fs};

use super::Recovery;
use crate::damage::{AtRisk, Damage, DamagedManifest};
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
        let Some(Leftover::Unreferenced { id }) = last_good.leftover(StoreDir::Data, &name) else {
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
    /// Step 2: the newest manifest is current. If it (or several newest ones) cannot be read,
    /// the store's commit point is damaged: opening refuses, saying what a rollback to the
    /// newest readable version would lose, unless the loss is accepted (then it rolls back,
    /// setting the damaged manifests and the files only they may reference aside). Versions
    /// older than the one before the current are removed.
    pub(super) async fn pick_manifest(&mut self) -> Result<Manifest> {
        let root = self.layout.root.clone();
        let versions = crate::read::manifest_versions(self.fs, self.layout).await?;
        let mut current = None;
        let mut damaged = Vec::new();
        for &version in &versions {
            let name = layout::manifest_name(version);
            let bytes = self.fs.read(&root.join(&name)).await?;
            match Manifest::decode_version(&bytes, version) {
                Ok(m) => {
                    current = Some(m);
                    break;
                }
                Err(reason) => damaged.push(DamagedManifest { file: name, reason }),
            }
        }
        let current = current.unwrap_or_else(Manifest::empty);
        if !damaged.is_empty() {
            // Decided before anything is removed: a refusal changes nothing on disk.
            self.roll_back(&current, damaged).await?;
        }
        // Keep the version before the current one; older ones are superseded.
        let superseded: Vec<u64> = versions
            .into_iter()
            .filter(|&v| v + 1 < current.version)
            .collect();
        for &version in &superseded {
            let name = layout::manifest_name(version);
            self.remove(&root.join(&name)).await?;
            self.report.old_manifests_removed.push(name);
        }
        if !superseded.is_empty() {
            self.fs.sync_dir(&root).await?;
        }
        Ok(current)
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
        let data = self.layout.data_dir();
        for file in &damage.at_risk {
            let name = layout::table_file_name(file.level, file.id);
            let reason = format!(
                "referenced by no readable manifest: rolled back to version {}",
                damage.last_good_version
            );
            self.quarantine(&data, &name, reason).await?;
        }
        let root = self.layout.root.clone();
        for manifest in &damage.damaged {
            self.quarantine(&root, &manifest.file, manifest.reason.clone())
                .await?;
        }
        self.report.rolled_back = Some(damage);
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
            let path = self.layout.manifest(manifest.version);
            return Err(Error::corrupt(
                &path,
                format!(
                    "{why}; no publish writes such a manifest. Way out: restore it from a \
                     backup; the store is not opened over it"
                ),
            ));
        }
        let source_rows = manifest.source_rows();
        if manifest.rows() != source_rows {
            return Err(Error::MissingRows {
                acknowledged: source_rows,
                found: manifest.rows(),
                detail: format!(
                    "manifest version {} lists files holding {} rows but its ledger records {}",
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
            detail: format!(
                "manifest version {}: {}",
                manifest.version,
                missing.join("; ")
            ),
        })
    }
}

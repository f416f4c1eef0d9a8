//! Recovery steps 2 and 3: choose the current manifest, and check that what it publishes is
//! on disk.

use tally_sim::{Clock, Fs};

use super::Recovery;
use crate::error::{Error, Result};
use crate::fsutil::is_not_found;
use crate::layout;
use crate::manifest::Manifest;
use crate::table;

impl<F: Fs, C: Clock> Recovery<'_, F, C> {
    /// Step 2: the newest valid manifest is current; newer invalid ones are quarantined,
    /// versions older than the one before it removed.
    pub(super) async fn pick_manifest(&mut self) -> Result<Manifest> {
        let root = self.layout.root.clone();
        let versions = crate::read::manifest_versions(self.fs, self.layout).await?;
        let mut current: Option<Manifest> = None;
        let mut removed_any = false;
        for version in versions {
            let name = layout::manifest_name(version);
            if let Some(m) = &current {
                // Keep the version before the current one; older ones are superseded.
                if version + 1 < m.version {
                    self.remove(&root.join(&name)).await?;
                    self.report.old_manifests_removed.push(name);
                    removed_any = true;
                }
                continue;
            }
            let bytes = self.fs.read(&root.join(&name)).await?;
            match Manifest::decode_version(&bytes, version) {
                Ok(m) => current = Some(m),
                Err(reason) => self.quarantine(&root, &name, reason).await?,
            }
        }
        if removed_any {
            self.fs.sync_dir(&root).await?;
        }
        Ok(current.unwrap_or_else(Manifest::empty))
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

//! Publish (protocol "Publish"): a new manifest version, written whole under a temp name and
//! renamed into place; the version before the previous one is then removed.

use tally_sim::{Clock, Fs};

use super::Pipeline;
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::Manifest;

impl<F: Fs, C: Clock> Pipeline<F, C> {
    /// Writes manifest version `v + 1`: the current one changed by `edit`, which may refuse
    /// (nothing is then written). Serialized by the `published` lock. A failure to write
    /// poisons the pipeline: the manifest's fate is then unknown.
    pub(super) async fn publish(
        &self,
        edit: impl FnOnce(&mut Manifest) -> Result<()>,
    ) -> Result<u64> {
        let mut current = self.inner.published.lock().await;
        let mut next = current.clone();
        edit(&mut next)?;
        next.version = current.version + 1;
        self.assert_publishable(&current, &next);
        let fs = &self.inner.world.fs;
        let layout = &self.inner.layout;
        let bytes = next.encode();
        // What recovery will read back is what was published. Costs a decode of the whole
        // manifest: checked in debug builds (and the simulation's) only.
        debug_assert!(
            Manifest::decode(&bytes).is_ok_and(|read| read == next),
            "manifest version {} does not read back as written",
            next.version
        );
        let name = layout::manifest_name(next.version);
        let written = crate::commit::replace_file(fs, &layout.root, &name, &bytes).await;
        if let Err(e) = written {
            let e = Error::from(e);
            self.poison(&e);
            return Err(e);
        }
        let version = next.version;
        *current = next;
        if version >= 2 {
            // Keep the previous version; older ones are superseded. Not synced: should the
            // unlink be lost, recovery removes the file again.
            let _ = fs.unlink(&layout.manifest(version - 2)).await;
        }
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .manifests_published += 1;
        Ok(version)
    }

    /// What every published manifest keeps (see [`Manifest::assert_invariants`]), and what
    /// moves only forward from one version to the next: the staged segments it covers, and the
    /// file ids handed out (the allocator stays at or above the manifest's next id, so no id
    /// is used twice).
    fn assert_publishable(&self, current: &Manifest, next: &Manifest) {
        next.assert_invariants();
        assert!(
            next.log_through >= current.log_through,
            "manifest version {} would cover segments through {}, version {} through {}",
            next.version,
            next.log_through,
            current.version,
            current.log_through
        );
        let allocator = self
            .inner
            .next_file_id
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            allocator >= next.next_file_id,
            "file id allocator at {allocator}, below the manifest's next id {}",
            next.next_file_id
        );
    }
}

//! The store as `verify::check_store` sees it after recovery: every manifest file present and
//! matching, nothing left over.

use std::path::Path;

use tally_pipeline::Layout;
use tally_pipeline::verify::{self, StoreReport};
use tally_sim::Fs;

use super::invariant::{Breach, Invariant};

/// `store-consistent`: `verify::check_store` finds no problem (manifest files exist and match
/// their recorded rows and ranges) and no pending repair (orphan, temp file, consumed segment).
pub(super) async fn store_consistent<F: Fs>(fs: &F, root: &Path) -> Result<(), Breach> {
    let store = verify::check_store(fs, &Layout::new(root), false)
        .await
        .map_err(|e| Breach::new(Invariant::StoreConsistent, vec![], e.to_string()))?;
    let left = leftovers(&store);
    if left.is_empty() {
        return Ok(());
    }
    Err(Breach::new(
        Invariant::StoreConsistent,
        vec![],
        left.join("; "),
    ))
}

/// What a store check found wrong or left of a half-done step: its problems, then its pending
/// repairs. Empty for a consistent, drained store.
pub(crate) fn leftovers(store: &StoreReport) -> Vec<String> {
    store
        .problems
        .iter()
        .chain(&store.pending_repairs)
        .cloned()
        .collect()
}

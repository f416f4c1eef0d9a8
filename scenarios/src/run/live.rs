//! What the harness checks while a lifetime runs, rather than on a crash image: that opening
//! the store drained every half-done step (`drained-on-open`), and that a second, read-only
//! handle always sees one whole version (`reader-consistent`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tally_pipeline::{Layout, Manifest, read, verify};
use tally_sim::Fs;

use super::drive::Ctx;
use crate::oracle::{self, Breach, Invariant, leftovers};

/// Checks that nothing of a half-done step is left on disk.
pub(super) async fn drain_check<G: Fs>(fs: &G, root: &Path, ctx: &Ctx) {
    match verify::check_store(fs, &Layout::new(root), false).await {
        Ok(store) => {
            let left = leftovers(&store);
            if !left.is_empty() {
                ctx.find(Breach::new(
                    Invariant::DrainedOnOpen,
                    vec![],
                    format!("right after open: {}", left.join("; ")),
                ));
            }
        }
        Err(e) => ctx.find(Breach::new(
            Invariant::DrainedOnOpen,
            vec![],
            format!("right after open, the store cannot be checked: {e}"),
        )),
    }
}

/// The second handle: reads the store over and over while the lifetime runs, as another
/// process would, and checks that each read is one whole version, never older than the last.
pub(super) async fn read_along<F: Fs>(fs: F, root: PathBuf, stop: Arc<AtomicBool>, ctx: Ctx) {
    let layout = Layout::new(root);
    let (mut newest, mut reads) = (0u64, 0u64);
    while !stop.load(Ordering::Acquire) {
        match read::consistent_snapshot(&fs, &layout, 8).await {
            Ok(manifest) => {
                reads += 1;
                let wrong = inconsistencies(&manifest, newest);
                if !wrong.is_empty() {
                    ctx.find(Breach::new(
                        Invariant::ReaderConsistent,
                        vec![],
                        wrong.join("; "),
                    ));
                    return;
                }
                newest = manifest.version;
            }
            Err(e @ tally_pipeline::Error::MissingRows { .. }) => {
                ctx.find(Breach::new(
                    Invariant::ReaderConsistent,
                    vec![],
                    e.to_string(),
                ));
                return;
            }
            // An I/O error (the writer crashed, or an injected fault): read again.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_micros(700)).await;
    }
    ctx.trace.line(format!(
        "L{} reader: {reads} consistent reads, newest version {newest}",
        ctx.life
    ));
}

/// What is wrong with a version the second handle read after having read version `newest`.
fn inconsistencies(manifest: &Manifest, newest: u64) -> Vec<String> {
    let mut wrong = Vec::new();
    if manifest.version < newest {
        wrong.push(format!(
            "read version {} after version {newest}",
            manifest.version
        ));
    }
    if manifest.rows() != manifest.source_rows() {
        wrong.push(format!(
            "version {} lists {} rows in files but its ledger {}",
            manifest.version,
            manifest.rows(),
            manifest.source_rows()
        ));
    }
    if let Err(b) = oracle::check_levels(&manifest.files) {
        wrong.push(b.detail);
    }
    wrong
}

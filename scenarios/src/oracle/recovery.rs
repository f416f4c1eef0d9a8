//! Recovery itself: it succeeds on every disk a correct pipeline and disk can leave, and a
//! second recovery finds nothing to do.

use std::ffi::OsString;
use std::path::Path;

use tally_pipeline::{Config, Pipeline, RecoveryReport};
use tally_sim::{Fs, SimClock, World};

use super::invariant::{Breach, Invariant};

/// `recovery-succeeds`: the real recovery (`Pipeline::open`) opens the store.
pub(super) async fn recovery_succeeds<F: Fs>(
    world: World<F, SimClock>,
    root: &Path,
    config: &Config,
) -> Result<(Pipeline<F, SimClock>, RecoveryReport), Breach> {
    Pipeline::open(world, root, config.clone())
        .await
        .map_err(|e| Breach::new(Invariant::RecoverySucceeds, vec![], e.to_string()))
}

/// `repairs-explained`: a repaired sequence reservation means numbers were used at or past the
/// durable reservation, which the protocol makes durable before using any: only a disk that
/// lost a synced write explains it. Allowed when a negative control makes the disk lie.
pub(super) fn repairs_explained(
    report: &RecoveryReport,
    expect: &super::Expectation,
) -> Result<(), Breach> {
    match report.seq_reservation_repaired {
        Some((reserved, next)) if !expect.disk_may_lie => Err(Breach::new(
            Invariant::RepairsExplained,
            vec![],
            format!(
                "recovery repaired the sequence reservation (durable reservation {reserved}, numbers used up to {}): only a disk that lost a synced write explains it, and no control made this one lie",
                next - 1
            ),
        )),
        _ => Ok(()),
    }
}

/// `recovery-idempotent`: recovering the recovered store again reports nothing and changes no
/// byte of it.
pub(super) async fn recovery_idempotent<F: Fs>(
    fs: &F,
    world: World<F, SimClock>,
    root: &Path,
    config: &Config,
) -> Result<(), Breach> {
    let before = tree(fs, root).await?;
    let (again, second) = Pipeline::open(world, root, config.clone())
        .await
        .map_err(|e| {
            Breach::new(
                Invariant::RecoveryIdempotent,
                vec![],
                format!("second recovery failed: {e}"),
            )
        })?;
    drop(again);
    if !second.is_clean() || tree(fs, root).await? != before {
        return Err(Breach::new(
            Invariant::RecoveryIdempotent,
            vec![],
            format!(
                "the second recovery changed the disk: {}",
                second.to_string().trim()
            ),
        ));
    }
    Ok(())
}

/// Every path under `dir` with the file's bytes (`None` for a directory), sorted by path.
async fn tree<F: Fs>(fs: &F, dir: &Path) -> Result<Vec<(OsString, Option<Vec<u8>>)>, Breach> {
    let failed = |e: std::io::Error| {
        Breach::new(
            Invariant::RecoveryIdempotent,
            vec![],
            format!("listing the store: {e}"),
        )
    };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs.list_dir(&dir).await.map_err(failed)? {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                out.push((path.clone().into_os_string(), None));
                stack.push(path);
            } else {
                let bytes = fs.read(&path).await.map_err(failed)?;
                out.push((path.into_os_string(), Some(bytes)));
            }
        }
    }
    // Keyed by the path's bytes, not `Path`: comparing bytes is far cheaper than comparing
    // components.
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

//! The shape of the table: levels homogeneous in sequence order, and merges settled at the end.

use tally_pipeline::{Config, FileEntry};

use super::invariant::{Breach, Invariant};

/// `levels-homogeneous`: in sequence order, levels never increase and ranges never overlap.
pub fn check_levels(files: &[FileEntry]) -> Result<(), Breach> {
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_by_key(|f| f.seq_min);
    for w in sorted.windows(2) {
        if w[0].level < w[1].level || w[0].seq_max >= w[1].seq_min {
            return Err(Breach::new(
                Invariant::LevelsHomogeneous,
                vec![],
                format!("file {} precedes file {}", w[0], w[1]),
            ));
        }
    }
    Ok(())
}

/// `merges-settled`: no level below the top holds enough files for a merge.
pub(super) fn merges_settled(files: &[FileEntry], config: &Config) -> Result<(), Breach> {
    for level in 0..config.max_level {
        let n = files.iter().filter(|f| f.level == level).count();
        if n >= config.merge_fan_in {
            return Err(Breach::new(
                Invariant::MergesSettled,
                vec![],
                format!(
                    "after the final flush level {level} still holds {n} files (fan-in {})",
                    config.merge_fan_in
                ),
            ));
        }
    }
    Ok(())
}

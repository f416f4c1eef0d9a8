//! Exhaustive exploration: at every crash point, every persistence variant a crash model
//! allows, bounded as ALICE bounds it — every prefix of the pending ops, every single pending
//! op omitted (with the ops that depend on it), and for the torn models every pending write
//! torn in a set of sector patterns.

use std::collections::{BTreeMap, BTreeSet};

use tally_sim::{
    CrashModel, CrashPlan, PendingOp, PendingTarget, SectorFate, SimFs, Tear, sectors_spanned,
};

/// Sector patterns tried per torn write, at most.
const MAX_TEARS_PER_WRITE: usize = 6;

/// Every pending op except `omitted` and the ops that depend on it, directly or not.
fn without(pending: &[PendingOp], omitted: u64) -> BTreeSet<u64> {
    let mut dropped = BTreeSet::from([omitted]);
    let mut kept = BTreeSet::new();
    for op in pending {
        if op.seq == omitted || op.deps.iter().any(|d| dropped.contains(d)) {
            dropped.insert(op.seq);
        } else {
            kept.insert(op.seq);
        }
    }
    kept
}

fn push(
    out: &mut Vec<(String, CrashPlan)>,
    label: String,
    survivors: BTreeSet<u64>,
    tear: Option<Tear>,
) {
    let plan = CrashPlan { survivors, tear };
    if !out.iter().any(|(_, p)| *p == plan) {
        out.push((label, plan));
    }
}

/// The persistence variants of a crash of `disk` now under `model`, each with a label.
/// Every plan is dependency-closed; duplicates are removed.
pub fn variants(disk: &SimFs, model: CrashModel) -> Vec<(String, CrashPlan)> {
    let pending = disk.pending_ops();
    let all: BTreeSet<u64> = pending.iter().map(|op| op.seq).collect();
    let mut out: Vec<(String, CrashPlan)> = Vec::new();
    match model {
        CrashModel::Strict => push(&mut out, "durable only".into(), BTreeSet::new(), None),
        CrashModel::Kill => push(&mut out, "everything".into(), all, None),
        CrashModel::Subset => {
            // Deps point backwards in sequence order, so every prefix is closed.
            for k in 0..=pending.len() {
                let prefix = pending[..k].iter().map(|op| op.seq).collect();
                push(
                    &mut out,
                    format!("first {k} of {} pending", pending.len()),
                    prefix,
                    None,
                );
            }
            for op in &pending {
                push(
                    &mut out,
                    format!("all but op {} and its dependents", op.seq),
                    without(&pending, op.seq),
                    None,
                );
            }
        }
        CrashModel::Prefix => {
            let mut per_target: BTreeMap<PendingTarget, Vec<u64>> = BTreeMap::new();
            for op in &pending {
                per_target.entry(op.target).or_default().push(op.seq);
            }
            push(&mut out, "durable only".into(), BTreeSet::new(), None);
            push(&mut out, "everything".into(), all.clone(), None);
            // Deps stay within one target, so any per-target prefix is closed.
            for (target, seqs) in &per_target {
                let others: BTreeSet<u64> = all
                    .difference(&seqs.iter().copied().collect())
                    .copied()
                    .collect();
                for k in 0..seqs.len() {
                    let prefix: BTreeSet<u64> = seqs[..k].iter().copied().collect();
                    push(
                        &mut out,
                        format!("{target:?}: first {k} of {}, others whole", seqs.len()),
                        prefix.union(&others).copied().collect(),
                        None,
                    );
                    push(
                        &mut out,
                        format!("{target:?}: first {k} of {}, others lost", seqs.len()),
                        prefix,
                        None,
                    );
                }
            }
        }
        CrashModel::Torn512 | CrashModel::Torn4k => {
            let sector = if model == CrashModel::Torn512 {
                512
            } else {
                4096
            };
            for op in &pending {
                let Some((offset, len)) = op.write.filter(|&(_, len)| len > 0) else {
                    continue;
                };
                let survivors: BTreeSet<u64> = pending
                    .iter()
                    .filter(|o| o.target == op.target && o.seq <= op.seq)
                    .map(|o| o.seq)
                    .collect();
                let n = sectors_spanned(offset, len, sector);
                let mut patterns: Vec<(String, Vec<SectorFate>)> = Vec::new();
                // The first k sectors new, the rest old: the usual order a write lands in.
                let step = n.div_ceil(MAX_TEARS_PER_WRITE - 2).max(1);
                for k in (0..n).step_by(step) {
                    let mut fates = vec![SectorFate::New; k];
                    fates.resize(n, SectorFate::Old);
                    patterns.push((format!("{k} of {n} sectors new"), fates));
                }
                patterns.push(("zeros".into(), vec![SectorFate::Zeros; n]));
                patterns.push(("garbage".into(), vec![SectorFate::Garbage; n]));
                for (what, fates) in patterns {
                    push(
                        &mut out,
                        format!("write op {} torn: {what}", op.seq),
                        survivors.clone(),
                        Some(Tear {
                            seq: op.seq,
                            sector_size: sector,
                            fates,
                            garbage_seed: op.seq,
                        }),
                    );
                }
            }
            if out.is_empty() {
                push(
                    &mut out,
                    "no pending write: durable only".into(),
                    BTreeSet::new(),
                    None,
                );
            }
        }
    }
    out
}

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
/// Every plan is dependency-closed; duplicates are removed; there is at least one.
pub fn variants(disk: &SimFs, model: CrashModel) -> Vec<(String, CrashPlan)> {
    let pending = disk.pending_ops();
    let all: BTreeSet<u64> = pending.iter().map(|op| op.seq).collect();
    let mut out: Vec<(String, CrashPlan)> = Vec::new();
    match model {
        CrashModel::Strict => push(&mut out, "durable only".into(), BTreeSet::new(), None),
        CrashModel::Kill => push(&mut out, "everything".into(), all, None),
        CrashModel::Subset => subsets(&mut out, &pending),
        CrashModel::Prefix => prefixes(&mut out, &pending, &all),
        CrashModel::Torn512 => tears(&mut out, &pending, 512),
        CrashModel::Torn4k => tears(&mut out, &pending, 4096),
    }
    // A crash point is checked through its variants: none would leave it unchecked.
    debug_assert!(!out.is_empty(), "no persistence variant under {model}");
    out
}

/// `subset`: every prefix of the pending ops, and every single op omitted with its dependents.
fn subsets(out: &mut Vec<(String, CrashPlan)>, pending: &[PendingOp]) {
    // Deps point backwards in sequence order, so every prefix is closed.
    for k in 0..=pending.len() {
        let prefix = pending[..k].iter().map(|op| op.seq).collect();
        push(
            out,
            format!("first {k} of {} pending", pending.len()),
            prefix,
            None,
        );
    }
    for op in pending {
        push(
            out,
            format!("all but op {} and its dependents", op.seq),
            without(pending, op.seq),
            None,
        );
    }
}

/// `prefix`: nothing, everything, and each object's every prefix with the other objects whole
/// or lost.
fn prefixes(out: &mut Vec<(String, CrashPlan)>, pending: &[PendingOp], all: &BTreeSet<u64>) {
    let mut per_target: BTreeMap<PendingTarget, Vec<u64>> = BTreeMap::new();
    for op in pending {
        per_target.entry(op.target).or_default().push(op.seq);
    }
    push(out, "durable only".into(), BTreeSet::new(), None);
    push(out, "everything".into(), all.clone(), None);
    // Deps stay within one target, so any per-target prefix is closed.
    for (target, seqs) in &per_target {
        let others: BTreeSet<u64> = all
            .difference(&seqs.iter().copied().collect())
            .copied()
            .collect();
        for k in 0..seqs.len() {
            let prefix: BTreeSet<u64> = seqs[..k].iter().copied().collect();
            push(
                out,
                format!("{target:?}: first {k} of {}, others whole", seqs.len()),
                prefix.union(&others).copied().collect(),
                None,
            );
            push(
                out,
                format!("{target:?}: first {k} of {}, others lost", seqs.len()),
                prefix,
                None,
            );
        }
    }
}

/// `torn-*`: every pending write torn in each of [`tear_patterns`], with the ops before it on
/// its object; the durable state alone when no write is pending.
fn tears(out: &mut Vec<(String, CrashPlan)>, pending: &[PendingOp], sector: u32) {
    for op in pending {
        let Some((offset, len)) = op.write.filter(|&(_, len)| len > 0) else {
            continue;
        };
        let survivors: BTreeSet<u64> = pending
            .iter()
            .filter(|o| o.target == op.target && o.seq <= op.seq)
            .map(|o| o.seq)
            .collect();
        for (what, fates) in tear_patterns(sectors_spanned(offset, len, sector)) {
            push(
                out,
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
            out,
            "no pending write: durable only".into(),
            BTreeSet::new(),
            None,
        );
    }
}

/// The fates of a write's `n` sectors tried: the first k new and the rest old (the usual
/// order a write lands in), at most [`MAX_TEARS_PER_WRITE`] in all with all zeros and all
/// garbage.
fn tear_patterns(n: usize) -> Vec<(String, Vec<SectorFate>)> {
    let mut patterns: Vec<(String, Vec<SectorFate>)> = Vec::new();
    let step = n.div_ceil(MAX_TEARS_PER_WRITE - 2).max(1);
    for k in (0..n).step_by(step) {
        let mut fates = vec![SectorFate::New; k];
        fates.resize(n, SectorFate::Old);
        patterns.push((format!("{k} of {n} sectors new"), fates));
    }
    patterns.push(("zeros".into(), vec![SectorFate::Zeros; n]));
    patterns.push(("garbage".into(), vec![SectorFate::Garbage; n]));
    patterns
}

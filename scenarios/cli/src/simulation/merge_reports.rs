//! `tally merge-reports`: the shard reports of one sweep (`tally sweep --shard I/N --json`) as
//! one verdict — every shard present once, the failing seeds with their reproduce lines, the
//! totals, the doublecheck mismatches and the probe coverage of all shards together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::output::emit;

#[derive(Args)]
pub struct MergeArgs {
    /// The shard reports, as `tally sweep --shard I/N --json FILE` wrote them.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Also write the merged report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Fail when a probe one of the shards declares was hit by none of them, or when a shard
    /// carries no coverage.
    #[arg(long)]
    require_coverage: bool,
}

/// The fields that say which sweep a report belongs to: two shards of one sweep agree on all
/// of them. A field a report lacks reads as null, so a report of another version of tally
/// (without `swarm`, say) is refused rather than merged with one that has it.
const SWEEP_FIELDS: [&str; 6] = ["scenario", "seeds", "model", "controls", "twin", "swarm"];

/// What merging needs of a shard report; other fields are ignored.
#[derive(Deserialize)]
struct ShardReport {
    shard: Option<String>,
    seeds_run: u64,
    crash_points: u64,
    failing_seeds: u64,
    #[serde(default)]
    failures: Vec<Value>,
    #[serde(default)]
    outcomes: Vec<Value>,
    coverage: Option<Coverage>,
    doublecheck: Option<Doublecheck>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Coverage {
    declared: Vec<String>,
    hits: BTreeMap<String, u64>,
    missed: Vec<String>,
}

#[derive(Default, Deserialize, Serialize)]
struct Doublecheck {
    rerun: u64,
    mismatches: Vec<Value>,
}

#[derive(Serialize)]
struct MergedReport {
    #[serde(flatten)]
    sweep: BTreeMap<String, Value>,
    shard_count: u64,
    reports: Vec<String>,
    missing_shards: Vec<u64>,
    duplicate_shards: Vec<u64>,
    seeds_run: u64,
    crash_points: u64,
    failing_seeds: u64,
    failures: Vec<Value>,
    doublecheck: Doublecheck,
    coverage: Option<Coverage>,
    /// Shards whose report carries no coverage.
    coverage_absent: Vec<u64>,
    passed: bool,
    outcomes: Vec<Value>,
}

pub fn merge_reports(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut shards = Vec::new();
    for path in &args.reports {
        shards.push(read_report(path)?);
    }
    let merged = merge(&args.reports, shards, args.require_coverage)?;
    emit(&summary(&merged, args.require_coverage))?;
    if let Some(path) = &args.json {
        write_json(path, &merged)?;
    }
    Ok(if merged.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge reads the reports the user named"
)]
fn read_report(path: &Path) -> anyhow::Result<(Value, ShardReport)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let report = ShardReport::deserialize(&value)
        .with_context(|| format!("{} is not a sweep report", path.display()))?;
    Ok((value, report))
}

#[allow(
    clippy::disallowed_methods,
    reason = "the binary's edge writes the report where the user asked"
)]
fn write_json(path: &Path, merged: &MergedReport) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(merged)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `I/N` of a report, 1/1 for an unsharded sweep.
fn shard_of(path: &Path, report: &ShardReport) -> anyhow::Result<(u64, u64)> {
    let Some(text) = &report.shard else {
        return Ok((1, 1));
    };
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
        .filter(|&(i, n)| 1 <= i && i <= n);
    parsed.with_context(|| format!("{}: bad shard {text:?}", path.display()))
}

/// The reports as one, or an error when they are not shards of one sweep.
fn merge(
    paths: &[PathBuf],
    shards: Vec<(Value, ShardReport)>,
    require_coverage: bool,
) -> anyhow::Result<MergedReport> {
    let identity = |value: &Value| -> BTreeMap<String, Value> {
        SWEEP_FIELDS
            .iter()
            .map(|&f| (f.to_owned(), value.get(f).cloned().unwrap_or(Value::Null)))
            .collect()
    };
    let sweep = identity(&shards[0].0);
    let count = shard_of(&paths[0], &shards[0].1)?.1;
    let mut merged = MergedReport::new(sweep.clone(), count);
    let mut seen = BTreeSet::new();
    for (path, (value, report)) in paths.iter().zip(shards) {
        same_sweep(&paths[0], &sweep, count, path, &identity(&value), &report)?;
        let (index, _) = shard_of(path, &report)?;
        seeds_of_shard(path, &report, index, count)?;
        merged.reports.push(path.display().to_string());
        if !seen.insert(index) {
            // A shard given twice counts once: its seeds would otherwise count twice.
            merged.duplicate_shards.push(index);
            continue;
        }
        merged.add(index, report);
    }
    merged.missing_shards = (1..=count).filter(|i| !seen.contains(i)).collect();
    merged.duplicate_shards.sort_unstable();
    merged.duplicate_shards.dedup();
    merged.finish(require_coverage);
    Ok(merged)
}

/// Refuses a report holding a seed that shard `index` of `count` does not run (a report
/// renamed, or written by a sweep given another `--shard`): its seeds would be counted under
/// the wrong shard, and the shard that owns them reported present.
fn seeds_of_shard(path: &Path, report: &ShardReport, index: u64, count: u64) -> anyhow::Result<()> {
    let foreign = report
        .outcomes
        .iter()
        .filter_map(|o| o.get("seed").and_then(Value::as_u64))
        .find(|seed| seed % count != index - 1);
    match foreign {
        Some(seed) => bail!(
            "{}: seed {seed} is not one of shard {index}/{count} (its seeds are those with seed % {count} == {})",
            path.display(),
            index - 1
        ),
        None => Ok(()),
    }
}

/// Refuses a report of another sweep than the first, naming the field that differs.
fn same_sweep(
    first: &Path,
    sweep: &BTreeMap<String, Value>,
    count: u64,
    path: &Path,
    fields: &BTreeMap<String, Value>,
    report: &ShardReport,
) -> anyhow::Result<()> {
    for (field, value) in fields {
        if sweep[field] != *value {
            bail!(
                "{} and {} are reports of different sweeps: {field} is {} in one and {} in the other",
                first.display(),
                path.display(),
                sweep[field],
                value
            );
        }
    }
    let other = shard_of(path, report)?.1;
    if other != count {
        bail!(
            "{} and {} are reports of different sweeps: shard count is {count} in one and {other} in the other",
            first.display(),
            path.display()
        );
    }
    Ok(())
}

impl MergedReport {
    fn new(sweep: BTreeMap<String, Value>, shard_count: u64) -> Self {
        Self {
            sweep,
            shard_count,
            reports: Vec::new(),
            missing_shards: Vec::new(),
            duplicate_shards: Vec::new(),
            seeds_run: 0,
            crash_points: 0,
            failing_seeds: 0,
            failures: Vec::new(),
            doublecheck: Doublecheck::default(),
            coverage: None,
            coverage_absent: Vec::new(),
            passed: false,
            outcomes: Vec::new(),
        }
    }

    fn add(&mut self, index: u64, report: ShardReport) {
        self.seeds_run += report.seeds_run;
        self.crash_points += report.crash_points;
        self.failing_seeds += report.failing_seeds;
        self.failures.extend(report.failures);
        self.outcomes.extend(report.outcomes);
        if let Some(doublecheck) = report.doublecheck {
            self.doublecheck.rerun += doublecheck.rerun;
            self.doublecheck.mismatches.extend(doublecheck.mismatches);
        }
        match report.coverage {
            Some(coverage) => {
                self.coverage = Some(merge_coverage(self.coverage.take(), &coverage));
            }
            None => self.coverage_absent.push(index),
        }
    }

    /// Orders what the shards interleave by seed, and decides the verdict.
    fn finish(&mut self, require_coverage: bool) {
        let seed = |v: &Value| v.get("seed").and_then(Value::as_u64).unwrap_or(u64::MAX);
        self.failures.sort_by_key(seed);
        self.outcomes.sort_by_key(seed);
        self.doublecheck.mismatches.sort_by_key(seed);
        let coverage_complete = self.coverage_absent.is_empty()
            && self.coverage.as_ref().is_some_and(|c| c.missed.is_empty());
        self.passed = self.missing_shards.is_empty()
            && self.duplicate_shards.is_empty()
            && self.failing_seeds == 0
            && self.doublecheck.mismatches.is_empty()
            && (coverage_complete || !require_coverage);
    }
}

/// Coverage of two sets of runs together: declared probes united, hits summed, missed
/// recomputed (a probe one shard missed and another hit is hit).
pub fn merge_coverage(into: Option<Coverage>, shard: &Coverage) -> Coverage {
    let mut merged = into.unwrap_or_default();
    let mut declared: BTreeSet<String> = merged.declared.drain(..).collect();
    declared.extend(shard.declared.iter().cloned());
    for (probe, hits) in &shard.hits {
        *merged.hits.entry(probe.clone()).or_default() += hits;
    }
    merged.missed = declared
        .iter()
        .filter(|p| merged.hits.get(*p).copied().unwrap_or(0) == 0)
        .cloned()
        .collect();
    merged.declared = declared.into_iter().collect();
    merged
}

fn summary(merged: &MergedReport, require_coverage: bool) -> String {
    // As `tally sweep`'s header writes them.
    let field = |f: &str| match &merged.sweep[f] {
        Value::String(s) => s.clone(),
        Value::Null if f == "model" => "per seed".to_owned(),
        Value::Null => "none".to_owned(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let mut text = format!(
        "tally merge-reports: scenario {} seeds {} model {} controls {} twin {}: {} reports of {} shards\n\
         {} seeds, {} crash points checked, {} failing seeds\n",
        field("scenario"),
        field("seeds"),
        field("model"),
        field("controls"),
        field("twin"),
        merged.reports.len(),
        merged.shard_count,
        merged.seeds_run,
        merged.crash_points,
        merged.failing_seeds,
    );
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    if !merged.missing_shards.is_empty() {
        text += &format!(
            "MISSING shards {} of {}: no report for them, their seeds did not run\n",
            list(&merged.missing_shards),
            merged.shard_count
        );
    }
    if !merged.duplicate_shards.is_empty() {
        text += &format!(
            "DUPLICATE shards {}: given more than once (counted once)\n",
            list(&merged.duplicate_shards)
        );
    }
    text += &coverage_text(merged, require_coverage);
    text += &failures_text(merged);
    text += if merged.passed {
        "verdict: pass\n"
    } else {
        "verdict: FAIL\n"
    };
    text
}

fn coverage_text(merged: &MergedReport, require_coverage: bool) -> String {
    let mut text = match &merged.coverage {
        None => "coverage: absent (no report carries a coverage section)\n".to_owned(),
        Some(c) => format!(
            "coverage: {} of {} declared probes hit{}\n",
            c.declared.len() - c.missed.len(),
            c.declared.len(),
            if c.missed.is_empty() {
                String::new()
            } else {
                format!("; never hit: {}", c.missed.join(", "))
            }
        ),
    };
    if merged.coverage.is_some() && !merged.coverage_absent.is_empty() {
        let shards: Vec<String> = merged.coverage_absent.iter().map(u64::to_string).collect();
        text += &format!(
            "coverage: absent from shards {} (their hits are unknown)\n",
            shards.join(", ")
        );
    }
    if require_coverage && (merged.coverage.is_none() || !merged.coverage_absent.is_empty()) {
        text += "coverage required: a shard without coverage cannot show it complete\n";
    }
    text
}

fn failures_text(merged: &MergedReport) -> String {
    let text_of = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or("?").to_owned();
    let mut text = format!(
        "doublecheck: {} seeds rerun, {} mismatches\n",
        merged.doublecheck.rerun,
        merged.doublecheck.mismatches.len()
    );
    for m in &merged.doublecheck.mismatches {
        text += &format!(
            "DOUBLECHECK MISMATCH seed {}: digest {}, rerun {}\n  reproduce: {}\n",
            m.get("seed").unwrap_or(&Value::Null),
            text_of(m, "digest"),
            text_of(m, "rerun_digest"),
            text_of(m, "reproduce"),
        );
    }
    for f in &merged.failures {
        let first = f
            .get("violations")
            .and_then(|v| v.get(0))
            .map(|v| format!("{}: {}", text_of(v, "invariant"), text_of(v, "detail")))
            .unwrap_or_default();
        text += &format!(
            "FAIL seed {} (model {}, {} violations): {first}\n  reproduce: {}\n",
            f.get("seed").unwrap_or(&Value::Null),
            text_of(f, "model"),
            f.get("violation_count").unwrap_or(&Value::Null),
            text_of(f, "reproduce"),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coverage(declared: &[&str], hits: &[(&str, u64)]) -> Coverage {
        let hits: BTreeMap<String, u64> = hits.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect();
        let declared: Vec<String> = declared.iter().map(|p| (*p).to_owned()).collect();
        let missed = declared
            .iter()
            .filter(|p| hits.get(*p).copied().unwrap_or(0) == 0)
            .cloned()
            .collect();
        Coverage {
            declared,
            hits,
            missed,
        }
    }

    #[test]
    fn coverage_sums_hits_unites_declared_and_misses_only_what_no_shard_hit() {
        let a = coverage(
            &["sync", "rename", "quarantine"],
            &[("sync", 2), ("rename", 0)],
        );
        let b = coverage(
            &["sync", "rename", "torn-tail"],
            &[("sync", 1), ("rename", 3)],
        );
        let merged = merge_coverage(Some(a), &b);
        assert_eq!(
            merged.declared,
            ["quarantine", "rename", "sync", "torn-tail"]
        );
        assert_eq!(merged.hits["sync"], 3);
        assert_eq!(merged.hits["rename"], 3);
        assert_eq!(merged.missed, ["quarantine", "torn-tail"]);
    }
}

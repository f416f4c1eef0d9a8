//! Shrinking a failing run: fewer faults, an earlier crash, fewer sources and rows, less
//! concurrency — each change kept only if the run still fails.

use tally_faults::Trigger;

use super::run::RunSpec;

/// Offers one change of a spec, described: it becomes a candidate if it changes the spec.
type Offer<'a> = dyn FnMut(String, &dyn Fn(&mut RunSpec)) + 'a;

/// Smaller variants of `spec`, most promising first.
fn candidates(spec: &RunSpec) -> Vec<(String, RunSpec)> {
    let mut out = Vec::new();
    let mut offer = |what: String, change: &dyn Fn(&mut RunSpec)| {
        let mut candidate = spec.clone();
        change(&mut candidate);
        if candidate != *spec {
            out.push((what, candidate));
        }
    };
    plan_changes(spec, &mut offer);
    workload_changes(spec, &mut offer);
    // A clean restart must come before the shortest source's last part.
    out.retain(|(_, s)| {
        let min_parts = s
            .workload
            .sources
            .iter()
            .map(|x| x.parts.len())
            .min()
            .unwrap_or(0);
        s.workload.restart_after_parts.is_none_or(|n| n < min_parts)
    });
    out
}

/// Fewer faults, no crash or an earlier one, no latency.
fn plan_changes(spec: &RunSpec, offer: &mut Offer) {
    for i in 0..spec.plan.faults.len() {
        offer(format!("drop fault {i}"), &|s| {
            s.plan.faults.remove(i);
        });
    }
    offer("drop the crash".into(), &|s| s.plan.crash = None);
    if let Some(crash) = &spec.plan.crash {
        for at in earlier(&crash.at) {
            offer(format!("crash earlier, at {at}"), &|s| {
                if let Some(c) = &mut s.plan.crash {
                    c.at = at.clone();
                }
            });
        }
    }
    offer("no latency".into(), &|s| s.plan.latency = None);
}

/// Triggers that fire before `at` does.
fn earlier(at: &Trigger) -> Vec<Trigger> {
    match at {
        Trigger::Call { index } => [index / 2, index * 3 / 4, index.saturating_sub(1)]
            .into_iter()
            .filter(|i| i < index)
            .map(|index| Trigger::Call { index })
            .collect(),
        Trigger::Nth { kind, path, n } => [n / 2, n.saturating_sub(1)]
            .into_iter()
            .filter(|m| *m >= 1 && m < n)
            .map(|n| Trigger::Nth {
                kind: *kind,
                path: path.clone(),
                n,
            })
            .collect(),
    }
}

/// Fewer sources, parts and rows; no restart, maintenance, concurrency or payload.
fn workload_changes(spec: &RunSpec, offer: &mut Offer) {
    let sources = spec.workload.sources.len();
    if sources > 1 {
        for i in 0..sources {
            offer(format!("drop source {i}"), &|s| {
                s.workload.sources.remove(i);
            });
        }
    }
    for i in 0..sources {
        offer(format!("halve the parts of source {i}"), &|s| {
            let parts = &mut s.workload.sources[i].parts;
            parts.truncate(parts.len().div_ceil(2));
        });
        offer(format!("halve the rows of each part of source {i}"), &|s| {
            for rows in &mut s.workload.sources[i].parts {
                *rows = (*rows / 2).max(1);
            }
        });
    }
    offer("no clean restart".into(), &|s| {
        s.workload.restart_after_parts = None
    });
    offer("no background maintenance".into(), &|s| {
        s.workload.background_maintenance = false;
    });
    offer("one ingest task".into(), &|s| s.workload.concurrent = false);
    offer("no payload".into(), &|s| s.workload.payload_bytes = 0);
}

/// What shrinking did.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub spec: RunSpec,
    /// The changes kept, in order.
    pub steps: Vec<String>,
    pub runs: usize,
}

/// Greedily applies changes that keep `fails` true, at most `budget` runs.
pub fn shrink(spec: &RunSpec, budget: usize, mut fails: impl FnMut(&RunSpec) -> bool) -> Shrunk {
    let mut current = spec.clone();
    let mut steps = Vec::new();
    let mut runs = 0;
    'outer: while runs < budget {
        for (what, candidate) in candidates(&current) {
            if runs >= budget {
                break 'outer;
            }
            runs += 1;
            if fails(&candidate) {
                current = candidate;
                steps.push(what);
                continue 'outer;
            }
        }
        break;
    }
    debug_assert!(runs <= budget, "{runs} runs on a budget of {budget}");
    Shrunk {
        spec: current,
        steps,
        runs,
    }
}

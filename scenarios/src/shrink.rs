//! Shrinking a failing run: fewer faults, an earlier crash, fewer sources and rows, less
//! concurrency — each change kept only if the run still fails.

use tally_faults::Trigger;

use super::run::RunSpec;

/// Smaller variants of `spec`, most promising first.
fn candidates(spec: &RunSpec) -> Vec<(String, RunSpec)> {
    let mut out = Vec::new();
    let mut add = |what: String, change: &dyn Fn(&mut RunSpec)| {
        let mut candidate = spec.clone();
        change(&mut candidate);
        if candidate != *spec {
            out.push((what, candidate));
        }
    };
    for i in 0..spec.plan.faults.len() {
        add(format!("drop fault {i}"), &|s| {
            s.plan.faults.remove(i);
        });
    }
    add("drop the crash".into(), &|s| s.plan.crash = None);
    if let Some(crash) = &spec.plan.crash {
        let earlier: Vec<Trigger> = match &crash.at {
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
        };
        for at in earlier {
            add(format!("crash earlier, at {at}"), &|s| {
                if let Some(c) = &mut s.plan.crash {
                    c.at = at.clone();
                }
            });
        }
    }
    add("no latency".into(), &|s| s.plan.latency = None);
    if spec.workload.sources.len() > 1 {
        for i in 0..spec.workload.sources.len() {
            add(format!("drop source {i}"), &|s| {
                s.workload.sources.remove(i);
            });
        }
    }
    for i in 0..spec.workload.sources.len() {
        add(format!("halve the parts of source {i}"), &|s| {
            let parts = &mut s.workload.sources[i].parts;
            parts.truncate(parts.len().div_ceil(2));
        });
        add(format!("halve the rows of each part of source {i}"), &|s| {
            for rows in &mut s.workload.sources[i].parts {
                *rows = (*rows / 2).max(1);
            }
        });
    }
    add("no clean restart".into(), &|s| {
        s.workload.restart_after_parts = None
    });
    add("no background maintenance".into(), &|s| {
        s.workload.background_maintenance = false;
    });
    add("one ingest task".into(), &|s| s.workload.concurrent = false);
    add("no payload".into(), &|s| s.workload.payload_bytes = 0);
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
    Shrunk {
        spec: current,
        steps,
        runs,
    }
}

//! `--shard auto`: the shard of a sweep read from the environment of the batch scheduler it
//! runs under (a CI matrix, a Kubernetes indexed Job, a Slurm array job).

/// A shard of a sweep found in the environment of the batch scheduler it runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoShard {
    /// 1-based, as `--shard I/N` writes it.
    pub index: u64,
    pub count: u64,
    /// The variables it was read from, as `NAME=value, ...`.
    pub source: String,
}

/// Why `--shard auto` found no shard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// No scheduler's index variable is set.
    #[error(
        "--shard auto found no shard: none of TALLY_SHARD_INDEX (with TALLY_SHARD_COUNT), \
         JOB_COMPLETION_INDEX (Kubernetes indexed Job, with TALLY_SHARD_COUNT) or \
         SLURM_ARRAY_TASK_ID (Slurm array job, with SLURM_ARRAY_TASK_COUNT and \
         SLURM_ARRAY_TASK_MIN) is set"
    )]
    NotFound,
    /// A scheduler's index variable is set but what goes with it is missing or wrong.
    #[error("--shard auto ({scheduler}): {why}")]
    Bad {
        scheduler: &'static str,
        why: String,
    },
    /// Two schedulers' variables name different shards.
    #[error(
        "--shard auto is ambiguous: {} says shard {}/{}, {} says {}/{}",
        first.source, first.index, first.count, second.source, second.index, second.count
    )]
    Ambiguous { first: AutoShard, second: AutoShard },
}

/// Every variable [`resolve_shard`] reads.
pub const SCHEDULER_VARIABLES: [&str; 7] = [
    "TALLY_SHARD_INDEX",
    "TALLY_SHARD_COUNT",
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
];

/// The shard the scheduler's environment names, `env` being the variable lookup.
///
/// Sources, in this order: the generic `TALLY_SHARD_INDEX` (0-based) with `TALLY_SHARD_COUNT`
/// (a GitHub Actions matrix sets them); Kubernetes' `JOB_COMPLETION_INDEX` (0-based) with
/// `TALLY_SHARD_COUNT` (the Job's `completions`, which Kubernetes does not export); Slurm's
/// `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`. A source counts
/// when its index variable is set; a set one that is incomplete or malformed is an error,
/// never skipped, and two that name different shards are an error: a wrong guess would run
/// some seeds twice and others never, and the merge would only notice afterwards.
pub fn resolve_shard(env: impl Fn(&str) -> Option<String>) -> Result<AutoShard, ShardError> {
    let found = [
        generic_shard(&env),
        kubernetes_shard(&env),
        slurm_shard(&env),
    ]
    .into_iter()
    .flatten()
    .collect::<Result<Vec<_>, _>>()?;
    let mut found = found.into_iter();
    let first = found.next().ok_or(ShardError::NotFound)?;
    for other in found {
        if (other.index, other.count) != (first.index, first.count) {
            return Err(ShardError::Ambiguous {
                first,
                second: other,
            });
        }
    }
    Ok(first)
}

/// A variable parsed as a number, named with its value in the error.
fn number(
    env: &impl Fn(&str) -> Option<String>,
    scheduler: &'static str,
    name: &str,
) -> Result<Option<(u64, String)>, ShardError> {
    let Some(value) = env(name) else {
        return Ok(None);
    };
    let parsed = value.trim().parse::<u64>().map_err(|e| ShardError::Bad {
        scheduler,
        why: format!("{name}={value:?} is not a number: {e}"),
    })?;
    Ok(Some((parsed, format!("{name}={parsed}"))))
}

fn required(
    env: &impl Fn(&str) -> Option<String>,
    scheduler: &'static str,
    name: &str,
    with: &str,
) -> Result<(u64, String), ShardError> {
    number(env, scheduler, name)?.ok_or_else(|| ShardError::Bad {
        scheduler,
        why: format!("{with} is set but {name} is not"),
    })
}

/// A 0-based index of `count` as a 1-based shard, checked.
fn zero_based(
    scheduler: &'static str,
    index: u64,
    count: u64,
    source: String,
) -> Result<AutoShard, ShardError> {
    if count == 0 || index >= count {
        return Err(ShardError::Bad {
            scheduler,
            why: format!("{source}: need 0 <= index < count"),
        });
    }
    Ok(AutoShard {
        index: index + 1,
        count,
        source,
    })
}

fn generic_shard(env: &impl Fn(&str) -> Option<String>) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "generic";
    let index = number(env, WHO, "TALLY_SHARD_INDEX").transpose()?;
    Some(index.and_then(|(index, a)| {
        let (count, b) = required(env, WHO, "TALLY_SHARD_COUNT", "TALLY_SHARD_INDEX")?;
        zero_based(WHO, index, count, format!("{a}, {b}"))
    }))
}

fn kubernetes_shard(
    env: &impl Fn(&str) -> Option<String>,
) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "Kubernetes indexed Job";
    let index = number(env, WHO, "JOB_COMPLETION_INDEX").transpose()?;
    Some(index.and_then(|(index, a)| {
        let (count, b) =
            required(env, WHO, "TALLY_SHARD_COUNT", "JOB_COMPLETION_INDEX").map_err(|_| {
                ShardError::Bad {
                    scheduler: WHO,
                    why: "JOB_COMPLETION_INDEX is set but TALLY_SHARD_COUNT is not: set it to \
                      the Job's spec.completions in the manifest"
                        .to_owned(),
                }
            })?;
        zero_based(WHO, index, count, format!("{a}, {b}"))
    }))
}

/// Slurm numbers array tasks as `--array` wrote them (`--array=1-8` starts at 1); only a
/// contiguous array maps onto shards, so a step or a list (`0-15:4`, `1,5,7`) is refused.
fn slurm_shard(env: &impl Fn(&str) -> Option<String>) -> Option<Result<AutoShard, ShardError>> {
    const WHO: &str = "Slurm array job";
    const ID: &str = "SLURM_ARRAY_TASK_ID";
    let id = number(env, WHO, ID).transpose()?;
    Some(id.and_then(|(id, a)| {
        let (count, b) = required(env, WHO, "SLURM_ARRAY_TASK_COUNT", ID)?;
        let (min, c) = required(env, WHO, "SLURM_ARRAY_TASK_MIN", ID)?;
        let source = format!("{a}, {b}, {c}");
        if let Some((max, d)) = number(env, WHO, "SLURM_ARRAY_TASK_MAX")? {
            if max.checked_sub(min).and_then(|span| span.checked_add(1)) != Some(count) {
                return Err(ShardError::Bad {
                    scheduler: WHO,
                    why: format!(
                        "{source}, {d}: the array is not contiguous; submit it as --array=0-{}",
                        count.saturating_sub(1)
                    ),
                });
            }
        }
        let index = id.checked_sub(min).ok_or_else(|| ShardError::Bad {
            scheduler: WHO,
            why: format!("{source}: the task id is below the array's minimum"),
        })?;
        zero_based(WHO, index, count, source)
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn shard(vars: &[(&str, &str)]) -> Result<(u64, u64), String> {
        resolve_shard(env(vars))
            .map(|s| (s.index, s.count))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_scheduler_names_its_shard_one_based() {
        let generic = [("TALLY_SHARD_INDEX", "0"), ("TALLY_SHARD_COUNT", "4")];
        assert_eq!(shard(&generic), Ok((1, 4)));
        let kubernetes = [("JOB_COMPLETION_INDEX", "3"), ("TALLY_SHARD_COUNT", "4")];
        assert_eq!(shard(&kubernetes), Ok((4, 4)));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
        ];
        assert_eq!(shard(&slurm), Ok((5, 8)));
    }

    #[test]
    fn no_scheduler_is_an_error_naming_every_variable_looked_for() {
        let err = shard(&[("SLURM_JOB_ID", "7")]).unwrap_err();
        // The maximum is optional (it only checks the array is contiguous).
        for name in SCHEDULER_VARIABLES
            .iter()
            .filter(|n| **n != "SLURM_ARRAY_TASK_MAX")
        {
            assert!(err.contains(name), "{name} missing from {err}");
        }
    }

    #[test]
    fn an_incomplete_or_malformed_scheduler_is_an_error_not_skipped() {
        let err = shard(&[("JOB_COMPLETION_INDEX", "2")]).unwrap_err();
        assert!(err.contains("TALLY_SHARD_COUNT is not"), "{err}");
        assert!(err.contains("spec.completions"), "{err}");
        let err = shard(&[("TALLY_SHARD_INDEX", "x"), ("TALLY_SHARD_COUNT", "4")]).unwrap_err();
        assert!(
            err.contains("TALLY_SHARD_INDEX=\"x\" is not a number"),
            "{err}"
        );
        let err = shard(&[("TALLY_SHARD_INDEX", "4"), ("TALLY_SHARD_COUNT", "4")]).unwrap_err();
        assert!(err.contains("need 0 <= index < count"), "{err}");
        let err = shard(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ])
        .unwrap_err();
        assert!(err.contains("SLURM_ARRAY_TASK_MIN is not"), "{err}");
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "12"),
        ];
        assert!(shard(&stepped).unwrap_err().contains("not contiguous"));
    }

    #[test]
    fn two_schedulers_naming_different_shards_are_ambiguous_and_agreeing_ones_are_not() {
        let mut vars = vec![
            ("TALLY_SHARD_INDEX", "1"),
            ("TALLY_SHARD_COUNT", "4"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
        ];
        let err = shard(&vars).unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("2/4") && err.contains("3/4"),
            "{err}"
        );
        vars[0].1 = "2";
        assert_eq!(shard(&vars), Ok((3, 4)));
    }
}

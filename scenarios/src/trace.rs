//! The trace of a run: every line a replay prints, and the digest that compares runs.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Lines of a run's trace. Clones append to the same trace.
#[derive(Clone, Default)]
pub struct Trace {
    lines: Arc<Mutex<Vec<String>>>,
    sink: Option<Sink>,
}

impl Trace {
    /// A trace that also hands every line to `sink` as it is added.
    pub fn with_sink(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            lines: Arc::default(),
            sink: Some(Arc::new(sink)),
        }
    }

    pub fn line(&self, line: impl Into<String>) {
        let line = line.into();
        if let Some(sink) = &self.sink {
            sink(&line);
        }
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A digest of every line and of a disk's files (path and bytes), as 16 hex digits.
    pub fn digest(&self, tree: &BTreeMap<String, Option<Vec<u8>>>) -> String {
        let mut hasher = twox_hash::XxHash64::with_seed(0);
        for line in self.lines.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            hasher.write(line.as_bytes());
            hasher.write(b"\n");
        }
        for (path, bytes) in tree {
            hasher.write(path.as_bytes());
            match bytes {
                Some(bytes) => {
                    hasher.write(&(bytes.len() as u64).to_le_bytes());
                    hasher.write(bytes);
                }
                None => hasher.write(b"/"),
            }
        }
        format!("{:016x}", hasher.finish())
    }
}

/// A call as the op log prints it in a trace: `L<life> #<index> <kind> <path> ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CallRef {
    life: u32,
    index: u64,
}

/// `<life> #<index> <kind> <path>` (the op log's `Display`, after the `L`): the call, and its
/// kind and path.
fn op_line(text: &str) -> Option<(CallRef, &str, &str)> {
    let (life, rest) = text.split_once(" #")?;
    let mut words = rest.split(' ');
    let index = words.next()?.parse().ok()?;
    let (kind, path) = (words.next()?, words.next()?);
    let life = life.parse().ok()?;
    Some((CallRef { life, index }, kind, path))
}

/// The calls of a trace's op-log lines: kind and path by lifetime and index.
type Logged<'a> = BTreeMap<CallRef, (&'a str, &'a str)>;

/// What is wrong with `line` naming `call` (and its kind and path, if it names them).
fn naming(
    logged: &Logged<'_>,
    line: &str,
    call: CallRef,
    named: Option<(&str, &str)>,
) -> Option<String> {
    match logged.get(&call) {
        None => Some(format!("no #{} in L{}: {line}", call.index, call.life)),
        Some(&(kind, path)) if named.is_some_and(|n| n != (kind, path)) => Some(format!(
            "#{} in L{} is {kind} {path}: {line}",
            call.index, call.life
        )),
        Some(_) => None,
    }
}

/// Where `lines` name a call by an index that the op log's own lines do not give that call:
/// a fault, the plan's crash, a crash point or a violation naming an index with no
/// `L<life> #<index>` line, or one of another kind or path. Empty when the trace has one
/// numbering.
pub fn misnumbered(lines: &[String]) -> Vec<String> {
    let logged: Logged<'_> = lines
        .iter()
        .filter_map(|line| line.strip_prefix('L').and_then(op_line))
        .map(|(call, kind, path)| (call, (kind, path)))
        .collect();
    let mut wrong = Vec::new();
    let mut crash_fault = None;
    for line in lines {
        let problem = if let Some(rest) = line.strip_prefix("L1 fault at #") {
            let (head, what) = rest.split_once(": ").unwrap_or((rest, ""));
            match op_line(&format!("1 #{head}")) {
                Some((call, kind, path)) => {
                    if what.starts_with("crash ") {
                        crash_fault = Some(call.index);
                    }
                    naming(&logged, line, call, Some((kind, path)))
                }
                None => Some(format!("a fault line naming no call: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("L1 crash at #") {
            match rest.split(',').next().and_then(|n| n.parse().ok()) {
                Some(index) if crash_fault == Some(index) => {
                    naming(&logged, line, CallRef { life: 1, index }, None)
                }
                _ => Some(format!(
                    "the crash's index is not its fault line's ({crash_fault:?}): {line}"
                )),
            }
        } else if let Some(rest) = line.strip_prefix("point L") {
            let head = rest
                .split([' ', '['])
                .next()
                .unwrap_or("")
                .replacen('#', " #", 1);
            match op_line(&format!("{head} ? ?")) {
                Some((call, _, _)) => naming(&logged, line, call, None),
                None => Some(format!("a crash point naming no call: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("VIOLATION crash after L") {
            match op_line(rest) {
                Some((call, kind, path)) => naming(&logged, line, call, Some((kind, path))),
                None => Some(format!("a violation naming no call: {line}")),
            }
        } else {
            None
        };
        wrong.extend(problem);
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::misnumbered;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    const ONE_NUMBERING: &str = "\
L1 #0 lock /store ok
L1 #1 create /store/a (3 B) ok
point L1#1 ok: version 0, 0 published, 0 staged
L1 fault at #2 sync_dir /store: inject EIO (once)
L1 #2 sync_dir /store err Other
L1 #3 rename /store/a -> /store/b ok
L1 fault at #3 rename /store/a: crash after this call
point L1#3 [prefix 1] ok: version 0, 0 published, 0 staged
VIOLATION crash after L1 #3 rename /store/a -> /store/b ok — acked-rows-present: lost
L1 crash at #3, model strict
L2 #0 lock /store ok
point L2#0 ok: version 0, 0 published, 0 staged";

    #[test]
    fn a_trace_of_one_numbering_names_every_call_it_logged() {
        assert_eq!(misnumbered(&lines(ONE_NUMBERING)), Vec::<String>::new());
    }

    #[test]
    fn a_fault_line_counting_calls_its_own_way_is_caught() {
        // The numbering before: the wrapper did not count the lock, so its call 2 was #3.
        let old = ONE_NUMBERING.replace("fault at #3 rename", "fault at #2 rename");
        let wrong = misnumbered(&lines(&old));
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(
            wrong[0].starts_with("#2 in L1 is sync_dir /store"),
            "{wrong:?}"
        );
        assert!(wrong[1].starts_with("the crash's index"), "{wrong:?}");
    }

    #[test]
    fn a_crash_point_or_violation_naming_an_unlogged_call_is_caught() {
        let points = ONE_NUMBERING.replace("point L2#0", "point L2#7");
        assert_eq!(misnumbered(&lines(&points)).len(), 1);
        let violation = ONE_NUMBERING.replace("after L1 #3 rename", "after L1 #3 unlink");
        assert_eq!(misnumbered(&lines(&violation)).len(), 1);
        let crash = ONE_NUMBERING.replace("crash at #3", "crash at #2");
        assert_eq!(misnumbered(&lines(&crash)).len(), 1);
    }
}

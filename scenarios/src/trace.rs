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

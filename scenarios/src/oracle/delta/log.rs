//! The Delta log as the protocol defines it: commits `_delta_log/<version:020>.json`, each JSON
//! lines of actions; a version's files are those added and not removed since, by path.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tally_sim::Fs;

use super::DeltaError;
use super::files::DeltaCache;

/// How far past the newest timestamp in the log the writer's clock may have read: a
/// simulated run lasts seconds of its clock, and fault plans jump it by at most two hours. A
/// removed file is owed to readers while its removal is younger than the retention at that
/// bound, so the check never asks for a file a writer may rightly have deleted.
pub const CLOCK_SLACK_MS: i64 = 24 * 3600 * 1000;

/// One commit, as far as reading a version needs it.
#[derive(Debug, Default)]
pub(super) struct Commit {
    /// `commitInfo.timestamp`, if the commit has one.
    timestamp: Option<i64>,
    pub adds: Vec<Add>,
    /// Removed paths, with `remove.deletionTimestamp` when given.
    removes: Vec<(String, Option<i64>)>,
    /// Why a reader of this commit's `protocol` would refuse the table, or `Ok` if it has none.
    protocol: Option<Result<(), String>>,
    /// Why a reader would refuse this commit's `metaData`, if it has one.
    metadata: Option<Result<(), String>>,
    /// An `add` this reader cannot read (a deletion vector).
    unsupported: Option<String>,
}

/// A file a commit adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Add {
    pub path: String,
    pub size: u64,
    /// `numRecords` of `add.stats`, when given.
    pub records: Option<u64>,
}

/// Every commit of a table, from 0 to the newest, in order.
#[derive(Debug)]
pub struct DeltaLog {
    commits: Vec<Arc<Commit>>,
}

/// Lists and parses the log of the table at `root`: `None` when there is no commit (no table
/// yet). A gap or a commit that does not parse is an error: every engine fails on either.
pub async fn read_log<F: Fs>(
    fs: &F,
    root: &Path,
    cache: &DeltaCache,
) -> Result<Option<DeltaLog>, DeltaError> {
    let dir = root.join("_delta_log");
    let entries = match fs.list_dir(&dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&dir, e)),
    };
    let mut versions: Vec<u64> = entries
        .iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| commit_version(&e.name))
        .collect();
    versions.sort_unstable();
    let Some(&newest) = versions.last() else {
        return Ok(None);
    };
    let mut commits = Vec::with_capacity(versions.len());
    for (at, &version) in versions.iter().enumerate() {
        if version != at as u64 {
            return Err(DeltaError::Gap {
                missing: at as u64,
                newest,
            });
        }
        let path = dir.join(commit_name(version));
        let bytes = fs.read(&path).await.map_err(|e| io_error(&path, e))?;
        let parsed = cache.commit(&bytes, || parse_commit(&bytes));
        match parsed.as_ref() {
            Ok(commit) => commits.push(commit.clone()),
            Err(why) => {
                return Err(DeltaError::Commit {
                    version,
                    why: why.clone(),
                });
            }
        }
    }
    Ok(Some(DeltaLog { commits }))
}

/// The version of a commit file's name: exactly 20 digits and `.json`.
fn commit_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

pub(super) fn io_error(path: &Path, e: io::Error) -> DeltaError {
    DeltaError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    }
}

/// Parses a commit file: each non-empty line one JSON object holding one action. Actions a
/// reader of the file set does not need (`commitInfo` beyond its timestamp, `txn`,
/// `domainMetadata`, `cdc`, unknown ones) are skipped, as engines skip them. An empty file is
/// an empty commit, as engines take it.
pub(super) fn parse_commit(bytes: &[u8]) -> Result<Arc<Commit>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut commit = Commit::default();
    for (n, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let Value::Object(action) = value else {
            return Err(format!("line {}: not a JSON object", n + 1));
        };
        for (kind, body) in &action {
            commit
                .take(kind, body)
                .map_err(|why| format!("line {}: {kind}: {why}", n + 1))?;
        }
    }
    Ok(Arc::new(commit))
}

impl Commit {
    /// Takes in one action of the commit.
    fn take(&mut self, kind: &str, body: &Value) -> Result<(), String> {
        match kind {
            "add" => {
                if !body.get("deletionVector").is_none_or(Value::is_null) {
                    self.unsupported = Some("an add with a deletion vector".into());
                }
                self.adds.push(Add {
                    path: string(body, "path")?,
                    size: body.get("size").and_then(Value::as_u64).ok_or("no size")?,
                    records: records(body)?,
                });
            }
            "remove" => self.removes.push((
                string(body, "path")?,
                body.get("deletionTimestamp").and_then(Value::as_i64),
            )),
            "protocol" => self.protocol = Some(readable_protocol(body)),
            "metaData" => self.metadata = Some(readable_metadata(body)),
            "commitInfo" => self.timestamp = body.get("timestamp").and_then(Value::as_i64),
            _ => {}
        }
        Ok(())
    }
}

fn string(body: &Value, field: &str) -> Result<String, String> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field}"))
}

/// `numRecords` of an add's `stats` (a JSON document in a string), if given.
fn records(add: &Value) -> Result<Option<u64>, String> {
    let Some(stats) = add.get("stats").and_then(Value::as_str) else {
        return Ok(None);
    };
    let stats: Value = serde_json::from_str(stats).map_err(|e| format!("stats: {e}"))?;
    Ok(stats.get("numRecords").and_then(Value::as_u64))
}

/// Reader features that change nothing for a reader of a `long` column from plain files.
const HARMLESS_READER_FEATURES: [&str; 2] = ["timestampNtz", "vacuumProtocolCheck"];

/// Whether a reader without column mapping, deletion vectors or other reader features can read
/// a table of this `protocol`.
fn readable_protocol(protocol: &Value) -> Result<(), String> {
    let version = protocol.get("minReaderVersion").and_then(Value::as_u64);
    match version {
        Some(1 | 2) => Ok(()),
        Some(3) => {
            let features = protocol.get("readerFeatures").and_then(Value::as_array);
            let unknown: Vec<&str> = features
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|f| !HARMLESS_READER_FEATURES.contains(f))
                .collect();
            if unknown.is_empty() {
                Ok(())
            } else {
                Err(format!("reader features {unknown:?}"))
            }
        }
        other => Err(format!("minReaderVersion {other:?}")),
    }
}

/// Whether the table's schema has `tally_seq` as a `long` column, unpartitioned and without
/// column mapping.
fn readable_metadata(metadata: &Value) -> Result<(), String> {
    let config = metadata.get("configuration");
    let mapping = config
        .and_then(|c| c.get("delta.columnMapping.mode"))
        .and_then(Value::as_str);
    if mapping.is_some_and(|m| m != "none") {
        return Err(format!("column mapping {mapping:?}"));
    }
    let partitioned = metadata
        .get("partitionColumns")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    if partitioned {
        return Err("partition columns".into());
    }
    let schema: Value = metadata
        .get("schemaString")
        .and_then(Value::as_str)
        .map(serde_json::from_str)
        .ok_or("no schemaString")?
        .map_err(|e| format!("schemaString: {e}"))?;
    let seq = schema
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|f| f.get("name").and_then(Value::as_str) == Some("tally_seq"));
    match seq.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("long") => Ok(()),
        other => Err(format!("tally_seq is {other:?}, not a long column")),
    }
}

impl DeltaLog {
    /// The newest version.
    pub fn newest(&self) -> u64 {
        self.commits.len() as u64 - 1
    }

    /// The files of `version` (at most the newest), by path: added by a commit up to it and
    /// not removed by a later one up to it. Refused when the table at that version needs what
    /// this reader cannot do, or has no protocol or metadata yet.
    pub(super) fn files_at(&self, version: u64) -> Result<BTreeMap<String, Add>, DeltaError> {
        debug_assert!(
            version <= self.newest(),
            "time travel past the newest version"
        );
        let (mut protocol, mut metadata) = (None, None);
        let mut files = BTreeMap::new();
        for commit in &self.commits[..=version as usize] {
            protocol = commit.protocol.clone().or(protocol);
            metadata = commit.metadata.clone().or(metadata);
            if let Some(why) = &commit.unsupported {
                return Err(DeltaError::Unsupported {
                    version,
                    why: why.clone(),
                });
            }
            // Within one commit a path is never both added and removed (the protocol forbids
            // it), so the order of the two does not matter.
            for (path, _) in &commit.removes {
                files.remove(path);
            }
            for add in &commit.adds {
                files.insert(add.path.clone(), add.clone());
            }
        }
        for (what, found) in [("protocol", protocol), ("metaData", metadata)] {
            match found {
                None => return Err(DeltaError::NoMetadata { version, what }),
                Some(Err(why)) => return Err(DeltaError::Unsupported { version, why }),
                Some(Ok(())) => {}
            }
        }
        Ok(files)
    }

    /// The latest moment the writer's clock may have read: the newest timestamp in the log
    /// plus [`CLOCK_SLACK_MS`].
    pub fn clock_bound_ms(&self) -> i64 {
        let stamps = self.commits.iter().flat_map(|c| {
            c.timestamp
                .into_iter()
                .chain(c.removes.iter().filter_map(|(_, at)| *at))
        });
        stamps.max().unwrap_or(0).saturating_add(CLOCK_SLACK_MS)
    }

    /// Whether a reader is owed `version` now: every one of its files that a later commit
    /// removed was removed less than `retention_ms` before [`Self::clock_bound_ms`], so no
    /// writer keeping that retention may have deleted it. The newest version is always owed,
    /// and so is one that cannot be read at all.
    pub fn within_retention(&self, version: u64, retention_ms: u64) -> bool {
        let Ok(files) = self.files_at(version) else {
            // Owed, so that reading it reports why it cannot be read: nothing a retention
            // excuses (its files' removals are not even known).
            return true;
        };
        let now = self.clock_bound_ms();
        let retention = i64::try_from(retention_ms).unwrap_or(i64::MAX);
        let later = &self.commits[version as usize + 1..];
        later.iter().all(|commit| {
            commit.removes.iter().all(|(path, at)| {
                !files.contains_key(path)
                    || at
                        .or(commit.timestamp)
                        .is_some_and(|at| now.saturating_sub(at) < retention)
            })
        })
    }
}

//! Names of everything the pipeline keeps under its root (see `docs/protocol.md`, "Layout").
//! Numbers are zero-padded to 20 digits so that sorted listings are in numeric order.

use std::path::{Path, PathBuf};

/// The Delta Lake transaction log: the commit point of published data.
pub const DELTA_LOG_DIR: &str = "_delta_log";
/// tally's private state. Its name starts with `_`, so Delta readers (and a Delta `VACUUM`)
/// leave it alone.
pub const PRIVATE_DIR: &str = "_tally";
/// Under [`PRIVATE_DIR`].
pub const LOG_DIR: &str = "log";
pub const DATA_DIR: &str = "data";
/// Under [`PRIVATE_DIR`].
pub const QUARANTINE_DIR: &str = "quarantine";
/// Under [`PRIVATE_DIR`].
pub const SEQ_FILE: &str = "SEQ";
/// The store marker, under [`PRIVATE_DIR`]: written first, when a store is created in an
/// empty directory, and required of every root opened afterwards. Holds exactly
/// [`MARKER_CONTENT`].
pub const MARKER_FILE: &str = "TALLY";
/// The marker's one line: what the directory is, and its format version (2: a Delta table;
/// format 1 kept a private manifest in the root, and is refused).
pub const MARKER_CONTENT: &[u8] = b"tally-store 2\n";
pub const TEMP_SUFFIX: &str = ".tmp";
const COMMIT_SUFFIX: &str = ".json";
/// A commit being written: `_commit_<version>.json.tmp` in `_delta_log/`. Delta readers list
/// `_delta_log/` and take only the names of commits and checkpoints, so they skip it.
const COMMIT_TEMP_PREFIX: &str = "_commit_";
const CHECKPOINT_SUFFIX: &str = ".checkpoint.parquet";
/// Checkpoint temp files: `_checkpoint_<version:020>.parquet.tmp`, a name Delta engines skip
/// (it does not start with a version).
const CHECKPOINT_TEMP_PREFIX: &str = "_checkpoint_";
/// In `_delta_log/`: the hint naming the newest checkpoint, for engines and for tally.
pub const LAST_CHECKPOINT: &str = "_last_checkpoint";

/// Paths under one root.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn private_dir(&self) -> PathBuf {
        self.root.join(PRIVATE_DIR)
    }
    pub fn delta_log_dir(&self) -> PathBuf {
        self.root.join(DELTA_LOG_DIR)
    }
    pub fn log_dir(&self) -> PathBuf {
        self.private_dir().join(LOG_DIR)
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join(DATA_DIR)
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.private_dir().join(QUARANTINE_DIR)
    }
    pub fn seq_file(&self) -> PathBuf {
        self.private_dir().join(SEQ_FILE)
    }
    pub fn segment_log(&self, segment: u64) -> PathBuf {
        self.log_dir().join(segment_log_name(segment))
    }
    pub fn segment_ack(&self, segment: u64) -> PathBuf {
        self.log_dir().join(segment_ack_name(segment))
    }
    pub fn table_file(&self, level: u32, id: u64) -> PathBuf {
        self.data_dir().join(table_file_name(level, id))
    }
    pub fn commit(&self, version: u64) -> PathBuf {
        self.delta_log_dir().join(commit_name(version))
    }
    pub fn commit_temp(&self, version: u64) -> PathBuf {
        self.delta_log_dir().join(commit_temp_name(version))
    }
    /// `_delta_log/<version:020>.checkpoint.parquet`.
    pub fn checkpoint(&self, version: u64) -> PathBuf {
        self.delta_log_dir().join(checkpoint_name(version))
    }
    pub fn checkpoint_temp(&self, version: u64) -> PathBuf {
        self.delta_log_dir().join(checkpoint_temp_name(version))
    }
    pub fn marker(&self) -> PathBuf {
        self.private_dir().join(MARKER_FILE)
    }
    /// A path relative to the root, as messages name it.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

pub fn segment_log_name(segment: u64) -> String {
    format!("{segment:020}.log")
}
pub fn segment_ack_name(segment: u64) -> String {
    format!("{segment:020}.ack")
}
pub fn table_file_name(level: u32, id: u64) -> String {
    format!("L{level}-{id:020}.parquet")
}
/// `<version:020>.json`: commit `version` of the Delta log.
pub fn commit_name(version: u64) -> String {
    format!("{version:020}{COMMIT_SUFFIX}")
}
pub fn commit_temp_name(version: u64) -> String {
    format!("{COMMIT_TEMP_PREFIX}{version:020}{COMMIT_SUFFIX}{TEMP_SUFFIX}")
}
/// `<version:020>.checkpoint.parquet`: the table at `version`, in one file.
pub fn checkpoint_name(version: u64) -> String {
    format!("{version:020}{CHECKPOINT_SUFFIX}")
}
pub fn checkpoint_temp_name(version: u64) -> String {
    format!("{CHECKPOINT_TEMP_PREFIX}{version:020}.parquet{TEMP_SUFFIX}")
}
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    parse_padded(name.strip_suffix(CHECKPOINT_SUFFIX)?)
}
fn parse_checkpoint_temp_name(name: &str) -> Option<u64> {
    let stem = name.strip_prefix(CHECKPOINT_TEMP_PREFIX)?;
    parse_padded(stem.strip_suffix(TEMP_SUFFIX)?.strip_suffix(".parquet")?)
}
/// The path an `add` or `remove` action names a table file by: relative to the root.
pub fn table_file_path(level: u32, id: u64) -> String {
    format!("{DATA_DIR}/{}", table_file_name(level, id))
}
/// `(level, id)` of a path an action names, only if it is exactly a name tally writes in
/// `data/`: no `..`, no absolute path, no other directory, no URL, no escaping.
pub fn parse_table_file_path(path: &str) -> Option<(u32, u64)> {
    let name = path.strip_prefix(DATA_DIR)?.strip_prefix('/')?;
    let parsed = parse_table_file_name(name)?;
    (table_file_path(parsed.0, parsed.1) == path).then_some(parsed)
}

/// What a name in the log directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFile {
    Log(u64),
    Ack(u64),
}

pub fn parse_segment_name(name: &str) -> Option<SegmentFile> {
    if let Some(n) = name.strip_suffix(".log") {
        return parse_padded(n).map(SegmentFile::Log);
    }
    name.strip_suffix(".ack")
        .and_then(parse_padded)
        .map(SegmentFile::Ack)
}

/// `(level, id)` of a table file name.
pub fn parse_table_file_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix('L')?.strip_suffix(".parquet")?;
    let (level, id) = rest.split_once('-')?;
    let level = level
        .parse()
        .ok()
        .filter(|_| level.bytes().all(|b| b.is_ascii_digit()))?;
    Some((level, parse_padded(id)?))
}

pub fn parse_commit_name(name: &str) -> Option<u64> {
    parse_padded(name.strip_suffix(COMMIT_SUFFIX)?)
}

fn parse_commit_temp_name(name: &str) -> Option<u64> {
    parse_commit_name(
        name.strip_prefix(COMMIT_TEMP_PREFIX)?
            .strip_suffix(TEMP_SUFFIX)?,
    )
}

fn parse_padded(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn is_temp(name: &str) -> bool {
    name.ends_with(TEMP_SUFFIX)
}

/// Whether `name` is a temp file tally writes: of `SEQ` or the marker (in `_tally/`), of a
/// commit, a checkpoint or `_last_checkpoint` (in `_delta_log/`), or of a table file (in
/// `data/`). Recovery removes only these; another `*.tmp` is not tally's and is left alone.
pub fn is_own_temp(name: &str) -> bool {
    parse_commit_temp_name(name).is_some()
        || parse_checkpoint_temp_name(name).is_some()
        || name.strip_suffix(TEMP_SUFFIX).is_some_and(|stem| {
            stem == SEQ_FILE
                || stem == MARKER_FILE
                || stem == LAST_CHECKPOINT
                || parse_table_file_name(stem).is_some()
        })
}

/// Whether `name` is one tally keeps in a store's root: its three directories.
pub fn is_root_entry(name: &str) -> bool {
    matches!(name, DATA_DIR | DELTA_LOG_DIR | PRIVATE_DIR)
}

/// Whether `name` is one tally keeps in `_tally/`: its directories, `SEQ`, the marker, and
/// the temp files of those two.
pub fn is_private_entry(name: &str) -> bool {
    matches!(name, LOG_DIR | QUARANTINE_DIR | SEQ_FILE | MARKER_FILE) || is_own_temp(name)
}

pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a file path").to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(parse_commit_name(&commit_name(42)), Some(42));
        assert_eq!(parse_commit_temp_name(&commit_temp_name(42)), Some(42));
        assert_eq!(parse_checkpoint_name(&checkpoint_name(40)), Some(40));
        assert_eq!(
            parse_checkpoint_temp_name(&checkpoint_temp_name(40)),
            Some(40)
        );
        assert!(is_own_temp(&checkpoint_temp_name(40)));
        assert!(is_own_temp("_last_checkpoint.tmp"));
        assert!(!is_own_temp("00000000000000000040.checkpoint.parquet"));
        assert_eq!(
            parse_table_file_path(&table_file_path(3, 99)),
            Some((3, 99))
        );
        assert_eq!(
            parse_segment_name(&segment_log_name(7)),
            Some(SegmentFile::Log(7))
        );
        assert_eq!(
            parse_segment_name(&segment_ack_name(7)),
            Some(SegmentFile::Ack(7))
        );
        assert_eq!(
            parse_table_file_name(&table_file_name(3, 99)),
            Some((3, 99))
        );
        assert_eq!(parse_table_file_name("L0-1.parquet"), None);
        assert_eq!(parse_commit_name("00000000000000000001.json.tmp"), None);
        assert_eq!(
            parse_commit_name("00000000000000000001.checkpoint.parquet"),
            None
        );
        assert!(is_temp(&commit_temp_name(1)));
    }

    #[test]
    fn only_temp_files_tally_writes_are_its_own() {
        for own in [
            "_commit_00000000000000000001.json.tmp",
            "SEQ.tmp",
            "TALLY.tmp",
            "L0-00000000000000000003.parquet.tmp",
        ] {
            assert!(is_own_temp(own), "{own}");
        }
        for other in [
            "notes.tmp",
            "x.tmp",
            ".tmp",
            "SEQ",
            "_commit_1.json.tmp",
            "00000000000000000001.json.tmp",
            "L0-1.parquet.tmp",
        ] {
            assert!(!is_own_temp(other), "{other}");
        }
    }

    #[test]
    fn an_action_path_is_accepted_only_as_a_name_tally_writes_in_data() {
        assert_eq!(
            parse_table_file_path("data/L0-00000000000000000007.parquet"),
            Some((0, 7))
        );
        for hostile in [
            "../L0-00000000000000000007.parquet",
            "data/../data/L0-00000000000000000007.parquet",
            "/data/L0-00000000000000000007.parquet",
            "/etc/passwd",
            "data//L0-00000000000000000007.parquet",
            "data/sub/L0-00000000000000000007.parquet",
            "L0-00000000000000000007.parquet",
            "file:///tmp/data/L0-00000000000000000007.parquet",
            "data/L0-00000000000000000007.parquet/",
            "data/L0-7.parquet",
            "data/L+0-00000000000000000007.parquet",
            "data%2FL0-00000000000000000007.parquet",
        ] {
            assert_eq!(parse_table_file_path(hostile), None, "{hostile}");
        }
    }

    #[test]
    fn padded_names_sort_numerically() {
        let mut names: Vec<_> = [10u64, 9, 100, 1].iter().map(|&v| commit_name(v)).collect();
        names.sort();
        let versions: Vec<_> = names.iter().filter_map(|n| parse_commit_name(n)).collect();
        assert_eq!(versions, [1, 9, 10, 100]);
    }
}

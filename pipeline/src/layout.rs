//! Names of everything the pipeline keeps under its root (see `docs/protocol.md`, "Layout").
//! Numbers are zero-padded to 20 digits so that sorted listings are in numeric order.

use std::path::{Path, PathBuf};

pub const LOG_DIR: &str = "log";
pub const DATA_DIR: &str = "data";
pub const QUARANTINE_DIR: &str = "quarantine";
pub const SEQ_FILE: &str = "SEQ";
/// The store marker: written first, when a store is created in an empty directory, and
/// required of every root opened afterwards. Holds exactly [`MARKER_CONTENT`].
pub const MARKER_FILE: &str = "TALLY";
/// The marker's one line: what the directory is, and its format version.
pub const MARKER_CONTENT: &[u8] = b"tally-store 1\n";
pub const TEMP_SUFFIX: &str = ".tmp";
const MANIFEST_PREFIX: &str = "MANIFEST-";

/// Paths under one root.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join(LOG_DIR)
    }
    pub fn data_dir(&self) -> PathBuf {
        self.root.join(DATA_DIR)
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join(QUARANTINE_DIR)
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
    pub fn manifest(&self, version: u64) -> PathBuf {
        self.root.join(manifest_name(version))
    }
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER_FILE)
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
pub fn manifest_name(version: u64) -> String {
    format!("{MANIFEST_PREFIX}{version:020}")
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

pub fn parse_manifest_name(name: &str) -> Option<u64> {
    parse_padded(name.strip_prefix(MANIFEST_PREFIX)?)
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

/// Whether `name` is a temp file tally writes: of a manifest, `SEQ` or the marker (in the
/// root), or of a table file (in `data/`). Recovery removes only these; another `*.tmp` is not
/// tally's and is left alone.
pub fn is_own_temp(name: &str) -> bool {
    name.strip_suffix(TEMP_SUFFIX).is_some_and(|stem| {
        stem == SEQ_FILE
            || stem == MARKER_FILE
            || parse_manifest_name(stem).is_some()
            || parse_table_file_name(stem).is_some()
    })
}

/// Whether `name` is one tally keeps in a store's root: its directories, `SEQ`, the marker,
/// manifests, and the temp files of those it writes.
pub fn is_root_entry(name: &str) -> bool {
    matches!(
        name,
        DATA_DIR | LOG_DIR | QUARANTINE_DIR | SEQ_FILE | MARKER_FILE
    ) || parse_manifest_name(name).is_some()
        || is_own_temp(name)
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
        assert_eq!(parse_manifest_name(&manifest_name(42)), Some(42));
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
        assert_eq!(
            parse_manifest_name("MANIFEST-00000000000000000001.tmp"),
            None
        );
        assert!(is_temp("MANIFEST-00000000000000000001.tmp"));
    }

    #[test]
    fn only_temp_files_tally_writes_are_its_own() {
        for own in [
            "MANIFEST-00000000000000000001.tmp",
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
            "MANIFEST-1.tmp",
            "L0-1.parquet.tmp",
        ] {
            assert!(!is_own_temp(other), "{other}");
        }
    }

    #[test]
    fn padded_names_sort_numerically() {
        let mut names: Vec<_> = [10u64, 9, 100, 1]
            .iter()
            .map(|&v| manifest_name(v))
            .collect();
        names.sort();
        let versions: Vec<_> = names
            .iter()
            .filter_map(|n| parse_manifest_name(n))
            .collect();
        assert_eq!(versions, [1, 9, 10, 100]);
    }
}

//! The manifest: the single commit point of published data (see `docs/protocol.md`).
//!
//! On disk: a first line `tally-manifest 1 <crc32c hex> <body length>` and a JSON body. A file
//! whose line, length or checksum does not hold is *invalid*, never partially trusted.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;
const MAGIC: &str = "tally-manifest";

/// One published table file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub id: u64,
    pub level: u32,
    pub rows: u64,
    /// Smallest and largest sequence number of the file's rows (inclusive).
    pub seq_min: u64,
    pub seq_max: u64,
    pub bytes: u64,
    /// CRC-32C of the file's `bytes` bytes, computed over exactly what was written and
    /// recorded at commit; merges, exports and `verify --deep` check it before trusting the
    /// bytes. `None` in manifests of versions before it was recorded (the field is then absent
    /// from the JSON): such files are read unchecked, and `verify --deep` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
}

/// `<id> (level <l>, seq <min>..=<max>)`: how errors and reports name a file among others.
impl std::fmt::Display for FileEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (level {}, seq {}..={})",
            self.id, self.level, self.seq_min, self.seq_max
        )
    }
}

/// What the ledger holds for one source: the number of rows acknowledged (always a prefix of
/// the source), whether its last part was acknowledged, and the fingerprint of the content
/// those rows were taken from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub rows: u64,
    pub complete: bool,
    /// Bound by the source's first acknowledged part; every later part must carry the same
    /// one, so rows of two different contents never join one source. `None` when the caller
    /// does not identify content (the harness's workloads, `Pipeline::ingest_part`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

/// The identity of a source's content, chosen by the caller: `tally run` records the input
/// file's size in bytes and an XXH3-64 checksum of its bytes. Two fingerprints are equal only
/// if both fields are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub bytes: u64,
    pub checksum: u64,
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, checksum {:016x}", self.bytes, self.checksum)
    }
}

impl Fingerprint {
    /// `f` for messages: the fingerprint, or that none was given.
    pub fn describe(f: Option<Fingerprint>) -> String {
        f.map_or_else(|| "not identified".into(), |f| f.to_string())
    }
}

impl SourceState {
    /// Whether the ledger holds anything of the source (rows, or its completion).
    pub fn is_known(&self) -> bool {
        self.rows > 0 || self.complete
    }

    /// Whether a part carrying `fingerprint` may continue this source: a source the ledger
    /// does not know yet takes any; a known one only its own.
    pub fn accepts(&self, fingerprint: Option<Fingerprint>) -> bool {
        !self.is_known() || self.fingerprint == fingerprint
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u64,
    pub next_file_id: u64,
    /// Every log segment numbered at or below this has been staged (segments start at 1).
    pub log_through: u64,
    /// The table's columns without the sequence column; `None` until the first batch.
    pub schema: Option<Schema>,
    /// Live files, ordered by `seq_min`.
    pub files: Vec<FileEntry>,
    /// The ledger of every published row, by source.
    pub sources: BTreeMap<String, SourceState>,
}

/// One of the store's directories holding files recovery may remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreDir {
    Root,
    Data,
    Log,
}

/// A file recovery removes (protocol "Recover", step 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// `*.tmp`: a write that never reached its rename.
    Temp,
    /// A table file the manifest does not reference: the output of a step that never
    /// published, or an input a published step superseded.
    Unreferenced { id: u64 },
    /// A log segment file at or below `log_through`: already staged.
    Staged,
}

impl Leftover {
    pub fn describe(self) -> &'static str {
        match self {
            Leftover::Temp => "a temp file",
            Leftover::Unreferenced { .. } => "referenced by no manifest",
            Leftover::Staged => "a log segment already staged",
        }
    }
}

impl Manifest {
    /// Whether the file `name` in `dir` is a leftover under this manifest.
    pub fn leftover(&self, dir: StoreDir, name: &str) -> Option<Leftover> {
        if crate::layout::is_own_temp(name) {
            return Some(Leftover::Temp);
        }
        match dir {
            StoreDir::Root => None,
            StoreDir::Data => {
                let (level, id) = crate::layout::parse_table_file_name(name)?;
                let live = self.files.iter().any(|f| f.level == level && f.id == id);
                (!live).then_some(Leftover::Unreferenced { id })
            }
            StoreDir::Log => match crate::layout::parse_segment_name(name)? {
                crate::layout::SegmentFile::Log(n) | crate::layout::SegmentFile::Ack(n) => {
                    (n <= self.log_through).then_some(Leftover::Staged)
                }
            },
        }
    }

    /// The state of an empty root, before any manifest was published.
    pub fn empty() -> Self {
        Self {
            version: 0,
            next_file_id: 1,
            log_through: 0,
            schema: None,
            files: Vec::new(),
            sources: BTreeMap::new(),
        }
    }

    /// Whether the files have the shape every publish keeps: in sequence order with disjoint
    /// ranges, levels never increasing along that order (so each row is written at most once
    /// per level), each file's range wide enough for its rows, every file id below
    /// `next_file_id` (so no id is handed out twice, and no published file overwritten).
    /// Returns the first departure. Costs O(files).
    pub fn check_files(&self) -> Result<(), String> {
        for f in &self.files {
            if !(f.rows > 0 && f.seq_min <= f.seq_max && f.seq_max - f.seq_min >= f.rows - 1) {
                return Err(format!("file {f} cannot hold its {} rows", f.rows));
            }
            if f.id >= self.next_file_id {
                return Err(format!(
                    "file id {} not below next_file_id {}",
                    f.id, self.next_file_id
                ));
            }
        }
        match self
            .files
            .windows(2)
            .find(|w| !(w[0].seq_max < w[1].seq_min && w[0].level >= w[1].level))
        {
            Some(w) => Err(format!(
                "files {} and {} are out of order, overlap or interleave levels",
                w[0], w[1]
            )),
            None => Ok(()),
        }
    }

    /// Panics unless the manifest has the shape every publish keeps ([`Self::check_files`])
    /// and as many rows in its files as its ledger records. Costs O(files + sources), as
    /// encoding the manifest does.
    pub fn assert_invariants(&self) {
        if let Err(why) = self.check_files() {
            panic!("manifest version {}: {why}", self.version);
        }
        assert_eq!(
            self.rows(),
            self.source_rows(),
            "manifest version {}: rows in files vs rows its ledger records",
            self.version
        );
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn source_rows(&self) -> u64 {
        self.sources.values().map(|s| s.rows).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("a manifest always serializes");
        let crc = crc32c::crc32c(&body);
        let mut out = format!("{MAGIC} {FORMAT} {crc:08x} {}\n", body.len()).into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes the file named for `version`, or says why it is invalid (including a valid
    /// manifest of another version under that name).
    pub fn decode_version(bytes: &[u8], version: u64) -> Result<Self, String> {
        let manifest = Self::decode(bytes)?;
        if manifest.version != version {
            return Err(format!(
                "holds version {} under the name of {version}",
                manifest.version
            ));
        }
        Ok(manifest)
    }

    /// Decodes a manifest file, or says why it is invalid.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("no header line")?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not UTF-8")?;
        let body = &bytes[newline + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        let [magic, format, crc, len] = fields[..] else {
            return Err(format!("malformed header {header:?}"));
        };
        if magic != MAGIC {
            return Err(format!("not a manifest (header {header:?})"));
        }
        if format != FORMAT.to_string() {
            return Err(format!("unknown manifest format {format}"));
        }
        let len: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
        if len != body.len() {
            return Err(format!("body is {} bytes, header says {len}", body.len()));
        }
        let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum {crc:?}"))?;
        if crc32c::crc32c(body) != crc {
            return Err("checksum mismatch".to_string());
        }
        serde_json::from_slice(body).map_err(|e| format!("malformed body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field};

    fn sample() -> Manifest {
        let mut m = Manifest::empty();
        m.version = 3;
        m.schema = Some(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        m.files.push(FileEntry {
            id: 1,
            level: 0,
            rows: 10,
            seq_min: 0,
            seq_max: 9,
            bytes: 1234,
            crc32c: Some(0xdead_beef),
        });
        m.sources.insert(
            "a".into(),
            SourceState {
                rows: 10,
                complete: true,
                fingerprint: None,
            },
        );
        m
    }

    #[test]
    fn leftovers_are_what_the_manifest_does_not_hold() {
        let mut m = sample();
        m.log_through = 4;
        let data = |n: &str| m.leftover(StoreDir::Data, n);
        assert_eq!(data("L0-00000000000000000001.parquet"), None, "live");
        assert_eq!(
            data("L1-00000000000000000001.parquet"),
            Some(Leftover::Unreferenced { id: 1 }),
            "same id, other level"
        );
        assert_eq!(
            data("L0-00000000000000000001.parquet.tmp"),
            Some(Leftover::Temp)
        );
        assert_eq!(data("notes.txt"), None, "not ours: left alone");
        let log = |n: &str| m.leftover(StoreDir::Log, n);
        assert_eq!(log("00000000000000000004.ack"), Some(Leftover::Staged));
        assert_eq!(log("00000000000000000005.log"), None, "live segment");
        assert_eq!(m.leftover(StoreDir::Root, "SEQ"), None);
        assert_eq!(m.leftover(StoreDir::Root, "SEQ.tmp"), Some(Leftover::Temp));
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn a_manifest_written_before_checksums_were_recorded_reads_with_none() {
        let mut m = sample();
        m.files[0].crc32c = None;
        let bytes = m.encode();
        assert!(!String::from_utf8_lossy(&bytes).contains("crc32c"));
        assert_eq!(Manifest::decode(&bytes).unwrap().files[0].crc32c, None);
    }

    #[test]
    fn any_truncation_or_flipped_byte_is_invalid() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(Manifest::decode(&damaged).is_err(), "byte {i}");
        }
    }
}

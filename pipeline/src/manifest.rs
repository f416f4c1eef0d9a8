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
}

/// What the ledger holds for one source: the number of rows acknowledged (always a prefix of
/// the source) and whether its last part was acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub rows: u64,
    pub complete: bool,
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

impl Manifest {
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
        });
        m.sources.insert(
            "a".into(),
            SourceState {
                rows: 10,
                complete: true,
            },
        );
        m
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
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

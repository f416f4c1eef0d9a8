//! One commit file: the actions that take the table from one version to the next, sealed by
//! a checksum in its first line; and the reading of it back into the table's state.
//!
//! A commit holds, in this order: `commitInfo` (with the seal), `protocol` and `metaData` when
//! they change (always in commit 0), `remove` of every file that left the table, `add` of
//! every file that joined it, `txn` of every source whose published rows changed, and
//! `domainMetadata` `tally` holding tally's whole state (everything recovery needs beside
//! the files). A commit that removes files only rearranges rows (a merge): its actions say
//! `dataChange: false`.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

use super::action::{
    Action, Add, CommitInfo, CommitSeal, DomainMetadata, Format, MetaData, Remove, Stats, Txn,
};
use super::schema::{self, Unsupported};
use crate::layout;
use crate::manifest::{FileEntry, Manifest, SourceState, Tombstone};

/// The `domainMetadata` domain holding tally's state.
pub const DOMAIN: &str = "tally";
/// The format of the seal and of the state document.
pub const FORMAT: u32 = 1;
const ENGINE: &str = concat!("tally/", env!("CARGO_PKG_VERSION"));
const CRC_TAG: &str = "tally.crc32c";
const SEQ_MIN_TAG: &str = "tally.seq_min";
const SEQ_MAX_TAG: &str = "tally.seq_max";
const TXN_PREFIX: &str = "tally:";

/// tally's state beside the files: the `configuration` of its domain, as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: u32,
    next_file_id: u64,
    log_through: u64,
    schema: Option<Schema>,
    sources: BTreeMap<String, SourceState>,
}

/// Why a commit file cannot be read as one tally wrote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn unreadable(why: impl Into<String>) -> Unreadable {
    Unreadable(why.into())
}

/// The bytes of the commit taking `prev` to `next` (`next.version` is `prev.version + 1`, or
/// 0 for the commit creating the table), made at `now_ms`.
pub fn encode(
    prev: Option<&Manifest>,
    next: &Manifest,
    now_ms: i64,
) -> Result<Vec<u8>, Unsupported> {
    let mut actions = Vec::new();
    let prev_schema = prev.map(|p| p.schema.as_ref());
    if prev.is_none() || prev_schema != Some(next.schema.as_ref()) {
        let protocol = schema::protocol_for(next.schema.as_ref());
        if prev.is_none_or(|p| schema::protocol_for(p.schema.as_ref()) != protocol) {
            actions.push(Action::Protocol(protocol));
        }
        actions.push(Action::MetaData(metadata(next, now_ms)?));
    }
    let empty = Manifest::empty();
    let prev_state = prev.unwrap_or(&empty);
    let removed: Vec<&FileEntry> = prev_state
        .files
        .iter()
        .filter(|f| !next.files.contains(f))
        .collect();
    let data_change = removed.is_empty();
    for file in &removed {
        actions.push(Action::Remove(remove(file, now_ms)));
    }
    for file in next.files.iter().filter(|f| !prev_state.files.contains(f)) {
        actions.push(Action::Add(add(file, now_ms, data_change)));
    }
    for (source, state) in &next.sources {
        if prev_state.sources.get(source).map(|s| s.rows) != Some(state.rows) {
            actions.push(Action::Txn(Txn {
                app_id: format!("{TXN_PREFIX}{source}"),
                version: state.rows,
                last_updated: now_ms,
            }));
        }
    }
    actions.push(Action::DomainMetadata(domain(next)));
    let operation = match (prev, data_change) {
        (None, _) => "CREATE TABLE",
        (Some(_), true) => "WRITE",
        (Some(_), false) => "OPTIMIZE",
    };
    Ok(seal(&actions, operation, now_ms))
}

/// The first line (commit info with the seal), then one action per line. The checksum covers
/// the whole file as it would read with [`UNSEALED`] in the place of the checksum's digits.
fn seal(actions: &[Action], operation: &str, now_ms: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for action in actions {
        serde_json::to_writer(&mut body, action).expect("an action always serializes");
        body.push(b'\n');
    }
    let info = Action::CommitInfo(CommitInfo {
        timestamp: now_ms,
        operation: operation.to_string(),
        operation_parameters: BTreeMap::new(),
        engine_info: ENGINE.to_string(),
        tally: CommitSeal {
            format: FORMAT,
            crc32c: UNSEALED.to_string(),
            bytes: body.len() as u64,
        },
    });
    let mut out = serde_json::to_vec(&info).expect("commit info always serializes");
    out.push(b'\n');
    out.extend_from_slice(&body);
    let crc = format!("{:08x}", crc32c::crc32c(&out));
    let at = seal_digits(&out).expect("the seal was just written");
    out[at..at + UNSEALED.len()].copy_from_slice(crc.as_bytes());
    out
}

/// The checksum's digits while it is computed.
const UNSEALED: &str = "00000000";

/// Where the checksum's eight digits are in a commit: inside its first line, the one
/// `"crc32c":"` there.
fn seal_digits(bytes: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"crc32c\":\"";
    let line = bytes.split(|&b| b == b'\n').next()?;
    let mut found = line
        .windows(KEY.len())
        .enumerate()
        .filter(|(_, w)| *w == KEY);
    let (at, _) = found.next()?;
    let digits = at + KEY.len();
    (found.next().is_none() && line.len() >= digits + UNSEALED.len()).then_some(digits)
}

fn metadata(next: &Manifest, now_ms: i64) -> Result<MetaData, Unsupported> {
    Ok(MetaData {
        id: next.table_id.clone(),
        format: Format {
            provider: "parquet".into(),
            options: BTreeMap::new(),
        },
        schema_string: schema::schema_string(next.schema.as_ref())?,
        partition_columns: Vec::new(),
        configuration: BTreeMap::new(),
        created_time: now_ms,
    })
}

/// The `tally_seq` range of the file, and the checksum of its bytes when recorded.
fn tags(file: &FileEntry) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (SEQ_MIN_TAG.to_string(), file.seq_min.to_string()),
        (SEQ_MAX_TAG.to_string(), file.seq_max.to_string()),
    ]);
    if let Some(crc) = file.crc32c {
        tags.insert(CRC_TAG.to_string(), format!("{crc:08x}"));
    }
    tags
}

fn add(file: &FileEntry, now_ms: i64, data_change: bool) -> Add {
    let stats = file
        .stats
        .clone()
        .unwrap_or_else(|| records_only(file.rows));
    Add {
        path: layout::table_file_path(file.level, file.id),
        partition_values: BTreeMap::new(),
        size: file.bytes,
        modification_time: now_ms,
        data_change,
        stats,
        tags: tags(file),
    }
}

/// `add.stats` of a file without column statistics.
fn records_only(rows: u64) -> String {
    serde_json::to_string(&Stats { num_records: rows }).expect("stats always serialize")
}

fn remove(file: &FileEntry, now_ms: i64) -> Remove {
    Remove {
        path: layout::table_file_path(file.level, file.id),
        deletion_timestamp: now_ms,
        data_change: false,
        extended_file_metadata: true,
        partition_values: BTreeMap::new(),
        size: file.bytes,
        tags: tags(file),
    }
}

fn domain(next: &Manifest) -> DomainMetadata {
    let state = State {
        format: FORMAT,
        next_file_id: next.next_file_id,
        log_through: next.log_through,
        schema: next.schema.clone(),
        sources: next.sources.clone(),
    };
    DomainMetadata {
        domain: DOMAIN.to_string(),
        configuration: serde_json::to_string(&state).expect("the state always serializes"),
        removed: false,
    }
}

/// The actions of a commit file, once its seal holds and every line is an action tally
/// writes. Says why otherwise.
pub fn decode(bytes: &[u8]) -> Result<Vec<Action>, Unreadable> {
    #[cfg(feature = "memo")]
    {
        type Decoded = Result<Vec<Action>, Unreadable>;
        thread_local! {
            static DECODED: std::cell::RefCell<crate::memo::Memo<Decoded>> =
                const { std::cell::RefCell::new(crate::memo::Memo::new(64)) };
        }
        if let Some(decoded) = DECODED.with_borrow(|memo| memo.get(0, bytes)) {
            return decoded;
        }
        let decoded = decode_bytes(bytes);
        DECODED.with_borrow_mut(|memo| memo.put(0, bytes.to_vec(), decoded.clone()));
        decoded
    }
    #[cfg(not(feature = "memo"))]
    decode_bytes(bytes)
}

fn decode_bytes(bytes: &[u8]) -> Result<Vec<Action>, Unreadable> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| unreadable("no first line"))?;
    let body = &bytes[newline + 1..];
    let Ok(Action::CommitInfo(info)) = serde_json::from_slice::<Action>(&bytes[..newline]) else {
        return Err(unreadable(
            "its first line is not tally's commit info: not a commit tally wrote",
        ));
    };
    if info.tally.format != FORMAT {
        return Err(unreadable(format!(
            "unknown commit format {}",
            info.tally.format
        )));
    }
    if info.tally.bytes != body.len() as u64 {
        return Err(unreadable(format!(
            "{} bytes follow the first line, its seal says {}",
            body.len(),
            info.tally.bytes
        )));
    }
    let at = seal_digits(bytes).ok_or_else(|| unreadable("its seal is malformed"))?;
    let mut unsealed = bytes.to_vec();
    unsealed[at..at + UNSEALED.len()].copy_from_slice(UNSEALED.as_bytes());
    if format!("{:08x}", crc32c::crc32c(&unsealed)) != info.tally.crc32c {
        return Err(unreadable("checksum mismatch"));
    }
    let mut actions = vec![Action::CommitInfo(info)];
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let action =
            serde_json::from_slice(line).map_err(|e| unreadable(format!("line {}: {e}", n + 2)))?;
        actions.push(action);
    }
    Ok(actions)
}

/// Applies the actions of commit `version` to the state `table` holds (the previous version's,
/// or `None` before commit 0). Refuses what tally never writes: a path outside `data/`'s names,
/// a file added twice or removed while not in the table, a commit without tally's state, a
/// first commit without protocol and metadata, a `txn` disagreeing with the ledger.
pub fn apply(
    table: Option<Manifest>,
    version: u64,
    actions: Vec<Action>,
) -> Result<Manifest, Unreadable> {
    let first = table.is_none();
    let mut table = table.unwrap_or_else(Manifest::empty);
    table.version = version;
    let (mut protocol, mut state, mut txns) = (false, None, BTreeMap::new());
    for action in actions {
        match action {
            Action::CommitInfo(_) => {}
            Action::Protocol(_) => protocol = true,
            Action::MetaData(m) => table.table_id = m.id,
            Action::Add(a) => add_file(&mut table, a)?,
            Action::Remove(r) => remove_file(&mut table, r)?,
            Action::Txn(t) => {
                let source = t.app_id.strip_prefix(TXN_PREFIX).ok_or_else(|| {
                    unreadable(format!("a txn of application {:?}, not tally's", t.app_id))
                })?;
                txns.insert(source.to_string(), t.version);
            }
            Action::DomainMetadata(d) if d.domain == DOMAIN && !d.removed => {
                let parsed: State = serde_json::from_str(&d.configuration)
                    .map_err(|e| unreadable(format!("tally's state: {e}")))?;
                state = Some(parsed);
            }
            Action::DomainMetadata(d) => {
                return Err(unreadable(format!(
                    "domain metadata {:?} is not tally's",
                    d.domain
                )));
            }
        }
    }
    if first && (!protocol || table.table_id.is_empty()) {
        return Err(unreadable(
            "the first commit lacks the protocol or the table's metadata",
        ));
    }
    let state = state.ok_or_else(|| unreadable("no tally state: not a commit tally wrote"))?;
    if state.format != FORMAT {
        return Err(unreadable(format!("unknown state format {}", state.format)));
    }
    for (source, rows) in txns {
        if state.sources.get(&source).map(|s| s.rows) != Some(rows) {
            return Err(unreadable(format!(
                "txn of source {source:?} says {rows} rows, tally's state disagrees"
            )));
        }
    }
    table.next_file_id = state.next_file_id;
    table.log_through = state.log_through;
    table.schema = state.schema;
    table.sources = state.sources;
    table.files.sort_by_key(|f| f.seq_min);
    Ok(table)
}

fn add_file(table: &mut Manifest, add: Add) -> Result<(), Unreadable> {
    let (level, id) = parse_path(&add.path)?;
    let stats: Stats = serde_json::from_str(&add.stats)
        .map_err(|e| unreadable(format!("stats of {}: {e}", add.path)))?;
    // Column statistics are kept as written: anything but the `numRecords` a file without
    // them gets.
    let column_stats = (add.stats != records_only(stats.num_records)).then(|| add.stats.clone());
    if table.files.iter().any(|f| f.id == id) || table.tombstone(level, id).is_some() {
        return Err(unreadable(format!("adds {} a second time", add.path)));
    }
    table.files.push(FileEntry {
        id,
        level,
        rows: stats.num_records,
        seq_min: seq_tag(&add.tags, SEQ_MIN_TAG, &add.path)?,
        seq_max: seq_tag(&add.tags, SEQ_MAX_TAG, &add.path)?,
        bytes: add.size,
        crc32c: crc_tag(&add.tags, &add.path)?,
        stats: column_stats,
    });
    Ok(())
}

fn remove_file(table: &mut Manifest, remove: Remove) -> Result<(), Unreadable> {
    let (level, id) = parse_path(&remove.path)?;
    let at = table
        .files
        .iter()
        .position(|f| f.level == level && f.id == id)
        .ok_or_else(|| {
            unreadable(format!(
                "removes {}, which is not in the table",
                remove.path
            ))
        })?;
    let file = table.files.remove(at);
    table.tombstones.push(Tombstone {
        level,
        id,
        bytes: file.bytes,
        removed_at_ms: remove.deletion_timestamp,
    });
    Ok(())
}

fn parse_path(path: &str) -> Result<(u32, u64), Unreadable> {
    layout::parse_table_file_path(path).ok_or_else(|| {
        unreadable(format!(
            "names the file {path:?}, which is not a table file tally writes in data/"
        ))
    })
}

fn seq_tag(tags: &BTreeMap<String, String>, key: &str, path: &str) -> Result<u64, Unreadable> {
    tags.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unreadable(format!("{path} has no valid {key} tag")))
}

fn crc_tag(tags: &BTreeMap<String, String>, path: &str) -> Result<Option<u32>, Unreadable> {
    tags.get(CRC_TAG)
        .map(|hex| {
            u32::from_str_radix(hex, 16)
                .map_err(|_| unreadable(format!("checksum tag of {path}: {hex:?}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field};

    fn created() -> Manifest {
        let mut m = Manifest::empty();
        m.table_id = "00000000-0000-4000-8000-000000000000".into();
        m
    }

    fn staged(prev: &Manifest) -> Manifest {
        let mut m = prev.clone();
        m.version += 1;
        m.next_file_id = 2;
        m.log_through = 1;
        m.schema = Some(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        m.files.push(FileEntry {
            id: 1,
            level: 0,
            rows: 10,
            seq_min: 0,
            seq_max: 9,
            bytes: 1234,
            crc32c: Some(0xdead_beef),
            stats: None,
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

    fn read(prev: Option<&Manifest>, version: u64, bytes: &[u8]) -> Result<Manifest, Unreadable> {
        decode(bytes).and_then(|actions| apply(prev.cloned(), version, actions))
    }

    #[test]
    fn a_commit_reads_back_as_the_state_it_was_written_from() {
        let zero = created();
        let bytes = encode(None, &zero, 5).unwrap();
        assert_eq!(read(None, 0, &bytes).unwrap(), zero);
        let one = staged(&zero);
        let bytes = encode(Some(&zero), &one, 6).unwrap();
        assert_eq!(read(Some(&zero), 1, &bytes).unwrap(), one);
    }

    #[test]
    fn a_merge_commit_removes_its_inputs_as_tombstones_without_a_data_change() {
        let zero = created();
        let one = staged(&zero);
        let mut two = one.clone();
        two.version = 2;
        two.next_file_id = 3;
        two.files = vec![FileEntry {
            id: 2,
            level: 1,
            ..one.files[0].clone()
        }];
        two.tombstones.push(Tombstone {
            level: 0,
            id: 1,
            bytes: 1234,
            removed_at_ms: 7,
        });
        let bytes = encode(Some(&one), &two, 7).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"operation\":\"OPTIMIZE\""), "{text}");
        assert!(!text.contains("\"dataChange\":true"), "{text}");
        assert_eq!(read(Some(&one), 2, &bytes).unwrap(), two);
    }

    #[test]
    fn any_truncation_or_flipped_byte_is_unreadable() {
        let zero = created();
        let bytes = encode(Some(&zero), &staged(&zero), 6).unwrap();
        for cut in 0..bytes.len() {
            assert!(read(Some(&zero), 1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(read(Some(&zero), 1, &damaged).is_err(), "byte {i}");
        }
    }

    /// A sealed commit (its checksum recomputed) whose add names a path outside `data/`'s
    /// names: what a tampered log looks like.
    fn with_path(path: &str) -> Vec<u8> {
        let zero = created();
        let text = String::from_utf8(encode(Some(&zero), &staged(&zero), 6).unwrap()).unwrap();
        let body: Vec<Action> = text
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .map(|a| match a {
                Action::Add(mut add) => {
                    add.path = path.to_string();
                    Action::Add(add)
                }
                other => other,
            })
            .collect();
        seal(&body, "WRITE", 6)
    }

    #[test]
    fn a_sealed_commit_naming_a_path_outside_data_is_refused() {
        let zero = created();
        assert!(
            read(
                Some(&zero),
                1,
                &with_path("data/L0-00000000000000000001.parquet")
            )
            .is_ok()
        );
        for hostile in [
            "../outside.parquet",
            "/etc/passwd",
            "data/../../x.parquet",
            "_tally/SEQ",
        ] {
            let err = read(Some(&zero), 1, &with_path(hostile)).unwrap_err();
            assert!(
                err.0.contains("not a table file tally writes"),
                "{hostile}: {err}"
            );
        }
    }

    #[test]
    fn a_commit_another_writer_made_is_not_read_as_tallys() {
        let foreign = b"{\"commitInfo\":{\"timestamp\":1,\"operation\":\"WRITE\"}}\n\
                        {\"add\":{\"path\":\"part-0.parquet\",\"partitionValues\":{},\"size\":1,\
                        \"modificationTime\":1,\"dataChange\":true}}\n";
        let err = read(Some(&created()), 1, foreign).unwrap_err();
        assert!(err.0.contains("not tally's commit info"), "{err}");
    }
}

//! Checkpoints: the whole table at one version in a single Parquet file,
//! `_delta_log/<version:020>.checkpoint.parquet`, in the schema Delta engines read (one
//! non-null action struct per row), so that opening a store (tally's and any engine's) reads
//! it and the commits after it instead of every commit since 0. `_last_checkpoint` points at
//! the newest one; it is only a hint, to engines and to tally.
//!
//! Integrity: a checkpoint is read only if its seal holds. The seal (footer key
//! [`SEAL_KEY`], a JSON [`Seal`]) records the CRC-32C of the whole file (computed with its
//! own digits zeroed, as a commit's seal is; checked before the Parquet reader sees a byte,
//! since that reader can panic on damaged input), the CRC-32C of the checkpoint's actions as
//! tally encodes them, the number of rows, and the checksum of the commit of the same version
//! (the seal of `<version>.json`). Reading one back re-encodes the rows it parsed and
//! compares, and reads the commit of its version (always kept: tally never deletes commits)
//! to check that the checkpoint was made from that very commit. So a torn, rotten or
//! foreign checkpoint, or a stale one left over from a log rolled back past its version, is
//! refused and the commits are replayed instead: a checkpoint can only give back a state tally
//! held in memory right after that commit was durable, which is the replay of the commits
//! through it (checked by `publish` in debug builds, and by `tally verify` on any store), less
//! the tombstones dropped as expired.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use tally_sim::{CreateMode, Fs, FsFile};

use super::action::{Action, Remove};
use super::commit::{self, Unreadable};
use crate::error::{Error, Result};
use crate::fsutil::is_not_found;
use crate::layout::{self, Layout};
use crate::manifest::{Manifest, Tombstone};

/// The footer key holding the seal.
pub const SEAL_KEY: &str = "tally.checkpoint";
/// The format of the seal.
pub const FORMAT: u32 = 1;
/// The file checksum's digits while it is computed.
const UNSEALED: &str = "00000000";
const FILE_CRC_KEY: &[u8] = b"\"file_crc32c\":\"";

/// What makes a checkpoint checkable: see the module's comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub format: u32,
    pub version: u64,
    pub rows: u64,
    /// CRC-32C of the rows' actions, each encoded as a commit line (JSON and a newline).
    pub crc32c: String,
    /// CRC-32C of the whole file as it reads with [`UNSEALED`] in the place of these digits:
    /// checked before the Parquet reader sees a byte (it may panic on damaged input).
    pub file_crc32c: String,
    /// The checksum in the seal of commit `version`.
    pub commit_crc32c: String,
    /// Tombstones of the commits removed at or before this (milliseconds since the epoch)
    /// may be missing from the checkpoint: dropped, their retention passed and their files
    /// deleted. Every later one is in it.
    pub tombstones_kept_after_ms: i64,
}

/// A checkpoint read back whole, its seal holding.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub table: Manifest,
    pub seal: Seal,
}

/// Why a checkpoint is not used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadCheckpoint {
    /// Relative to the root: `_delta_log/<version:020>.checkpoint.parquet`.
    pub file: String,
    pub version: u64,
    pub reason: String,
}

/// The versions of every checkpoint in `_delta_log/`, in increasing order.
pub async fn checkpoint_versions<F: Fs>(fs: &F, layout: &Layout) -> Result<Vec<u64>> {
    Ok(super::log::list(fs, layout).await?.checkpoints)
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn long(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

fn boolean(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Boolean, nullable)
}

/// `map<string, string>`, as Delta's checkpoints spell it (engines accept any field names).
fn string_map(name: &str, nullable: bool) -> Field {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![utf8("key", false), utf8("value", true)])),
        false,
    );
    Field::new(name, DataType::Map(Arc::new(entries), false), nullable)
}

fn string_list(name: &str, nullable: bool) -> Field {
    let element = Arc::new(utf8("element", true));
    Field::new(name, DataType::List(element), nullable)
}

fn action(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

/// The Arrow schema of a checkpoint: Delta's action structs, every one nullable (one is set
/// per row), with the fields engines need (protocol spec, "Checkpoint Schema").
pub fn arrow_schema() -> SchemaRef {
    let add = vec![
        utf8("path", false),
        string_map("partitionValues", false),
        long("size", false),
        long("modificationTime", false),
        boolean("dataChange", false),
        utf8("stats", true),
        string_map("tags", true),
    ];
    let remove = vec![
        utf8("path", false),
        long("deletionTimestamp", true),
        boolean("dataChange", false),
        boolean("extendedFileMetadata", true),
        string_map("partitionValues", true),
        long("size", true),
        string_map("tags", true),
    ];
    let format = Fields::from(vec![utf8("provider", false), string_map("options", false)]);
    let metadata = vec![
        utf8("id", false),
        utf8("name", true),
        utf8("description", true),
        Field::new("format", DataType::Struct(format), false),
        utf8("schemaString", false),
        string_list("partitionColumns", false),
        long("createdTime", true),
        string_map("configuration", false),
    ];
    let protocol = vec![
        Field::new("minReaderVersion", DataType::Int32, false),
        Field::new("minWriterVersion", DataType::Int32, false),
        string_list("readerFeatures", true),
        string_list("writerFeatures", true),
    ];
    let txn = vec![
        utf8("appId", false),
        long("version", false),
        long("lastUpdated", true),
    ];
    let domain = vec![
        utf8("domain", false),
        utf8("configuration", false),
        boolean("removed", false),
    ];
    Arc::new(Schema::new(vec![
        action("txn", txn),
        action("add", add),
        action("remove", remove),
        action("metaData", metadata),
        action("protocol", protocol),
        action("domainMetadata", domain),
    ]))
}

/// The actions of a checkpoint of `table`: those of a commit creating it from nothing
/// (protocol, metadata, an add per file, a txn per source, tally's domain), then a remove per
/// tombstone, oldest removal first.
pub fn actions(table: &Manifest, now_ms: i64) -> Result<Vec<Action>> {
    let bytes = commit::encode(None, table, now_ms).map_err(|e| Error::Format {
        context: format!("checkpoint {}", table.version),
        detail: e.to_string(),
    })?;
    let mut actions = commit::decode(&bytes).expect("a commit just encoded decodes");
    actions.retain(|a| !matches!(a, Action::CommitInfo(_)));
    for t in &table.tombstones {
        actions.push(Action::Remove(Remove {
            path: layout::table_file_path(t.level, t.id),
            deletion_timestamp: t.removed_at_ms,
            data_change: false,
            extended_file_metadata: true,
            partition_values: BTreeMap::new(),
            size: t.bytes,
            tags: BTreeMap::new(),
        }));
    }
    Ok(actions)
}

/// The actions as commit lines, and their CRC-32C: what the seal covers.
fn lines(actions: &[Action]) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    for action in actions {
        serde_json::to_writer(&mut out, action).expect("an action always serializes");
        out.push(b'\n');
    }
    let crc = format!("{:08x}", crc32c::crc32c(&out));
    (out, crc)
}

fn format_error(version: u64, e: impl std::fmt::Display) -> Error {
    Error::Format {
        context: format!("checkpoint {version}"),
        detail: e.to_string(),
    }
}

/// The Parquet bytes of a checkpoint of `table`, sealed. `commit_crc32c` is the checksum in
/// the seal of commit `table.version`.
pub fn encode(
    table: &Manifest,
    commit_crc32c: &str,
    tombstones_kept_after_ms: i64,
    now_ms: i64,
) -> Result<(Vec<u8>, Seal)> {
    let version = table.version;
    let actions = actions(table, now_ms)?;
    let (json, crc32c) = lines(&actions);
    let seal = Seal {
        format: FORMAT,
        version,
        rows: actions.len() as u64,
        crc32c,
        file_crc32c: UNSEALED.to_string(),
        commit_crc32c: commit_crc32c.to_string(),
        tombstones_kept_after_ms,
    };
    let schema = arrow_schema();
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(actions.len().max(1))
        .build_decoder()
        .map_err(|e| format_error(version, e))?;
    decoder
        .decode(&json)
        .map_err(|e| format_error(version, e))?;
    let batch = decoder
        .flush()
        .map_err(|e| format_error(version, e))?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    let seal_json = serde_json::to_string(&seal).expect("a seal always serializes");
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(SEAL_KEY.to_string(), seal_json)]))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))
        .map_err(|e| format_error(version, e))?;
    writer.write(&batch).map_err(|e| format_error(version, e))?;
    writer.close().map_err(|e| format_error(version, e))?;
    let at = file_crc_digits(&out).expect("the seal was just written");
    let crc = format!("{:08x}", crc32c::crc32c(&out));
    out[at..at + UNSEALED.len()].copy_from_slice(crc.as_bytes());
    let seal = Seal {
        file_crc32c: crc,
        ..seal
    };
    Ok((out, seal))
}

/// Where the file checksum's eight digits are: after the last `"file_crc32c":"` in the bytes,
/// the seal in the footer's key-value metadata (the footer follows every data page, so a row
/// holding the same text comes before it).
fn file_crc_digits(bytes: &[u8]) -> Option<usize> {
    let at = bytes
        .windows(FILE_CRC_KEY.len())
        .rposition(|w| w == FILE_CRC_KEY)?;
    let digits = at + FILE_CRC_KEY.len();
    (bytes.len() >= digits + UNSEALED.len()).then_some(digits)
}

/// Whether the file's checksum holds: the bytes are the ones tally wrote, whole.
fn file_sealed(bytes: &[u8]) -> std::result::Result<(), Unreadable> {
    let at = file_crc_digits(bytes)
        .ok_or_else(|| Unreadable("no tally seal: torn, or not a checkpoint tally wrote".into()))?;
    let recorded = bytes[at..at + UNSEALED.len()].to_vec();
    let mut unsealed = bytes.to_vec();
    unsealed[at..at + UNSEALED.len()].copy_from_slice(UNSEALED.as_bytes());
    let crc = format!("{:08x}", crc32c::crc32c(&unsealed));
    if crc.as_bytes() != recorded.as_slice() {
        return Err(Unreadable(format!(
            "checksum mismatch: the file has {crc}, its seal says {}",
            String::from_utf8_lossy(&recorded)
        )));
    }
    Ok(())
}

/// Reads a checkpoint's bytes back: `Err(why)` unless it parses, its seal holds and its
/// actions make a table tally could have written (the same checks a commit's get).
pub fn decode(bytes: Vec<u8>, version: u64) -> std::result::Result<Checkpoint, Unreadable> {
    #[cfg(feature = "memo")]
    {
        type Decoded = std::result::Result<Checkpoint, Unreadable>;
        thread_local! {
            static DECODED: std::cell::RefCell<crate::memo::Memo<Decoded>> =
                const { std::cell::RefCell::new(crate::memo::Memo::new(8)) };
        }
        if let Some(decoded) = DECODED.with_borrow(|memo| memo.get(version, &bytes)) {
            return decoded;
        }
        let decoded = decode_bytes(bytes.clone(), version);
        DECODED.with_borrow_mut(|memo| memo.put(version, bytes, decoded.clone()));
        decoded
    }
    #[cfg(not(feature = "memo"))]
    decode_bytes(bytes, version)
}

fn decode_bytes(bytes: Vec<u8>, version: u64) -> std::result::Result<Checkpoint, Unreadable> {
    let bad = |why: String| Unreadable(why);
    file_sealed(&bytes)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
        .map_err(|e| bad(format!("not a whole Parquet file: {e}")))?;
    let seal_json = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == SEAL_KEY))
        .and_then(|k| k.value.clone())
        .ok_or_else(|| bad("no tally seal: not a checkpoint tally wrote".into()))?;
    let seal: Seal =
        serde_json::from_str(&seal_json).map_err(|e| bad(format!("its seal is malformed: {e}")))?;
    if seal.format != FORMAT || seal.version != version {
        return Err(bad(format!(
            "its seal says format {} version {}, not format {FORMAT} version {version}",
            seal.format, seal.version
        )));
    }
    let reader = builder.build().map_err(|e| bad(e.to_string()))?;
    let mut json = Vec::new();
    {
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut json);
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("unreadable rows: {e}")))?;
            writer.write(&batch).map_err(|e| bad(e.to_string()))?;
        }
        writer.finish().map_err(|e| bad(e.to_string()))?;
    }
    let mut actions = Vec::new();
    for (n, line) in json.split(|&b| b == b'\n').enumerate() {
        if !line.is_empty() {
            let action: Action =
                serde_json::from_slice(line).map_err(|e| bad(format!("row {n}: {e}")))?;
            actions.push(action);
        }
    }
    let (_, crc) = lines(&actions);
    if actions.len() as u64 != seal.rows || crc != seal.crc32c {
        return Err(bad(format!(
            "{} rows with checksum {crc}, its seal says {} rows with checksum {}",
            actions.len(),
            seal.rows,
            seal.crc32c
        )));
    }
    let mut table = apply(version, actions)?;
    table.tombstones_dropped_through_ms = seal.tombstones_kept_after_ms;
    Ok(Checkpoint { table, seal })
}

/// The table the actions of a checkpoint hold: the adds, txns and state through
/// [`commit::apply`] (as a commit creating the table), then the removes as tombstones.
fn apply(version: u64, actions: Vec<Action>) -> std::result::Result<Manifest, Unreadable> {
    let (removes, rest): (Vec<Action>, Vec<Action>) = actions
        .into_iter()
        .partition(|a| matches!(a, Action::Remove(_)));
    let mut table = commit::apply(None, version, rest)?;
    // Every file named so far: a remove may name none of them (O(log n) each, for the
    // thousands of tombstones a week of merges leaves).
    let mut named: std::collections::BTreeSet<(u32, u64)> =
        table.files.iter().map(|f| (f.level, f.id)).collect();
    for remove in removes {
        let Action::Remove(r) = remove else {
            unreachable!("partitioned")
        };
        let (level, id) = layout::parse_table_file_path(&r.path)
            .ok_or_else(|| Unreadable(format!("names the file {:?}, not a table file", r.path)))?;
        if !named.insert((level, id)) {
            return Err(Unreadable(format!(
                "removes {} while it is live or twice",
                r.path
            )));
        }
        table.tombstones.push(Tombstone {
            level,
            id,
            bytes: r.size,
            removed_at_ms: r.deletion_timestamp,
        });
    }
    Ok(table)
}

/// The checksum in the seal of a commit's bytes, once the whole commit checks.
pub fn commit_seal(bytes: &[u8]) -> std::result::Result<String, Unreadable> {
    match commit::decode(bytes)?.into_iter().next() {
        Some(Action::CommitInfo(info)) => Ok(info.tally.crc32c),
        _ => Err(Unreadable("no commit info".into())),
    }
}

/// Reads checkpoint `version` through the `Fs` and checks it against commit `version`:
/// `Ok(Err(why))` if it cannot be used.
pub async fn read<F: Fs>(
    fs: &F,
    layout: &Layout,
    version: u64,
) -> Result<std::result::Result<Checkpoint, Unreadable>> {
    let bytes = match fs.read(&layout.checkpoint(version)).await {
        Ok(bytes) => bytes,
        Err(e) if is_not_found(&e) => return Ok(Err(Unreadable("it is missing".into()))),
        Err(e) => return Err(e.into()),
    };
    let checkpoint = match decode(bytes, version) {
        Ok(c) => c,
        Err(why) => return Ok(Err(why)),
    };
    let commit = match fs.read(&layout.commit(version)).await {
        Ok(bytes) => bytes,
        Err(e) if is_not_found(&e) => {
            return Ok(Err(Unreadable(format!("commit {version} is missing"))));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match commit_seal(&commit) {
        Ok(crc) if crc == checkpoint.seal.commit_crc32c => Ok(checkpoint),
        Ok(crc) => Err(Unreadable(format!(
            "made from a commit {version} with checksum {}, the log's has {crc}",
            checkpoint.seal.commit_crc32c
        ))),
        Err(why) => Err(Unreadable(format!(
            "commit {version} cannot be read: {why}"
        ))),
    })
}

/// The newest of the checkpoints `listed` at or below `through` that can be used, if any; the
/// ones above it that cannot go into `bad`, newest first.
pub async fn newest_good<F: Fs>(
    fs: &F,
    layout: &Layout,
    listed: &[u64],
    through: u64,
    bad: &mut Vec<BadCheckpoint>,
) -> Result<Option<Checkpoint>> {
    for &version in listed.iter().rev().filter(|&&v| v <= through) {
        match read(fs, layout, version).await? {
            Ok(checkpoint) => return Ok(Some(checkpoint)),
            Err(why) => bad.push(BadCheckpoint {
                file: format!(
                    "{}/{}",
                    layout::DELTA_LOG_DIR,
                    layout::checkpoint_name(version)
                ),
                version,
                reason: why.0,
            }),
        }
    }
    Ok(None)
}

/// Writes `bytes` as checkpoint `version`, durably, then points `_last_checkpoint` at it:
/// `create _checkpoint_<v>.parquet.tmp` (a name engines skip), `write`, `sync`,
/// `rename_noreplace → <v>.checkpoint.parquet`, `sync_dir _delta_log/`, then a durable replace
/// of `_last_checkpoint`. In this order a crash leaves at worst a temp file, or a whole
/// checkpoint the hint does not name yet: never a hint naming a missing checkpoint, nor a torn
/// checkpoint under its final name (either breaks every engine reading the table).
pub async fn write<F: Fs>(fs: &F, layout: &Layout, bytes: &[u8], seal: &Seal) -> io::Result<()> {
    let temp = layout.checkpoint_temp(seal.version);
    let file = fs.create(&temp, CreateMode::Truncate).await?;
    file.write_at(0, bytes).await?;
    file.sync().await?;
    drop(file);
    tally_sim::probe!("checkpoint.synced");
    if let Err(e) = fs
        .rename_noreplace(&temp, &layout.checkpoint(seal.version))
        .await
    {
        let _ = fs.unlink(&temp).await;
        return Err(e);
    }
    tally_sim::probe!("checkpoint.renamed");
    fs.sync_dir(&layout.delta_log_dir()).await?;
    tally_sim::probe!("checkpoint.durable");
    write_hint(fs, layout, Some(seal)).await
}

/// `_last_checkpoint` as it should read for the newest checkpoint `seal`.
pub fn hint_bytes(seal: &Seal) -> Vec<u8> {
    format!("{{\"version\":{},\"size\":{}}}", seal.version, seal.rows).into_bytes()
}

/// Replaces `_last_checkpoint` durably with the hint for `seal`, or removes it (durably) for
/// `None`.
pub async fn write_hint<F: Fs>(fs: &F, layout: &Layout, seal: Option<&Seal>) -> io::Result<()> {
    let dir = layout.delta_log_dir();
    match seal {
        Some(seal) => {
            crate::commit::replace_file(fs, &dir, layout::LAST_CHECKPOINT, &hint_bytes(seal)).await
        }
        None => {
            match fs.unlink(&dir.join(layout::LAST_CHECKPOINT)).await {
                Err(e) if is_not_found(&e) => return Ok(()),
                other => other?,
            }
            fs.sync_dir(&dir).await
        }
    }
}

/// The bytes of `_last_checkpoint`, if there is one.
pub async fn read_hint<F: Fs>(fs: &F, layout: &Layout) -> Result<Option<Vec<u8>>> {
    match fs
        .read(&layout.delta_log_dir().join(layout::LAST_CHECKPOINT))
        .await
    {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{FileEntry, SourceState};
    use arrow_schema::{DataType, Field};

    fn table() -> Manifest {
        let mut m = Manifest::empty();
        m.version = 20;
        m.table_id = "00000000-0000-4000-8000-000000000000".into();
        m.next_file_id = 9;
        m.log_through = 4;
        m.schema = Some(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        for (id, seq) in [(7u64, 0u64), (8, 100)] {
            m.files.push(FileEntry {
                id,
                level: 1,
                rows: 10,
                seq_min: seq,
                seq_max: seq + 9,
                bytes: 1234 + id,
                crc32c: Some(0xdead_beef),
                stats: (id == 8).then(|| {
                    r#"{"numRecords":10,"minValues":{"id":1},"maxValues":{"id":9},"nullCount":{"id":0}}"#
                        .to_string()
                }),
            });
        }
        m.tombstones.push(Tombstone {
            level: 0,
            id: 3,
            bytes: 99,
            removed_at_ms: 5,
        });
        m.sources.insert(
            "a".into(),
            SourceState {
                rows: 20,
                complete: true,
                fingerprint: None,
            },
        );
        m
    }

    #[test]
    fn a_checkpoint_reads_back_as_the_table_it_was_written_from() {
        let (bytes, seal) = encode(&table(), "0badf00d", 1, 2).unwrap();
        let read = decode(bytes, 20).unwrap();
        let mut want = table();
        want.tombstones_dropped_through_ms = 1;
        assert_eq!(read.table, want, "and it says what it may have dropped");
        assert_eq!(read.seal, seal);
        assert_eq!(
            seal.rows,
            2 + 2 + 1 + 1 + 1,
            "protocol, metaData, adds, txn, domain, remove"
        );
    }

    #[test]
    fn a_checkpoint_is_refused_under_another_version() {
        let (bytes, _) = encode(&table(), "0badf00d", 1, 2).unwrap();
        assert!(decode(bytes, 30).is_err());
    }

    /// A flipped byte anywhere either makes the checkpoint unreadable or changes nothing it
    /// says (padding, statistics): never a different table.
    #[test]
    fn no_flipped_byte_yields_another_table() {
        let (bytes, _) = encode(&table(), "0badf00d", 1, 2).unwrap();
        let mut refused = 0;
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x10] {
                let mut damaged = bytes.clone();
                damaged[i] ^= bit;
                match decode(damaged, 20) {
                    Ok(c) => assert_eq!(c.table, table(), "byte {i} bit {bit:#x}"),
                    Err(_) => refused += 1,
                }
            }
        }
        assert!(
            refused > bytes.len(),
            "{refused} of {} refused",
            2 * bytes.len()
        );
    }
}

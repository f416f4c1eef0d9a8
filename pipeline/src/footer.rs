//! The two fields of a Parquet footer that recovery reads on every open — the row count and
//! the key-value metadata — taken from the footer's Thrift (compact protocol) encoding without
//! decoding the rest.
//!
//! Recovery and the store check read the footer of every published file on every open; a full
//! decode builds the schema and every column chunk's metadata, which is most of an open's
//! cost on small stores. This reader walks the same bytes and keeps two fields. It still walks
//! every field of the structure (it has to, to reach field 5 after the row groups), so a footer
//! whose structure is torn or malformed is rejected as it would be by a full decode; what it
//! does not check is what the fields it skips mean. Reading rows decodes the footer fully.
//!
//! A damaged byte can leave Thrift that still parses but means something else (a field whose
//! type code changed is skipped as the new type, and the walk goes on out of step with the
//! writer's). Such a walk must not yield a row count: it would be compared with the commit's
//! and, by chance, agree. So this reader is stricter than a full decode where that costs
//! nothing: field ids rise within every struct (as every Thrift writer emits them), the known
//! fields carry their declared types, the row groups' row counts add up to `num_rows`, and the
//! struct ends exactly at the footer's end.

/// What [`summarize`] keeps of a `FileMetaData`, borrowed from its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary<'a> {
    pub num_rows: i64,
    /// Key-value metadata in footer order, as bytes (Thrift strings are meant to be UTF-8; they
    /// are checked when read with [`Summary::value`]); a value may be absent.
    pub key_values: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl Summary<'_> {
    /// The value of the first entry with `key`, if it has one and it is UTF-8.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.key_values
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8((*v)?).ok())
    }

    /// The value of `key` parsed, if present and well-formed.
    pub fn parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.value(key)?.parse().ok()
    }
}

// Compact-protocol type codes (Thrift's `TCompactProtocol`).
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

// `FileMetaData` and `KeyValue` field ids (parquet.thrift).
const FILE_NUM_ROWS: i16 = 3;
const FILE_ROW_GROUPS: i16 = 4;
const FILE_KEY_VALUE_METADATA: i16 = 5;
const ROW_GROUP_NUM_ROWS: i16 = 3;
const KV_KEY: i16 = 1;
const KV_VALUE: i16 = 2;

/// Nesting deeper than this is malformed: parquet.thrift nests a few levels, and a corrupt
/// footer must not recurse without bound.
const MAX_DEPTH: u32 = 32;

/// Reads the row count and key-value metadata of a serialized `FileMetaData` (the bytes
/// between a file's data and its 8-byte tail).
pub fn summarize(bytes: &[u8]) -> Result<Summary<'_>, String> {
    let mut input = Input {
        bytes,
        at: 0,
        why: "",
    };
    let summary = input.file_metadata().and_then(|summary| {
        if input.remaining() == 0 {
            Some(summary)
        } else {
            input.fail("bytes after the footer's end")
        }
    });
    summary.ok_or_else(|| format!("{} (at byte {} of {})", input.why, input.at, bytes.len()))
}

/// The bytes being read. Readers return `None` on malformed input and leave the reason in
/// `why`: the hot path carries no error values.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
    why: &'static str,
}

impl<'a> Input<'a> {
    #[cold]
    fn fail<T>(&mut self, why: &'static str) -> Option<T> {
        self.why = why;
        None
    }

    fn file_metadata(&mut self) -> Option<Summary<'a>> {
        let mut num_rows = None;
        let mut row_group_rows = None;
        let mut key_values = Vec::new();
        let mut last = 0i16;
        while let Some((id, kind)) = self.field_header(&mut last)? {
            match id {
                FILE_NUM_ROWS => num_rows = Some(self.typed(kind, I64)?.varint_i64()?),
                FILE_ROW_GROUPS => row_group_rows = Some(self.typed(kind, LIST)?.row_groups()?),
                FILE_KEY_VALUE_METADATA => {
                    let (len, element) = self.typed(kind, LIST)?.list_header()?;
                    if element != STRUCT {
                        return self.fail("key_value_metadata does not hold structs");
                    }
                    for _ in 0..len {
                        key_values.push(self.key_value()?);
                    }
                }
                _ => self.skip(kind, 0)?,
            }
        }
        let Some(num_rows) = num_rows else {
            return self.fail("the footer has no num_rows");
        };
        if row_group_rows != Some(num_rows) {
            return self.fail("the row groups' row counts do not add up to num_rows");
        }
        Some(Summary {
            num_rows,
            key_values,
        })
    }

    /// `self` if a known field arrived with its declared type.
    fn typed(&mut self, kind: u8, declared: u8) -> Option<&mut Self> {
        if kind == declared {
            Some(self)
        } else {
            self.fail("a field of another type than parquet.thrift declares")
        }
    }

    /// The sum of the row counts of a `list<RowGroup>` (each `RowGroup.num_rows`).
    fn row_groups(&mut self) -> Option<i64> {
        let (len, element) = self.list_header()?;
        if element != STRUCT {
            return self.fail("row_groups does not hold structs");
        }
        let mut total = 0i64;
        for _ in 0..len {
            let mut rows = None;
            let mut last = 0i16;
            while let Some((id, kind)) = self.field_header(&mut last)? {
                match id {
                    ROW_GROUP_NUM_ROWS => rows = Some(self.typed(kind, I64)?.varint_i64()?),
                    _ => self.skip(kind, 1)?,
                }
            }
            let Some(sum) = rows.and_then(|rows| total.checked_add(rows)) else {
                return self.fail("a row group without a row count");
            };
            total = sum;
        }
        Some(total)
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        match self.bytes.get(self.at) {
            Some(&b) => {
                self.at += 1;
                Some(b)
            }
            None => self.fail("the footer ends early"),
        }
    }

    /// Bytes left to read: every element of a collection takes at least one, which bounds
    /// what a length field may claim.
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    #[inline]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return self.fail("a field runs past the footer's end");
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Some(out)
    }

    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        self.fail("a varint longer than 10 bytes")
    }

    fn varint_i64(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn length(&mut self) -> Option<usize> {
        match usize::try_from(self.varint()?) {
            Ok(len) => Some(len),
            Err(_) => self.fail("a length out of range"),
        }
    }

    /// The next field's id and type, or `Some(None)` at the struct's end. `last` is the
    /// previous field's id (ids are sent as deltas from it).
    #[inline]
    fn field_header(&mut self, last: &mut i16) -> Option<Option<(i16, u8)>> {
        let b = self.byte()?;
        let kind = b & 0x0f;
        if kind == 0 {
            return Some(None);
        }
        let delta = b >> 4;
        let id = if delta == 0 {
            match i16::try_from(self.varint_i64()?) {
                Ok(id) => id,
                Err(_) => return self.fail("a field id out of range"),
            }
        } else {
            match last.checked_add(i16::from(delta)) {
                Some(id) => id,
                None => return self.fail("a field id out of range"),
            }
        };
        if id <= *last {
            return self.fail("field ids out of order");
        }
        *last = id;
        Some(Some((id, kind)))
    }

    /// A list's (or set's) length and element type.
    fn list_header(&mut self) -> Option<(usize, u8)> {
        let b = self.byte()?;
        let len = match b >> 4 {
            15 => self.length()?,
            short => usize::from(short),
        };
        if len > self.remaining() {
            return self.fail("a list longer than the rest of the footer");
        }
        Some((len, b & 0x0f))
    }

    fn binary(&mut self) -> Option<&'a [u8]> {
        let len = self.length()?;
        self.take(len)
    }

    fn key_value(&mut self) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let (mut key, mut value) = (None, None);
        let mut last = 0i16;
        while let Some((id, kind)) = self.field_header(&mut last)? {
            match (id, kind) {
                (KV_KEY, BINARY) => key = Some(self.binary()?),
                (KV_VALUE, BINARY) => value = Some(self.binary()?),
                _ => self.skip(kind, 1)?,
            }
        }
        match key {
            Some(key) => Some((key, value)),
            None => self.fail("a key-value entry without a key"),
        }
    }

    /// Skips one element of a collection: booleans take a byte there.
    fn skip_element(&mut self, kind: u8, depth: u32) -> Option<()> {
        match kind {
            BOOL_TRUE | BOOL_FALSE => self.take(1).map(drop),
            _ => self.skip(kind, depth),
        }
    }

    /// Skips one field value of type `kind` at nesting `depth`.
    fn skip(&mut self, kind: u8, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return self.fail("the footer nests too deep");
        }
        match kind {
            // In a field header the value is the type itself.
            BOOL_TRUE | BOOL_FALSE => Some(()),
            BYTE => self.take(1).map(drop),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.take(8).map(drop),
            BINARY => {
                let len = self.length()?;
                self.take(len).map(drop)
            }
            UUID => self.take(16).map(drop),
            LIST | SET => {
                let (len, element) = self.list_header()?;
                (0..len).try_for_each(|_| self.skip_element(element, depth + 1))
            }
            MAP => {
                let len = self.length()?;
                if len == 0 {
                    return Some(());
                }
                if len > self.remaining() {
                    return self.fail("a map longer than the rest of the footer");
                }
                let types = self.byte()?;
                (0..len).try_for_each(|_| {
                    self.skip_element(types >> 4, depth + 1)?;
                    self.skip_element(types & 0x0f, depth + 1)
                })
            }
            STRUCT => {
                let mut last = 0i16;
                while let Some((_, field)) = self.field_header(&mut last)? {
                    // Most fields are scalars: skip those without a call.
                    match field {
                        BOOL_TRUE | BOOL_FALSE => {}
                        I16 | I32 | I64 => {
                            self.varint()?;
                        }
                        _ => self.skip(field, depth + 1)?,
                    }
                }
                Some(())
            }
            _ => self.fail("an unknown Thrift type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::{KeyValue, ParquetMetaDataReader};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// A Parquet file with several row groups, statistics, page indexes, a dictionary and
    /// key-value metadata (one entry without a value); returns the footer's Thrift bytes.
    fn footer_bytes(rows: i64, row_group_rows: usize) -> Vec<u8> {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("name-{}", i % 7)),
        ));
        let xs: ArrayRef = Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| (i % 3 != 0).then_some(i as f64)),
        ));
        let flags: ArrayRef =
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0))));
        let batch =
            RecordBatch::try_from_iter([("id", ids), ("name", names), ("x", xs), ("flag", flags)])
                .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_key_value_metadata(Some(vec![
                KeyValue::new("tally.file_id".into(), "42".to_owned()),
                KeyValue {
                    key: "no value".into(),
                    value: None,
                },
                KeyValue::new("ünïcode".into(), "välue".to_owned()),
            ]))
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let meta_len = u32::from_le_bytes(out[out.len() - 8..out.len() - 4].try_into().unwrap());
        out[out.len() - 8 - meta_len as usize..out.len() - 8].to_vec()
    }

    /// Row count and key-value metadata as parquet's full decoder reads them.
    fn full_decode(bytes: &[u8]) -> (i64, Vec<(String, Option<String>)>) {
        let meta = ParquetMetaDataReader::decode_metadata(bytes).unwrap();
        let file = meta.file_metadata();
        let kv = file
            .key_value_metadata()
            .into_iter()
            .flatten()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        (file.num_rows(), kv)
    }

    fn owned(summary: &Summary<'_>) -> (i64, Vec<(String, Option<String>)>) {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let kv = summary
            .key_values
            .iter()
            .map(|(k, v)| (text(k), v.map(text)))
            .collect();
        (summary.num_rows, kv)
    }

    #[test]
    fn summary_matches_a_full_decode() {
        for (rows, per_group) in [(0, 10), (1, 10), (1000, 100), (5000, 4096)] {
            let bytes = footer_bytes(rows, per_group);
            let summary = summarize(&bytes).unwrap();
            assert_eq!(owned(&summary), full_decode(&bytes), "{rows} rows");
            assert_eq!(summary.num_rows, rows);
            assert_eq!(summary.value("tally.file_id"), Some("42"));
            assert_eq!(summary.value("no value"), None);
        }
    }

    #[test]
    fn every_torn_footer_is_rejected() {
        let bytes = footer_bytes(1000, 100);
        for len in 0..bytes.len() {
            assert!(
                summarize(&bytes[..len]).is_err(),
                "accepted {len} of {}",
                bytes.len()
            );
        }
    }

    #[test]
    fn a_footer_without_num_rows_is_rejected() {
        // FileMetaData with only field 1 (version = 1), then stop.
        let err = summarize(&[0x15, 0x02, 0x00]).unwrap_err();
        assert!(err.starts_with("the footer has no num_rows"), "{err}");
    }

    /// FileMetaData { num_rows: 5, row_groups: [RowGroup { num_rows: `group_rows` }] } in the
    /// compact protocol, by hand.
    fn minimal_footer(group_rows: u8) -> Vec<u8> {
        // 0x36: field +3, i64; 0x19: field +1, list; 0x1c: 1 struct; varints are zigzag.
        vec![0x36, 0x0a, 0x19, 0x1c, 0x36, group_rows * 2, 0x00, 0x00]
    }

    #[test]
    fn a_footer_that_parses_but_means_something_else_is_rejected() {
        assert_eq!(summarize(&minimal_footer(5)).map(|s| s.num_rows), Ok(5));
        let why = |bytes: &[u8]| summarize(bytes).unwrap_err();
        assert!(why(&minimal_footer(4)).starts_with("the row groups' row counts do not add up"));
        assert!(why(&[0x36, 0x0a, 0x00]).starts_with("the row groups' row counts do not add up"));
        let mut trailing = minimal_footer(5);
        trailing.push(0x00);
        assert!(why(&trailing).starts_with("bytes after the footer's end"));
        let mut as_i32 = minimal_footer(5);
        as_i32[0] = 0x35;
        assert!(why(&as_i32).starts_with("a field of another type"));
        // num_rows twice: the second in long form (type byte, then the zigzag id 3).
        let repeated = [0x36, 0x0a, 0x06, 0x06, 0x0a, 0x00];
        assert!(why(&repeated).starts_with("field ids out of order"));
    }

    proptest! {
        /// Flipped bytes give an error or some summary, never a panic or a hang, and a
        /// summary the full decoder also accepts agrees with it.
        #[test]
        fn damaged_footers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
            let mut bytes = footer_bytes(300, 100);
            for (at, mask) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            let ours = summarize(&bytes);
            if let (Ok(ours), Ok(meta)) = (&ours, ParquetMetaDataReader::decode_metadata(&bytes)) {
                prop_assert_eq!(ours.num_rows, meta.file_metadata().num_rows());
            }
        }
    }
}

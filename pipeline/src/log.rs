//! Log segments and their ack files (see `docs/protocol.md`, "Formats").
//!
//! A segment's `.log` holds a header frame and one data frame per ingested part (metadata and
//! the batch as an Arrow IPC stream). Its `.ack` holds a header frame and one ledger record per
//! acknowledged data frame.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::error::{Error, Result};
use crate::frame::{self, FrameRef};
use crate::manifest::Fingerprint;

pub const FORMAT: u32 = 2;
const LOG_MAGIC: &[u8; 10] = b"tally-log\0";
const ACK_MAGIC: &[u8; 10] = b"tally-ack\0";
const KIND_DATA: u8 = 1;
const KIND_ACK: u8 = 2;

/// Where a part of a source landed and which sequence numbers it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartMeta {
    pub source: String,
    /// Index of the part's first row within its source.
    pub first_row: u64,
    pub seq_start: u64,
    pub rows: u64,
    /// The source's last part.
    pub last: bool,
    /// The fingerprint of the source's content (see `SourceState::fingerprint`).
    pub fingerprint: Option<Fingerprint>,
}

impl PartMeta {
    pub fn seq_end(&self) -> u64 {
        self.seq_start + self.rows
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let source = self.source.as_bytes();
        out.extend_from_slice(&(source.len() as u16).to_le_bytes());
        out.extend_from_slice(source);
        out.extend_from_slice(&self.first_row.to_le_bytes());
        out.extend_from_slice(&self.seq_start.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.push(u8::from(self.last));
        // Fixed size whether present or not: a data frame's prefix is sized before its
        // metadata is known (`data_prefix_len`).
        let f = self.fingerprint.unwrap_or_default();
        out.push(u8::from(self.fingerprint.is_some()));
        out.extend_from_slice(&f.bytes.to_le_bytes());
        out.extend_from_slice(&f.checksum.to_le_bytes());
    }

    fn decode(cursor: &mut Reader<'_>) -> Option<Self> {
        let len = cursor.u16()? as usize;
        let source = String::from_utf8(cursor.bytes(len)?.to_vec()).ok()?;
        Some(Self {
            source,
            first_row: cursor.u64()?,
            seq_start: cursor.u64()?,
            rows: cursor.u64()?,
            last: match cursor.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            fingerprint: {
                let present = cursor.u8()?;
                let f = Fingerprint {
                    bytes: cursor.u64()?,
                    checksum: cursor.u64()?,
                };
                match present {
                    0 => None,
                    1 => Some(f),
                    _ => return None,
                }
            },
        })
    }
}

/// The longest source id a frame can carry.
pub const MAX_SOURCE_LEN: usize = u16::MAX as usize;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

fn header_body(magic: &[u8; 10], segment: u64) -> Vec<u8> {
    let mut body = magic.to_vec();
    body.extend_from_slice(&FORMAT.to_le_bytes());
    body.extend_from_slice(&segment.to_le_bytes());
    body
}

fn parse_header(body: &[u8], magic: &[u8; 10]) -> Option<u64> {
    let mut r = Reader::new(body);
    (r.bytes(10)? == magic && r.u32()? == FORMAT).then_some(())?;
    let segment = r.u64()?;
    (r.pos == body.len()).then_some(segment)
}

pub fn log_header(segment: u64) -> Vec<u8> {
    frame::encode(&header_body(LOG_MAGIC, segment))
}

pub fn ack_header(segment: u64) -> Vec<u8> {
    frame::encode(&header_body(ACK_MAGIC, segment))
}

/// Encodes a batch (with its sequence column) as a self-contained Arrow IPC stream.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    encode_batch_after(Vec::new(), batch)
}

/// Appends `batch` as an Arrow IPC stream to `buf`, sized once for the whole batch.
fn encode_batch_after(mut buf: Vec<u8>, batch: &RecordBatch) -> Result<Vec<u8>> {
    buf.reserve(batch.get_array_memory_size() + 1024);
    let mut writer = StreamWriter::try_new(buf, &batch.schema())
        .map_err(|e| Error::format("encoding a log frame", e))?;
    writer
        .write(batch)
        .map_err(|e| Error::format("encoding a log frame", e))?;
    writer
        .into_inner()
        .map_err(|e| Error::format("encoding a log frame", e))
}

/// A data frame built in place: room for the frame header and the part's metadata, then the
/// batch's IPC stream. The caller encodes the batch before queueing; the commit leader fills in
/// the metadata (known only then) and writes the buffer as it is, never copying the batch.
#[derive(Debug)]
pub struct DataFrame {
    buf: Vec<u8>,
    source_len: usize,
}

/// Bytes of a data frame before its IPC stream, for a source id of `source_len` bytes.
fn data_prefix_len(source_len: usize) -> usize {
    frame::HEADER_LEN + 1 + 2 + source_len + 8 + 8 + 8 + 1 + 17
}

impl DataFrame {
    /// Encodes `batch` for a part of a source whose id is `source_len` bytes long.
    pub fn encode(batch: &RecordBatch, source_len: usize) -> Result<Self> {
        let buf = encode_batch_after(vec![0; data_prefix_len(source_len)], batch)?;
        Ok(Self { buf, source_len })
    }

    /// Writes the frame header and `meta` in front of the batch; returns the frame's CRC.
    pub fn seal(&mut self, meta: &PartMeta) -> u32 {
        assert_eq!(
            meta.source.len(),
            self.source_len,
            "the frame was sized for another source"
        );
        let start = frame::HEADER_LEN;
        let prefix = data_prefix_len(self.source_len);
        let mut head = Vec::with_capacity(prefix - start);
        head.push(KIND_DATA);
        meta.encode_into(&mut head);
        self.buf[start..prefix].copy_from_slice(&head);
        frame::seal_in_place(&mut self.buf)
    }

    /// The whole frame (sealed first).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The schema of a frame's IPC stream, without decoding its batch.
pub fn decode_schema(ipc: &[u8]) -> Result<arrow_schema::SchemaRef> {
    let reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| Error::format("decoding a log frame's schema", e))?;
    Ok(reader.schema())
}

pub fn decode_batch(ipc: &[u8]) -> Result<RecordBatch> {
    let mut reader = StreamReader::try_new(Cursor::new(ipc), None)
        .map_err(|e| Error::format("decoding a log frame", e))?;
    let batch = reader
        .next()
        .ok_or_else(|| Error::format("decoding a log frame", "no batch in frame"))?
        .map_err(|e| Error::format("decoding a log frame", e))?;
    Ok(batch)
}

/// Appends a data frame to `out`; returns its CRC. (The pipeline builds its frames in place
/// with [`DataFrame`]; this copying form is the reference the tests hold it to.)
#[cfg(test)]
pub fn encode_data_frame(out: &mut Vec<u8>, meta: &PartMeta, ipc: &[u8]) -> u32 {
    let mut body = Vec::with_capacity(64 + meta.source.len() + ipc.len());
    body.push(KIND_DATA);
    meta.encode_into(&mut body);
    body.extend_from_slice(ipc);
    frame::encode_into(out, &body)
}

/// A ledger record: the data frame at `log_offset` with checksum `frame_crc` holds `meta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRecord {
    pub log_offset: u64,
    pub frame_crc: u32,
    pub meta: PartMeta,
}

pub fn encode_ack(out: &mut Vec<u8>, record: &AckRecord) {
    let mut body = Vec::with_capacity(64 + record.meta.source.len());
    body.push(KIND_ACK);
    body.extend_from_slice(&record.log_offset.to_le_bytes());
    body.extend_from_slice(&record.frame_crc.to_le_bytes());
    record.meta.encode_into(&mut body);
    frame::encode_into(out, &body);
}

/// A data frame found in a `.log`.
#[derive(Clone, Debug)]
pub struct LoggedPart {
    pub frame: FrameRef,
    pub meta: PartMeta,
    /// Byte range of the IPC stream within the scanned buffer.
    pub ipc: std::ops::Range<usize>,
}

/// The valid prefix of a `.log` or `.ack` file and what follows it.
#[derive(Debug)]
pub struct Scanned<T> {
    /// The header frame was valid and named this segment.
    pub header_ok: bool,
    /// The parts (of a `.log`) or ledger records (of an `.ack`) of the valid prefix, in order.
    pub items: Vec<T>,
    /// Length of the valid prefix; what follows is a torn or damaged tail.
    pub valid_len: u64,
    /// Frames in the tail (a best-effort count).
    pub tail_frames: u64,
    /// Why the prefix ended at a frame whose checksum holds: damage, not a torn write.
    pub malformed: Option<String>,
}

pub type LogScan = Scanned<LoggedPart>;
pub type AckScan = Scanned<AckRecord>;

impl LogScan {
    /// The valid prefix holds, whole, the frame an ack record acknowledges.
    pub fn holds(&self, record: &AckRecord) -> bool {
        self.items.iter().any(|p| {
            p.frame.offset == record.log_offset
                && p.frame.crc == record.frame_crc
                && p.meta == record.meta
        })
    }
}

/// Scans a segment file: a header frame naming `segment`, then frames `parse` accepts. The
/// prefix ends at the first frame that is torn, fails its checksum or does not parse.
fn scan_segment_file<T>(
    buf: &[u8],
    segment: u64,
    magic: &[u8; 10],
    parse: impl Fn(FrameRef, &mut Reader<'_>) -> Option<T>,
) -> Scanned<T> {
    let scan = frame::scan(buf);
    let mut out = Scanned {
        header_ok: false,
        items: Vec::new(),
        valid_len: scan.valid_len,
        tail_frames: scan.tail_frames,
        malformed: None,
    };
    let total = scan.frames.len();
    for (index, f) in scan.frames.into_iter().enumerate() {
        let body = &buf[f.body_start..f.body_end];
        let accepted = if index == 0 {
            let ok = parse_header(body, magic) == Some(segment);
            out.header_ok = ok;
            ok
        } else {
            let mut reader = Reader::new(body);
            match parse(f, &mut reader) {
                Some(item) => {
                    out.items.push(item);
                    true
                }
                None => false,
            }
        };
        if !accepted {
            out.malformed = Some(if index == 0 {
                "header frame does not name this segment".to_string()
            } else {
                format!("frame at offset {} does not parse", f.offset)
            });
            out.valid_len = f.offset;
            out.tail_frames += (total - index) as u64;
            break;
        }
    }
    out
}

pub fn scan_log(buf: &[u8], segment: u64) -> LogScan {
    scan_segment_file(buf, segment, LOG_MAGIC, |frame, r| {
        (r.u8()? == KIND_DATA).then_some(())?;
        let meta = PartMeta::decode(r)?;
        let ipc_start = frame.body_start + r.pos;
        Some(LoggedPart {
            frame,
            meta,
            ipc: ipc_start..frame.body_end,
        })
    })
}

pub fn scan_ack(buf: &[u8], segment: u64) -> AckScan {
    scan_segment_file(buf, segment, ACK_MAGIC, |_, r| {
        (r.u8()? == KIND_ACK).then_some(())?;
        let log_offset = r.u64()?;
        let frame_crc = r.u32()?;
        let meta = PartMeta::decode(r)?;
        (r.pos == r.buf.len()).then_some(AckRecord {
            log_offset,
            frame_crc,
            meta,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("v", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
            (
                "tally_seq",
                Arc::new(Int64Array::from(vec![10, 11, 12])) as _,
            ),
        ])
        .unwrap()
    }

    fn meta() -> PartMeta {
        PartMeta {
            source: "src".into(),
            first_row: 0,
            seq_start: 10,
            rows: 3,
            last: true,
            fingerprint: None,
        }
    }

    #[test]
    fn data_frame_built_in_place_equals_the_copied_frame() {
        let mut copied = Vec::new();
        let ipc = encode_batch(&batch()).unwrap();
        let crc = encode_data_frame(&mut copied, &meta(), &ipc);
        let mut in_place = DataFrame::encode(&batch(), meta().source.len()).unwrap();
        assert_eq!(in_place.seal(&meta()), crc);
        assert_eq!(in_place.bytes(), &copied[..]);
    }

    #[test]
    fn a_fingerprint_survives_the_frame_and_its_ack_record() {
        let with = PartMeta {
            fingerprint: Some(Fingerprint {
                bytes: 1 << 40,
                checksum: 0xdead_beef_0123_4567,
            }),
            ..meta()
        };
        let ipc = encode_batch(&batch()).unwrap();
        let mut buf = log_header(2);
        let crc = encode_data_frame(&mut buf, &with, &ipc);
        let mut in_place = DataFrame::encode(&batch(), with.source.len()).unwrap();
        assert_eq!(in_place.seal(&with), crc, "in place, same size as without");
        assert_eq!(scan_log(&buf, 2).items[0].meta, with);
        let mut acks = ack_header(2);
        let record = AckRecord {
            log_offset: 7,
            frame_crc: crc,
            meta: with.clone(),
        };
        encode_ack(&mut acks, &record);
        assert_eq!(scan_ack(&acks, 2).items, [record]);
    }

    #[test]
    fn a_segment_scans_back_to_its_parts() {
        let mut buf = log_header(5);
        let ipc = encode_batch(&batch()).unwrap();
        let crc = encode_data_frame(&mut buf, &meta(), &ipc);
        let scan = scan_log(&buf, 5);
        assert!(scan.header_ok && scan.malformed.is_none());
        assert_eq!(scan.items.len(), 1);
        assert_eq!(scan.items[0].meta, meta());
        assert_eq!(scan.items[0].frame.crc, crc);
        assert_eq!(
            decode_batch(&buf[scan.items[0].ipc.clone()]).unwrap(),
            batch()
        );
        assert_eq!(
            decode_schema(&buf[scan.items[0].ipc.clone()]).unwrap(),
            batch().schema()
        );
        assert!(
            !scan_log(&buf, 6).header_ok,
            "a segment is bound to its number"
        );
    }

    #[test]
    fn a_checksummed_frame_that_does_not_parse_ends_the_prefix_there() {
        let mut buf = log_header(1);
        let ipc = encode_batch(&batch()).unwrap();
        encode_data_frame(&mut buf, &meta(), &ipc);
        let bad_at = buf.len() as u64;
        frame::encode_into(&mut buf, b"\x07not a part");
        encode_data_frame(&mut buf, &meta(), &ipc);
        let scan = scan_log(&buf, 1);
        assert_eq!(scan.items.len(), 1);
        assert_eq!(scan.valid_len, bad_at);
        assert_eq!(scan.tail_frames, 2);
        assert!(scan.malformed.unwrap().contains("does not parse"));
    }

    #[test]
    fn ack_records_scan_back() {
        let mut buf = ack_header(2);
        let record = AckRecord {
            log_offset: 30,
            frame_crc: 0xdead_beef,
            meta: meta(),
        };
        encode_ack(&mut buf, &record);
        let scan = scan_ack(&buf, 2);
        assert!(scan.header_ok);
        assert_eq!(scan.items, vec![record]);
    }
}

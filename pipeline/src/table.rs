//! Table files: Parquet written and read through the world's `Fs`.
//!
//! Writing streams: the Parquet encoder writes into an in-memory buffer that is drained to the
//! file after a row group leaves it past [`DRAIN_BYTES`], so memory stays bounded by a row
//! group however large the file. Reading the footer touches only the file's last bytes; reading rows goes
//! through arrow's async Parquet reader, one column chunk at a time.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use tally_sim::{CreateMode, Fs, FsFile, OpenMode};

use crate::error::{Error, Result};

/// The column holding each row's ingest sequence number.
pub const SEQ_COLUMN: &str = "tally_seq";
/// Footer key-value metadata keys.
pub const KEY_FILE_ID: &str = "tally.file_id";
pub const KEY_LEVEL: &str = "tally.level";
pub const KEY_SEQ_MIN: &str = "tally.seq_min";
pub const KEY_SEQ_MAX: &str = "tally.seq_max";

/// A production row group (128 Ki rows) encodes to a few MiB: the buffer is drained after
/// each, and never holds much more than one. The small row groups of simulated runs gather
/// into one write.
const DRAIN_BYTES: usize = 1 << 20;
const FOOTER_TAIL: u64 = 8;

/// The table schema as stored: the user's columns, then the sequence column. The sequence
/// column is a signed 64-bit integer, Delta's `long` (Delta has no unsigned type, and some
/// engines refuse an unsigned column under a `long`): numbers stay below 2^63.
pub fn stored_schema(user: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = user.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SEQ_COLUMN, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// The sequence column of a batch read from a table file, the log or an export.
pub fn seq_column(batch: &RecordBatch) -> Option<&Int64Array> {
    batch
        .column_by_name(SEQ_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
}

/// Appends the sequence column (`seq_start`, `seq_start + 1`, ...) to a user batch.
pub fn with_seq(batch: &RecordBatch, seq_start: u64, stored: &SchemaRef) -> Result<RecordBatch> {
    let rows = batch.num_rows() as u64;
    let end = i64::try_from(seq_start + rows).expect("sequence numbers stay below 2^63");
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_iter_values(
        end - rows as i64..end,
    )));
    RecordBatch::try_new(stored.clone(), columns)
        .map_err(|e| Error::format("adding the sequence column", e))
}

/// How table files are encoded.
#[derive(Clone, Debug)]
pub struct TableOptions {
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 128 * 1024,
            zstd_level: 1,
        }
    }
}

/// Rows of a file's first batch looked at to choose each column's encoding.
const SAMPLE_ROWS: usize = 4096;

/// How one column is encoded, chosen from a sample of its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnEncoding {
    /// Parquet's default: a dictionary, falling back to plain once it grows too large.
    Dictionary,
    /// Plain values, no dictionary: for columns whose values rarely repeat, where building a
    /// dictionary costs time and then is thrown away.
    Plain,
    /// Delta encoding without a dictionary: for integers that mostly increase (ids, timestamps,
    /// the sequence column), which it stores in a few bits per value.
    Delta,
}

fn distinct_share<T: Ord>(mut values: Vec<T>) -> f64 {
    let n = values.len().max(1);
    values.sort_unstable();
    values.dedup();
    values.len() as f64 / n as f64
}

fn integer_choice<T: Ord + Copy>(values: &[T]) -> ColumnEncoding {
    // Mostly increasing (at most one step in ten goes down): deltas stay small.
    let falls = values.windows(2).filter(|w| w[0] > w[1]).count();
    if falls * 10 <= values.len() {
        ColumnEncoding::Delta
    } else if distinct_share(values.to_vec()) > 0.5 {
        ColumnEncoding::Plain
    } else {
        ColumnEncoding::Dictionary
    }
}

/// The encoding for `column`, from its first values. Every choice is one every Parquet reader
/// knows (plain, dictionary, `DELTA_BINARY_PACKED`); only columns without nulls are judged.
pub fn choose_encoding(column: &dyn Array) -> ColumnEncoding {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        ArrowPrimitiveType, Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type,
        Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    let rows = column.len().min(SAMPLE_ROWS);
    if rows < 2 || column.null_count() > 0 {
        return ColumnEncoding::Dictionary;
    }
    let sample = column.slice(0, rows);
    fn ints<T: ArrowPrimitiveType>(a: &dyn Array) -> ColumnEncoding
    where
        T::Native: Ord,
    {
        integer_choice(a.as_primitive::<T>().values())
    }
    fn repeats<T: Ord>(values: Vec<T>) -> ColumnEncoding {
        if distinct_share(values) > 0.5 {
            ColumnEncoding::Plain
        } else {
            ColumnEncoding::Dictionary
        }
    }
    let a = sample.as_ref();
    match a.data_type() {
        DataType::Int8 => ints::<Int8Type>(a),
        DataType::Int16 => ints::<Int16Type>(a),
        DataType::Int32 => ints::<Int32Type>(a),
        DataType::Int64 => ints::<Int64Type>(a),
        DataType::UInt8 => ints::<UInt8Type>(a),
        DataType::UInt16 => ints::<UInt16Type>(a),
        DataType::UInt32 => ints::<UInt32Type>(a),
        DataType::UInt64 => ints::<UInt64Type>(a),
        DataType::Date32 => ints::<Date32Type>(a),
        DataType::Date64 => ints::<Date64Type>(a),
        DataType::Float32 => repeats(
            a.as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| v.to_bits())
                .collect(),
        ),
        DataType::Float64 => repeats(
            a.as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|v| v.to_bits())
                .collect(),
        ),
        DataType::Utf8 => repeats(a.as_string::<i32>().iter().flatten().collect()),
        DataType::LargeUtf8 => repeats(a.as_string::<i64>().iter().flatten().collect()),
        _ => ColumnEncoding::Dictionary,
    }
}

/// Writer properties for a file whose first batch is `first`: the options' compression and
/// row groups, each top-level column encoded as [`choose_encoding`] says.
pub fn writer_properties(options: &TableOptions, first: &RecordBatch) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(options.zstd_level)
        .map_err(|e| Error::format("table file compression level", e))?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_created_by(format!("tally {}", env!("CARGO_PKG_VERSION")));
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let path = ColumnPath::from(field.name().as_str());
        let encoding = if field.name() == SEQ_COLUMN {
            ColumnEncoding::Delta
        } else {
            choose_encoding(column.as_ref())
        };
        builder = match encoding {
            ColumnEncoding::Dictionary => builder,
            ColumnEncoding::Plain => builder.set_column_dictionary_enabled(path, false),
            ColumnEncoding::Delta => builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
        };
    }
    Ok(builder.build())
}

/// What a finished table file holds, as recorded in its footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    /// CRC-32C of the `bytes` bytes written, computed as they were written.
    pub crc32c: u32,
    pub seq_min: u64,
    pub seq_max: u64,
    /// The file's column statistics as Delta's `add.stats` (see `crate::stats`), when every
    /// top-level primitive column has bounds that can be written exactly.
    pub stats: Option<String>,
}

impl Written {
    /// The manifest's entry of the file written as table file `id` at `level`.
    pub fn entry(self, id: u64, level: u32) -> crate::manifest::FileEntry {
        crate::manifest::FileEntry {
            id,
            level,
            rows: self.rows,
            seq_min: self.seq_min,
            seq_max: self.seq_max,
            bytes: self.bytes,
            crc32c: Some(self.crc32c),
            stats: self.stats,
        }
    }

    /// The check a step makes before installing a file: the rows written are the `expected`
    /// rows of `what` (a conservation failure otherwise).
    pub fn holds_rows(&self, expected: u64, what: impl FnOnce() -> String) -> Result<()> {
        if self.rows == expected {
            return Ok(());
        }
        Err(Error::Conservation {
            detail: format!("{}: {expected} rows given, {} written", what(), self.rows),
        })
    }
}

/// An encoder error, naming the file and what was being done.
fn parquet_error<'a>(path: &'a Path, what: &'a str) -> impl Fn(ParquetError) -> Error + 'a {
    move |e| Error::format(format!("{}: {what}", path.display()), e)
}

/// Row groups of at least this many rows have their columns encoded by concurrent tasks (on
/// the real runtime, by every core); smaller ones are encoded inline, where tasks would cost
/// more than they save.
const CONCURRENT_ENCODE_ROWS: usize = 16 * 1024;

/// A row group's encoded columns (each its leaves' chunks), or the tasks encoding them, in
/// column order.
enum RowGroupEncoding {
    Encoded(Vec<Vec<ArrowColumnChunk>>),
    Tasks(Vec<tokio::task::JoinHandle<parquet::errors::Result<Vec<ArrowColumnChunk>>>>),
}

/// One column of a row group to encode: its field, its arrays (one per batch gathered) and
/// the writers of its leaves.
type ColumnJob = (FieldRef, Vec<ArrayRef>, Vec<ArrowColumnWriter>);

/// Encodes one column of a row group, batch by batch. A batch's leaf columns (with their
/// levels, 8 bytes a row even for a flat column) are computed just before they are written
/// and dropped after: a row group in flight holds its arrays, not their leaves too.
fn encode_column(
    (field, arrays, mut writers): ColumnJob,
) -> parquet::errors::Result<Vec<ArrowColumnChunk>> {
    for array in &arrays {
        let leaves = compute_leaves(&field, array)?;
        if leaves.len() != writers.len() {
            return Err(ParquetError::General(format!(
                "column {}: {} leaves for {} writers",
                field.name(),
                leaves.len(),
                writers.len()
            )));
        }
        for (writer, leaf) in writers.iter_mut().zip(&leaves) {
            writer.write(leaf)?;
        }
    }
    writers.into_iter().map(ArrowColumnWriter::close).collect()
}

/// Streams batches into a new file at `path` (normally a temp name); `finish` syncs it.
///
/// Rows are gathered into row groups; each row group's columns are encoded independently
/// (concurrently when the row group is large) and appended in column order, so the bytes
/// written do not depend on how the tasks were scheduled. A row group is appended when the
/// next one starts (or at `write_pending` and `finish`): at most one encodes while the next
/// is gathered.
pub struct TableWriter<F: Fs> {
    path: PathBuf,
    file: F::File,
    writer: SerializedFileWriter<Vec<u8>>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    row_group_rows: usize,
    /// Rows of the row group being gathered.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Row groups started: the index of the next one.
    row_groups_started: usize,
    /// The row group started last, encoding while the next one is gathered.
    in_flight: Option<RowGroupEncoding>,
    offset: u64,
    /// CRC-32C of the bytes written so far (`0..offset`).
    crc32c: u32,
    rows: u64,
    seq_range: Option<(u64, u64)>,
}

impl<F: Fs> TableWriter<F> {
    /// Creates the file; `first` (the first batch it will be given) decides its schema and
    /// its columns' encodings.
    pub async fn create(
        fs: &F,
        path: &Path,
        first: &RecordBatch,
        options: &TableOptions,
    ) -> Result<Self> {
        let properties = writer_properties(options, first)?;
        // Exclusive: nothing is ever written over. Callers write under fresh temp names (ids
        // are never reused, and recovery or export remove stale temps before writing).
        let file = fs.create(path, CreateMode::Exclusive).await?;
        let starting =
            |e: ParquetError| Error::format(format!("{}: starting Parquet", path.display()), e);
        // ArrowWriter records the Arrow schema in the footer; its lower half then writes.
        let (writer, columns) = ArrowWriter::try_new(Vec::new(), first.schema(), Some(properties))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(starting)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            writer,
            columns,
            schema: first.schema(),
            row_group_rows: options.row_group_rows.max(1),
            pending: Vec::new(),
            pending_rows: 0,
            row_groups_started: 0,
            in_flight: None,
            offset: 0,
            crc32c: 0,
            rows: 0,
            seq_range: None,
        })
    }

    /// Writes `batch` to the writer in `slot`, creating the file at `path` from this batch
    /// when the slot is empty: loops that copy rows into a new table file create it only once
    /// they hold a batch, since the first batch decides the schema and the encodings.
    pub async fn write_creating(
        slot: &mut Option<Self>,
        fs: &F,
        path: &Path,
        batch: &RecordBatch,
        options: &TableOptions,
    ) -> Result<()> {
        let writer = match slot.take() {
            Some(writer) => writer,
            None => Self::create(fs, path, batch, options).await?,
        };
        slot.insert(writer).write(batch).await
    }

    /// The file's columns, fixed by its first batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Writes a batch whose sequence column is increasing and above every earlier batch's.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (lo, hi) = seq_bounds(batch)?;
        if let Some((_, prev_hi)) = self.seq_range {
            if lo <= prev_hi {
                return Err(Error::Conservation {
                    detail: format!(
                        "{}: sequence numbers out of order ({lo} after {prev_hi})",
                        self.path.display()
                    ),
                });
            }
        }
        self.seq_range = Some((self.seq_range.map_or(lo, |r| r.0), hi));
        self.rows += batch.num_rows() as u64;
        let mut at = 0;
        while at < batch.num_rows() {
            let take = (self.row_group_rows - self.pending_rows).min(batch.num_rows() - at);
            self.pending.push(batch.slice(at, take));
            self.pending_rows += take;
            at += take;
            if self.pending_rows == self.row_group_rows {
                self.flush_row_group().await?;
            }
        }
        Ok(())
    }

    /// Starts encoding the gathered rows as one row group, then appends the row group started
    /// before it (row groups are appended in the order they were started). One row group is
    /// thus encoding while the caller gathers, or decodes, the rows of the next.
    async fn flush_row_group(&mut self) -> Result<()> {
        if let Some(previous) = self.in_flight.take() {
            self.append_row_group(previous).await?;
        }
        self.in_flight = self.start_row_group()?;
        Ok(())
    }

    /// Encodes and appends every row gathered so far: the writer then holds no row group.
    async fn complete_row_groups(&mut self) -> Result<()> {
        self.flush_row_group().await?;
        match self.in_flight.take() {
            Some(last) => self.append_row_group(last).await,
            None => Ok(()),
        }
    }

    /// Splits the gathered rows into their leaf columns and starts encoding them: by a task
    /// per column when the row group is large, inline otherwise. `None` if nothing is gathered.
    fn start_row_group(&mut self) -> Result<Option<RowGroupEncoding>> {
        if self.pending_rows == 0 {
            return Ok(None);
        }
        let path = self.path.clone();
        let batches = std::mem::take(&mut self.pending);
        let rows = std::mem::take(&mut self.pending_rows);
        let mut writers = self
            .columns
            .create_column_writers(self.row_groups_started)
            .map_err(parquet_error(&path, "starting a row group"))?
            .into_iter();
        self.row_groups_started += 1;
        // One job per column: its leaf columns' writers (leaves are in schema order, grouped
        // by the column they belong to; a flat column is one leaf) and its arrays.
        let descr = self.writer.schema_descr();
        let mut leaves = vec![0usize; self.schema.fields().len()];
        for leaf in 0..descr.num_columns() {
            leaves[descr.get_column_root_idx(leaf)] += 1;
        }
        let mut jobs = Vec::with_capacity(leaves.len());
        for (index, field) in self.schema.fields().iter().enumerate() {
            let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(index).clone()).collect();
            jobs.push((
                field.clone(),
                arrays,
                writers.by_ref().take(leaves[index]).collect(),
            ));
        }
        drop(batches);
        Ok(Some(if rows >= CONCURRENT_ENCODE_ROWS {
            RowGroupEncoding::Tasks(
                jobs.into_iter()
                    .map(|job| tokio::spawn(async move { encode_column(job) }))
                    .collect(),
            )
        } else {
            RowGroupEncoding::Encoded(
                jobs.into_iter()
                    .map(encode_column)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(parquet_error(&path, "encoding a column"))?,
            )
        }))
    }

    /// Waits for a started row group's columns, appends them in column order, and drains the
    /// output once it is large.
    async fn append_row_group(&mut self, encoding: RowGroupEncoding) -> Result<()> {
        let path = self.path.clone();
        let columns = match encoding {
            RowGroupEncoding::Encoded(columns) => columns,
            RowGroupEncoding::Tasks(tasks) => {
                let mut chunks = Vec::with_capacity(tasks.len());
                for task in tasks {
                    let chunk = task
                        .await
                        .map_err(|e| {
                            Error::format(format!("{}: encoding a column", path.display()), e)
                        })?
                        .map_err(parquet_error(&path, "encoding a column"))?;
                    chunks.push(chunk);
                }
                chunks
            }
        };
        let failed = parquet_error(&path, "writing a row group");
        let mut group = self.writer.next_row_group().map_err(&failed)?;
        for chunk in columns.into_iter().flatten() {
            chunk.append_to_row_group(&mut group).map_err(&failed)?;
        }
        group.close().map_err(&failed)?;
        if self.writer.inner().len() >= DRAIN_BYTES {
            self.drain().await?;
        }
        Ok(())
    }

    /// Encodes the rows gathered so far as a row group, however few, and writes every encoded
    /// byte: the writer then holds no rows in memory until its next batch.
    pub async fn write_pending(&mut self) -> Result<()> {
        self.complete_row_groups().await?;
        // The Parquet writer's own buffer (a few KiB) too.
        self.writer
            .flush()
            .map_err(|e| Error::format(format!("{}: flushing Parquet", self.path.display()), e))?;
        self.drain().await
    }

    /// Writes the encoded bytes gathered so far. The buffer keeps its capacity: a new one per
    /// drain would be grown again by doubling, each time on fresh pages the kernel must zero.
    async fn drain(&mut self) -> Result<()> {
        let bytes = self.writer.inner_mut();
        if !bytes.is_empty() {
            self.file.write_at(self.offset, bytes).await?;
            self.offset += bytes.len() as u64;
            self.crc32c = crc32c::crc32c_append(self.crc32c, bytes);
            bytes.clear();
        }
        Ok(())
    }

    /// Writes the footer (with the file's id, level and sequence range) and syncs the file.
    pub async fn finish(self, file_id: u64, level: u32) -> Result<Written> {
        self.finish_with(&file_metadata(file_id, level)).await
    }

    /// Writes the footer with `metadata` and the sequence range, and syncs the file.
    pub async fn finish_with(self, metadata: &[(&str, String)]) -> Result<Written> {
        self.finish_syncing(metadata, true).await
    }

    /// [`TableWriter::finish_with`], syncing only when `sync` (a twin's planted bug skips it).
    pub(crate) async fn finish_syncing(
        mut self,
        metadata: &[(&str, String)],
        sync: bool,
    ) -> Result<Written> {
        let (seq_min, seq_max) = self.seq_range.ok_or_else(|| Error::Conservation {
            detail: format!(
                "{}: a table file needs at least one row",
                self.path.display()
            ),
        })?;
        self.complete_row_groups().await?;
        let seq = [
            (KEY_SEQ_MIN, seq_min.to_string()),
            (KEY_SEQ_MAX, seq_max.to_string()),
        ];
        for (key, value) in metadata.iter().cloned().chain(seq) {
            self.writer
                .append_key_value_metadata(KeyValue::new(key.to_string(), value));
        }
        let footer = self
            .writer
            .finish()
            .map_err(|e| Error::format(format!("{}: finishing Parquet", self.path.display()), e))?;
        self.drain().await?;
        if sync {
            self.file.sync().await?;
        }
        let stats = crate::stats::column_stats(&self.schema, &footer, self.rows);
        Ok(Written {
            rows: self.rows,
            bytes: self.offset,
            crc32c: self.crc32c,
            seq_min,
            seq_max,
            stats,
        })
    }
}

/// The footer keys of a table file besides its sequence range: its id and level.
pub fn file_metadata(file_id: u64, level: u32) -> [(&'static str, String); 2] {
    [
        (KEY_FILE_ID, file_id.to_string()),
        (KEY_LEVEL, level.to_string()),
    ]
}

/// Smallest and largest sequence number of a batch, checking they increase row by row.
pub fn seq_bounds(batch: &RecordBatch) -> Result<(u64, u64)> {
    let column = seq_column(batch).ok_or_else(|| Error::Conservation {
        detail: format!("batch has no {SEQ_COLUMN} column of type Int64"),
    })?;
    let values = column.values();
    if column.null_count() > 0 || values.windows(2).any(|w| w[0] >= w[1]) || values[0] < 0 {
        return Err(Error::Conservation {
            detail: format!(
                "{SEQ_COLUMN} is not strictly increasing and non-negative within a batch"
            ),
        });
    }
    Ok((values[0] as u64, values[values.len() - 1] as u64))
}

/// What a table file's footer says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footer {
    pub rows: u64,
    pub bytes: u64,
    pub file_id: Option<u64>,
    pub level: Option<u32>,
    pub seq_min: Option<u64>,
    pub seq_max: Option<u64>,
}

fn footer_metadata_range(len: u64, tail: &[u8]) -> std::result::Result<Range<u64>, String> {
    if tail.len() != FOOTER_TAIL as usize || &tail[4..] != b"PAR1" {
        return Err("no Parquet footer (missing PAR1 magic)".into());
    }
    let meta_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if meta_len + FOOTER_TAIL + 4 > len {
        return Err(format!(
            "footer length {meta_len} exceeds the file ({len} bytes)"
        ));
    }
    Ok(len - FOOTER_TAIL - meta_len..len - FOOTER_TAIL)
}

/// The serialized `FileMetaData` of a file of `len` bytes.
async fn read_metadata_bytes<FF: FsFile>(path: &Path, file: &FF, len: u64) -> Result<Vec<u8>> {
    if len < FOOTER_TAIL + 4 {
        return Err(Error::corrupt(
            path,
            format!("{len} bytes is too short for Parquet"),
        ));
    }
    let tail = file
        .read_at(len - FOOTER_TAIL, FOOTER_TAIL as usize)
        .await?;
    let range = footer_metadata_range(len, &tail).map_err(|e| Error::corrupt(path, e))?;
    Ok(file
        .read_at(range.start, (range.end - range.start) as usize)
        .await?)
}

async fn read_metadata<FF: FsFile>(path: &Path, file: &FF, len: u64) -> Result<ParquetMetaData> {
    let meta = read_metadata_bytes(path, file, len).await?;
    ParquetMetaDataReader::decode_metadata(&meta)
        .map_err(|e| Error::corrupt(path, format!("unreadable Parquet footer: {e}")))
}

impl Footer {
    /// How the footer disagrees with the manifest's entry for the file, if it does.
    pub fn disagreement(&self, entry: &crate::manifest::FileEntry) -> Option<String> {
        let agrees = self.rows == entry.rows
            && self.file_id == Some(entry.id)
            && self.level == Some(entry.level)
            && self.seq_min == Some(entry.seq_min)
            && self.seq_max == Some(entry.seq_max);
        // Messages show values, never `Some(..)`: a key the footer lacks reads "missing".
        fn shown<T: std::fmt::Display>(value: Option<T>) -> String {
            value.map_or_else(|| "missing".into(), |v| v.to_string())
        }
        (!agrees).then(|| {
            format!(
                "footer says {} rows (id {}, level {}, seq {}..={}), the manifest says {} (id {}, level {}, seq {}..={})",
                self.rows,
                shown(self.file_id),
                shown(self.level),
                shown(self.seq_min),
                shown(self.seq_max),
                entry.rows,
                entry.id,
                entry.level,
                entry.seq_min,
                entry.seq_max
            )
        })
    }
}

/// Reads only a table file's footer: its row count and tally's key-value metadata.
pub async fn read_footer<F: Fs>(fs: &F, path: &Path) -> Result<Footer> {
    let file = fs.open(path, OpenMode::Read).await?;
    let len = file.len().await?;
    let meta = read_metadata_bytes(path, &file, len).await?;
    let summary = crate::footer::summarize(&meta)
        .map_err(|e| Error::corrupt(path, format!("unreadable Parquet footer: {e}")))?;
    Ok(Footer {
        rows: u64::try_from(summary.num_rows).unwrap_or(0),
        bytes: len,
        file_id: summary.parsed(KEY_FILE_ID),
        level: summary.parsed(KEY_LEVEL),
        seq_min: summary.parsed(KEY_SEQ_MIN),
        seq_max: summary.parsed(KEY_SEQ_MAX),
    })
}

/// Bytes read per call when checking a checksum.
const CHECK_CHUNK: u64 = 4 << 20;

/// Checks that the table file at `path` holds the bytes `entry` recorded at commit: its
/// length and CRC-32C. Reads the file once, in chunks. Returns `false` when the entry records
/// no checksum (a manifest written before they were recorded): nothing could be checked.
pub async fn check_checksum<F: Fs>(
    fs: &F,
    path: &Path,
    entry: &crate::manifest::FileEntry,
) -> Result<bool> {
    let Some(expected) = entry.crc32c else {
        return Ok(false);
    };
    let damaged = |detail: String| Error::DamagedTable {
        path: path.to_path_buf(),
        detail,
    };
    let file = fs.open(path, OpenMode::Read).await?;
    let len = file.len().await?;
    if len != entry.bytes {
        return Err(damaged(format!(
            "{len} bytes on disk, {} recorded at commit",
            entry.bytes
        )));
    }
    let (mut crc, mut at) = (0u32, 0u64);
    while at < len {
        let n = CHECK_CHUNK.min(len - at);
        let chunk = file.read_at(at, n as usize).await?;
        crc = crc32c::crc32c_append(crc, &chunk);
        at += n;
    }
    if crc != expected {
        return Err(damaged(format!(
            "checksum mismatch: CRC-32C {crc:08x}, {expected:08x} recorded at commit"
        )));
    }
    Ok(true)
}

/// A published file that does not decode is damaged: `Corrupt` becomes `DamagedTable`, whose
/// message names the way out. Other errors pass through.
fn damaged(err: Error) -> Error {
    match err {
        Error::Corrupt { path, detail } => Error::DamagedTable { path, detail },
        other => other,
    }
}

/// Arrow's async Parquet reader over a file of the world's `Fs`.
struct FsParquetReader<FF> {
    path: PathBuf,
    // Boxed so the reader is `Unpin` whatever the backend's file type is.
    file: Box<FF>,
    len: u64,
}

fn to_parquet_error(err: impl std::error::Error + Send + Sync + 'static) -> ParquetError {
    ParquetError::External(Box::new(err))
}

impl<FF: FsFile + 'static> AsyncFileReader for FsParquetReader<FF> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let len = usize::try_from(range.end - range.start)
                .map_err(|_| ParquetError::General("range too large".into()))?;
            let bytes = self
                .file
                .read_at(range.start, len)
                .await
                .map_err(to_parquet_error)?;
            Ok(Bytes::from(bytes))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            read_metadata(&self.path, self.file.as_ref(), self.len)
                .await
                .map(Arc::new)
                .map_err(to_parquet_error)
        }
        .boxed()
    }
}

/// Reads a table file's rows batch by batch, one column chunk in memory at a time.
pub struct TableReader<FF: FsFile> {
    path: PathBuf,
    stream: parquet::arrow::async_reader::ParquetRecordBatchStream<FsParquetReader<FF>>,
    /// Opened by [`TableReader::open_published`]: a page that does not decode is
    /// `DamagedTable`.
    published: bool,
}

impl<FF: FsFile> TableReader<FF> {
    pub async fn open<F: Fs<File = FF>>(fs: &F, path: &Path, batch_rows: usize) -> Result<Self> {
        let file = fs.open(path, OpenMode::Read).await?;
        let len = file.len().await?;
        let reader = FsParquetReader {
            path: path.to_path_buf(),
            file: Box::new(file),
            len,
        };
        let context = |e: ParquetError| Error::corrupt(path, format!("reading Parquet: {e}"));
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(context)?
            .with_batch_size(batch_rows.max(1))
            .build()
            .map_err(context)?;
        Ok(Self {
            path: path.to_path_buf(),
            stream,
            published: false,
        })
    }

    /// Opens a published file for a step that keeps what it reads (merge, export): its bytes
    /// are checked against what `entry` recorded at commit before any is trusted, and a file
    /// that does not decode is `DamagedTable`, naming the way out.
    pub async fn open_published<F: Fs<File = FF>>(
        fs: &F,
        path: &Path,
        entry: &crate::manifest::FileEntry,
        batch_rows: usize,
    ) -> Result<Self> {
        check_checksum(fs, path, entry).await?;
        let mut reader = Self::open(fs, path, batch_rows).await.map_err(damaged)?;
        reader.published = true;
        Ok(reader)
    }

    pub async fn next(&mut self) -> Result<Option<RecordBatch>> {
        let read = match self.stream.next().await {
            None => Ok(None),
            Some(batch) => batch
                .map(Some)
                .map_err(|e| Error::corrupt(&self.path, format!("reading Parquet: {e}"))),
        };
        if self.published {
            read.map_err(damaged)
        } else {
            read
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, UInt64Array};
    #[cfg(not(madsim))]
    use tally_sim::SimFs;

    fn column(values: ArrayRef) -> ColumnEncoding {
        choose_encoding(values.as_ref())
    }

    #[test]
    fn a_footer_disagreement_shows_values_not_debug_options() {
        let footer = Footer {
            rows: 5,
            bytes: 100,
            file_id: Some(6),
            level: None,
            seq_min: Some(0),
            seq_max: Some(4),
        };
        let entry = crate::manifest::FileEntry {
            id: 6,
            level: 0,
            rows: 6,
            seq_min: 0,
            seq_max: 5,
            bytes: 100,
            crc32c: None,
            stats: None,
        };
        let why = footer.disagreement(&entry).expect("they disagree");
        assert_eq!(
            why,
            "footer says 5 rows (id 6, level missing, seq 0..=4), the manifest says 6 (id 6, level 0, seq 0..=5)"
        );
    }

    #[test]
    fn mostly_increasing_integers_get_delta_encoding() {
        assert_eq!(
            column(Arc::new(Int64Array::from_iter_values(0..1000))),
            ColumnEncoding::Delta
        );
        // One step in twenty goes down (late events): still mostly increasing.
        let jitter = (0..1000).map(|i| i * 10 - if i % 20 == 0 { 15 } else { 0 });
        assert_eq!(
            column(Arc::new(Int64Array::from_iter_values(jitter))),
            ColumnEncoding::Delta
        );
    }

    #[test]
    fn unique_values_skip_the_dictionary() {
        let shuffled = (0..1000u64).map(|i| (i * 7919) % 1000);
        assert_eq!(
            column(Arc::new(UInt64Array::from_iter_values(shuffled))),
            ColumnEncoding::Plain
        );
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("key-{:08}", (i * 7919) % 1000))
            .collect();
        assert_eq!(
            column(Arc::new(StringArray::from(keys))),
            ColumnEncoding::Plain
        );
        let floats = (0..1000).map(|i| f64::from(i) * 0.37);
        assert_eq!(
            column(Arc::new(Float64Array::from_iter_values(floats))),
            ColumnEncoding::Plain
        );
    }

    #[test]
    fn repeated_values_keep_the_dictionary() {
        let categories: Vec<String> = (0..1000)
            .map(|i| format!("cat-{}", (i * 7919) % 100))
            .collect();
        assert_eq!(
            column(Arc::new(StringArray::from(categories))),
            ColumnEncoding::Dictionary
        );
        let few = (0..1000).map(|i| (i * 7919) % 10);
        assert_eq!(
            column(Arc::new(Int64Array::from_iter_values(few))),
            ColumnEncoding::Dictionary
        );
    }

    #[cfg(not(madsim))]
    fn rows(first: u64, n: u64) -> RecordBatch {
        let columns: [(&str, ArrayRef); 3] = [
            (
                "cat",
                Arc::new(StringArray::from_iter_values(
                    (first..first + n).map(|i| format!("c{}", i % 50)),
                )),
            ),
            (
                "x",
                Arc::new(Float64Array::from_iter_values(
                    (first..first + n).map(|i| (i * 7919 % 10007) as f64),
                )),
            ),
            (
                SEQ_COLUMN,
                Arc::new(Int64Array::from_iter_values(
                    first as i64..(first + n) as i64,
                )),
            ),
        ];
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[cfg(not(madsim))]
    async fn write_file(fs: &SimFs, path: &Path) -> Vec<u8> {
        let options = TableOptions {
            row_group_rows: 40_000,
            zstd_level: 1,
        };
        let batches: Vec<RecordBatch> = (0..5).map(|i| rows(i * 25_000, 25_000)).collect();
        let mut writer = TableWriter::create(fs, path, &batches[0], &options)
            .await
            .unwrap();
        for batch in &batches {
            writer.write(batch).await.unwrap();
        }
        let written = writer.finish(1, 0).await.unwrap();
        assert_eq!(
            (written.rows, written.seq_min, written.seq_max),
            (125_000, 0, 124_999)
        );
        fs.read(path).await.unwrap()
    }

    /// Large row groups are encoded by concurrent tasks: on a runtime with several workers
    /// the bytes are those of any other run, and every row reads back in order. (The
    /// simulation build has one thread; its determinism is what the harness's replays check.)
    #[cfg(not(madsim))]
    #[test]
    fn concurrently_encoded_files_are_byte_identical_and_read_back_whole() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let fs = SimFs::new();
            let first = write_file(&fs, Path::new("/a.parquet")).await;
            let second = write_file(&fs, Path::new("/b.parquet")).await;
            assert_eq!(first, second);
            let mut reader = TableReader::open(&fs, Path::new("/a.parquet"), 10_000)
                .await
                .unwrap();
            let mut next = 0u64;
            while let Some(batch) = reader.next().await.unwrap() {
                let (lo, hi) = seq_bounds(&batch).unwrap();
                assert_eq!(lo, next);
                next = hi + 1;
            }
            assert_eq!(next, 125_000);
        });
    }
}

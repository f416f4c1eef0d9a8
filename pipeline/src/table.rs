//! Table files: Parquet written and read through the world's `Fs`.
//!
//! Writing streams: the Parquet encoder writes into an in-memory buffer that is drained to the
//! file whenever it grows past [`DRAIN_BYTES`], so memory stays bounded by a row group however
//! large the file. Reading the footer touches only the file's last bytes; reading rows goes
//! through arrow's async Parquet reader, one column chunk at a time.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
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

const DRAIN_BYTES: usize = 4 << 20;
const FOOTER_TAIL: u64 = 8;

/// The table schema as stored: the user's columns, then the sequence column.
pub fn stored_schema(user: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = user.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SEQ_COLUMN, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
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

fn writer_properties(options: &TableOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(options.zstd_level)
        .map_err(|e| Error::format("table file compression level", e))?;
    let seq = ColumnPath::from(SEQ_COLUMN);
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_column_dictionary_enabled(seq.clone(), false)
        .set_column_encoding(seq, Encoding::DELTA_BINARY_PACKED)
        .set_created_by(format!("tally {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// What a finished table file holds, as recorded in its footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    pub seq_min: u64,
    pub seq_max: u64,
}

/// Streams batches into a new file at `path` (normally a temp name); `finish` syncs it.
pub struct TableWriter<F: Fs> {
    path: PathBuf,
    file: F::File,
    writer: ArrowWriter<Vec<u8>>,
    offset: u64,
    rows: u64,
    seq_range: Option<(u64, u64)>,
}

impl<F: Fs> TableWriter<F> {
    pub async fn create(
        fs: &F,
        path: &Path,
        schema: SchemaRef,
        options: &TableOptions,
    ) -> Result<Self> {
        let file = fs.create(path, CreateMode::Truncate).await?;
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties(options)?))
            .map_err(|e| Error::format(format!("{}: starting Parquet", path.display()), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            writer,
            offset: 0,
            rows: 0,
            seq_range: None,
        })
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
        self.writer
            .write(batch)
            .map_err(|e| Error::format(format!("{}: writing Parquet", self.path.display()), e))?;
        self.rows += batch.num_rows() as u64;
        if self.writer.inner().len() >= DRAIN_BYTES {
            self.drain().await?;
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<()> {
        let bytes = std::mem::take(self.writer.inner_mut());
        if !bytes.is_empty() {
            self.file.write_at(self.offset, &bytes).await?;
            self.offset += bytes.len() as u64;
        }
        Ok(())
    }

    /// Writes the footer (with the file's id, level and sequence range) and syncs the file.
    pub async fn finish(self, file_id: u64, level: u32) -> Result<Written> {
        self.finish_with(&[
            (KEY_FILE_ID, file_id.to_string()),
            (KEY_LEVEL, level.to_string()),
        ])
        .await
    }

    /// Writes the footer with `metadata` and the sequence range, and syncs the file.
    pub async fn finish_with(mut self, metadata: &[(&str, String)]) -> Result<Written> {
        let (seq_min, seq_max) = self.seq_range.ok_or_else(|| Error::Conservation {
            detail: format!(
                "{}: a table file needs at least one row",
                self.path.display()
            ),
        })?;
        let seq = [
            (KEY_SEQ_MIN, seq_min.to_string()),
            (KEY_SEQ_MAX, seq_max.to_string()),
        ];
        for (key, value) in metadata.iter().cloned().chain(seq) {
            self.writer
                .append_key_value_metadata(KeyValue::new(key.to_string(), value));
        }
        self.writer
            .finish()
            .map_err(|e| Error::format(format!("{}: finishing Parquet", self.path.display()), e))?;
        self.drain().await?;
        self.file.sync().await?;
        Ok(Written {
            rows: self.rows,
            bytes: self.offset,
            seq_min,
            seq_max,
        })
    }
}

/// Smallest and largest sequence number of a batch, checking they increase row by row.
pub fn seq_bounds(batch: &RecordBatch) -> Result<(u64, u64)> {
    let column = batch
        .column_by_name(SEQ_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::UInt64Array>())
        .ok_or_else(|| Error::Conservation {
            detail: format!("batch has no {SEQ_COLUMN} column of type UInt64"),
        })?;
    let values = column.values();
    if column.null_count() > 0 || values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Conservation {
            detail: format!("{SEQ_COLUMN} is not strictly increasing within a batch"),
        });
    }
    Ok((values[0], values[values.len() - 1]))
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

async fn read_metadata<FF: FsFile>(path: &Path, file: &FF, len: u64) -> Result<ParquetMetaData> {
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
    let meta = file
        .read_at(range.start, (range.end - range.start) as usize)
        .await?;
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
        (!agrees).then(|| {
            format!(
                "footer says {} rows (id {:?}, level {:?}, seq {:?}..={:?}), the manifest says {} (id {}, level {}, seq {}..={})",
                self.rows,
                self.file_id,
                self.level,
                self.seq_min,
                self.seq_max,
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
    let meta = read_metadata(path, &file, len).await?;
    let kv = |key: &str| -> Option<String> {
        meta.file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .clone()
    };
    Ok(Footer {
        rows: u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0),
        bytes: len,
        file_id: kv(KEY_FILE_ID).and_then(|v| v.parse().ok()),
        level: kv(KEY_LEVEL).and_then(|v| v.parse().ok()),
        seq_min: kv(KEY_SEQ_MIN).and_then(|v| v.parse().ok()),
        seq_max: kv(KEY_SEQ_MAX).and_then(|v| v.parse().ok()),
    })
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
        })
    }

    pub async fn next(&mut self) -> Result<Option<RecordBatch>> {
        match self.stream.next().await {
            None => Ok(None),
            Some(batch) => batch
                .map(Some)
                .map_err(|e| Error::corrupt(&self.path, format!("reading Parquet: {e}"))),
        }
    }
}

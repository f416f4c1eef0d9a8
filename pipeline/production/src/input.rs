//! Input files for `tally run`: CSV (with a header line), JSON Lines and Parquet, read as Arrow
//! batches. Every error names the file and, where the format allows, the line or row.
//!
//! Reading is deterministic: the same file yields the same batches, so a source's row numbers
//! mean the same thing on every run — which is what lets an interrupted run resume exactly.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "the user's input files are read at the binary's edge; they are not part of a store"
)]

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

/// Rows read to infer the columns of a CSV or JSON Lines file.
pub const INFER_ROWS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    /// The format a file name implies: `.csv`, `.jsonl`/`.ndjson`/`.json`, `.parquet`/`.pq`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!(
                "unknown format {s:?}: expected csv, jsonl or parquet"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        })
    }
}

/// An input file that cannot be read: the file, where in it, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", file.display(), location.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
pub struct InputError {
    pub file: PathBuf,
    pub location: Option<String>,
    pub message: String,
}

impl InputError {
    fn new(file: &Path, location: Option<String>, message: impl fmt::Display) -> Self {
        Self {
            file: file.to_path_buf(),
            location,
            message: message.to_string(),
        }
    }
}

enum Batches {
    Csv(Box<arrow::csv::Reader<File>>),
    Json(arrow::json::Reader<BufReader<File>>),
    Parquet(ParquetRecordBatchReader),
}

/// Batches of one input file, in file order.
pub struct InputReader {
    path: PathBuf,
    format: Format,
    schema: SchemaRef,
    batches: Batches,
    /// Rows returned so far: the row number of the next batch's first row.
    rows: u64,
}

fn open_file(path: &Path) -> Result<File, InputError> {
    File::open(path).map_err(|e| InputError::new(path, None, e))
}

impl InputReader {
    pub fn open(path: &Path, format: Format, batch_rows: usize) -> Result<Self, InputError> {
        let batch_rows = batch_rows.max(1);
        let (schema, batches) = match format {
            Format::Csv => {
                let csv_format = arrow::csv::reader::Format::default().with_header(true);
                let (schema, _) = csv_format
                    .infer_schema(open_file(path)?, Some(INFER_ROWS))
                    .map_err(|e| InputError::new(path, None, e))?;
                let schema = Arc::new(schema);
                let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                    .with_header(true)
                    .with_batch_size(batch_rows)
                    .build(open_file(path)?)
                    .map_err(|e| InputError::new(path, None, e))?;
                (schema, Batches::Csv(Box::new(reader)))
            }
            Format::Jsonl => {
                let mut file = BufReader::new(open_file(path)?);
                let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(
                    &mut file,
                    Some(INFER_ROWS),
                )
                .map_err(|e| json_error(path, e))?;
                file.rewind().map_err(|e| InputError::new(path, None, e))?;
                let schema = Arc::new(schema);
                let reader = arrow::json::ReaderBuilder::new(schema.clone())
                    .with_batch_size(batch_rows)
                    .build(file)
                    .map_err(|e| json_error(path, e))?;
                (schema, Batches::Json(reader))
            }
            Format::Parquet => {
                let builder =
                    ParquetRecordBatchReaderBuilder::try_new(open_file(path)?).map_err(|e| {
                        InputError::new(path, None, format!("not a readable Parquet file: {e}"))
                    })?;
                let schema = builder.schema().clone();
                let reader = builder
                    .with_batch_size(batch_rows)
                    .build()
                    .map_err(|e| InputError::new(path, None, e))?;
                (schema, Batches::Parquet(reader))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            format,
            schema,
            batches,
            rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next batch, or `None` at the end of the file.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, InputError> {
        let next = match &mut self.batches {
            Batches::Csv(r) => r.next(),
            Batches::Json(r) => r.next(),
            Batches::Parquet(r) => r.next(),
        };
        match next {
            None => Ok(None),
            Some(Ok(batch)) => {
                self.rows += batch.num_rows() as u64;
                Ok(Some(batch))
            }
            Some(Err(e)) => Err(self.locate(e)),
        }
    }

    /// Rows returned so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn locate(&self, err: ArrowError) -> InputError {
        let rows = format!("after row {}", self.rows);
        match self.format {
            // arrow's CSV errors already say "at line N".
            Format::Csv => InputError::new(&self.path, None, err),
            Format::Jsonl => match first_bad_json_line(&self.path) {
                Some((line, why)) => InputError::new(&self.path, Some(format!("line {line}")), why),
                None => InputError::new(&self.path, Some(format!("after row {}", self.rows)), err),
            },
            Format::Parquet => InputError::new(&self.path, Some(rows), err),
        }
    }
}

fn json_error(path: &Path, err: ArrowError) -> InputError {
    match first_bad_json_line(path) {
        Some((line, why)) => InputError::new(path, Some(format!("line {line}")), why),
        None => InputError::new(path, None, err),
    }
}

/// The first line (1-based) of a JSON Lines file that is not a JSON object, and why.
fn first_bad_json_line(path: &Path) -> Option<(u64, String)> {
    let file = BufReader::new(File::open(path).ok()?);
    for (index, line) in file.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some((index as u64 + 1, e.to_string())),
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Some((index as u64 + 1, "not a JSON object".into())),
            Err(e) => return Some((index as u64 + 1, format!("not valid JSON: {e}"))),
        }
    }
    None
}

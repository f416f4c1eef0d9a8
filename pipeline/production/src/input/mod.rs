//! Input files for `tally run`: CSV (with a header line), JSON Lines and Parquet, read as Arrow
//! batches. The rules are in `docs/inputs.md`; in short, **every value comes back exactly, or
//! the whole file is refused** with the file, the line (or Parquet row) and the column named.
//!
//! A file is read in two passes. [`InputReader::scan`] reads all of it: it checks every byte
//! against the limits (no NUL byte, no record over [`MAX_RECORD_BYTES`], a header under
//! [`MAX_HEADER_BYTES`]), parses every value, and decides each column's type from every row
//! of the file — never from a sample. [`InputReader::open_with_schema`] then reads the file
//! again as batches of that schema; every value converts, because the scan saw it convert.
//!
//! Reading is deterministic: the same file yields the same batches, so a source's row numbers
//! mean the same thing on every run — which is what lets an interrupted run resume exactly.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "the user's input files are read at the binary's edge; they are not part of a store"
)]

mod csv_file;
mod json;
mod jsonl;
mod parquet_file;
pub mod text;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// The longest record (CSV, quoted newlines included) or line (JSON Lines) accepted, in bytes;
/// a field is at most a record. Bounds the memory one row can take.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// The longest CSV header accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// The deepest nesting of JSON arrays and objects accepted.
pub const MAX_JSON_DEPTH: usize = 64;

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

/// Where in an input file something is wrong. Lines are the file's physical lines, 1-based,
/// a CSV header being line 1; a CSV record is named by the line it starts on. Parquet rows
/// are 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Line { line: u64, column: Option<String> },
    Row { row: u64, column: Option<String> },
    Column(String),
}

/// A column name as messages show it: quoted, control characters escaped, at most 80
/// characters (a hostile header must not flood the terminal).
pub fn quoted(name: &str) -> String {
    let escaped: String = name.escape_debug().take(80).collect();
    let more = if name.escape_debug().nth(80).is_some() {
        "..."
    } else {
        ""
    };
    format!("\"{escaped}{more}\"")
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (place, column) = match self {
            Location::Line { line, column } => (format!("line {line}"), column),
            Location::Row { row, column } => (format!("row {row}"), column),
            Location::Column(name) => return write!(f, "column {}", quoted(name)),
        };
        match column {
            Some(name) => write!(f, "{place}, column {}", quoted(name)),
            None => f.write_str(&place),
        }
    }
}

/// An input file that cannot be read, or is refused: the file, where in it, and why.
#[derive(Debug, thiserror::Error)]
pub struct InputError {
    pub file: PathBuf,
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(location) = &self.location {
            write!(f, ": {location}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl InputError {
    pub(crate) fn new(file: &Path, location: Option<Location>, message: impl fmt::Display) -> Self {
        Self {
            file: file.to_path_buf(),
            location,
            message: message.to_string(),
        }
    }

    pub(crate) fn at_line(
        file: &Path,
        line: u64,
        column: Option<&str>,
        message: impl fmt::Display,
    ) -> Self {
        let column = column.map(str::to_owned);
        Self::new(file, Some(Location::Line { line, column }), message)
    }
}

/// What a full read of a file found: the columns every row fits, and the row count.
#[derive(Clone, Debug)]
pub struct Scanned {
    pub schema: SchemaRef,
    pub rows: u64,
}

enum Batches {
    Csv(Box<csv_file::Batches>),
    Json(arrow::json::Reader<std::io::BufReader<File>>),
    Parquet(parquet::arrow::arrow_reader::ParquetRecordBatchReader),
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

pub(crate) fn open_file(path: &Path) -> Result<File, InputError> {
    File::open(path).map_err(|e| InputError::new(path, None, e))
}

impl InputReader {
    /// Reads all of `path`, checking every value, and decides its columns from every row.
    /// `progress` is told of rows read as the scan goes.
    pub fn scan(
        path: &Path,
        format: Format,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Scanned, InputError> {
        match format {
            Format::Csv => csv_file::scan(path, progress),
            Format::Jsonl => jsonl::scan(path, progress),
            Format::Parquet => parquet_file::scan(path, progress),
        }
    }

    /// Reads `path` as batches of the schema its scan decided.
    pub fn open_with_schema(
        path: &Path,
        format: Format,
        schema: SchemaRef,
        batch_rows: usize,
    ) -> Result<Self, InputError> {
        let batch_rows = batch_rows.max(1);
        let batches = match format {
            Format::Csv => Batches::Csv(Box::new(csv_file::Batches::open(
                path,
                schema.clone(),
                batch_rows,
            )?)),
            Format::Jsonl => Batches::Json(jsonl::open(path, schema.clone(), batch_rows)?),
            Format::Parquet => {
                Batches::Parquet(parquet_file::open(path, schema.clone(), batch_rows)?)
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

    /// Scans `path` and opens it with the schema found: two full reads.
    pub fn open(path: &Path, format: Format, batch_rows: usize) -> Result<Self, InputError> {
        let scanned = Self::scan(path, format, &mut |_| {})?;
        Self::open_with_schema(path, format, scanned.schema, batch_rows)
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The next batch, or `None` at the end of the file.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, InputError> {
        let (path, row) = (&self.path, self.rows + 1);
        // The scan read every row of this file without error: the file changed since.
        let changed = |e: arrow::error::ArrowError| {
            InputError::new(
                path,
                Some(Location::Row { row, column: None }),
                format!("cannot read the rows from here on (did the file change?): {e}"),
            )
        };
        let next = match &mut self.batches {
            Batches::Csv(r) => r.next_batch(),
            Batches::Json(r) => r.next().transpose().map_err(changed),
            Batches::Parquet(r) => r.next().transpose().map_err(changed),
        };
        if let Ok(Some(batch)) = &next {
            self.rows += batch.num_rows() as u64;
        }
        next
    }

    /// Rows returned so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

//! JSON Lines: one JSON object per line. The scan parses every line ([`super::json`]) to decide
//! the columns; arrow's JSON reader then decodes the file under that schema, which can no
//! longer drop a key, truncate a number or null a value, because the schema has a column for
//! every key and a type for every value the file holds.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use super::json::{self, Kind, Slot};
use super::{InputError, MAX_RECORD_BYTES, Scanned, open_file};

/// Physical lines of a file, each checked against the limits before it is kept: no NUL byte,
/// at most [`MAX_RECORD_BYTES`]. Memory stays bounded whatever the file holds.
struct Lines {
    reader: BufReader<File>,
    line: u64,
    buf: Vec<u8>,
}

impl Lines {
    /// The next line without its terminator, with its number; `None` at the end.
    fn next(&mut self, path: &Path) -> Result<Option<(u64, &[u8])>, InputError> {
        self.buf.clear();
        self.line += 1;
        let line = self.line;
        loop {
            let available = self
                .reader
                .fill_buf()
                .map_err(|e| InputError::new(path, None, e))?;
            if available.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            if chunk.contains(&0) {
                return Err(InputError::at_line(
                    path,
                    line,
                    None,
                    "a NUL byte: this is not a text file",
                ));
            }
            if self.buf.len() + chunk.len() > MAX_RECORD_BYTES {
                return Err(InputError::at_line(
                    path,
                    line,
                    None,
                    format!("longer than the limit of {} MiB", MAX_RECORD_BYTES >> 20),
                ));
            }
            self.buf.extend_from_slice(chunk);
            let used = chunk.len() + usize::from(done);
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((line, &self.buf)))
    }
}

/// Reads all of a JSON Lines file and decides its columns: every key of every line, nested
/// ones included, sorted by name.
pub fn scan(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<Scanned, InputError> {
    let mut lines = Lines {
        reader: BufReader::new(open_file(path)?),
        line: 0,
        buf: Vec::new(),
    };
    let mut root = Slot::new();
    let mut rows = 0u64;
    while let Some((line, bytes)) = lines.next(path)? {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err(e) = std::str::from_utf8(bytes) {
            let message = format!(
                "not UTF-8 (an invalid byte at character {})",
                e.valid_up_to() + 1
            );
            return Err(InputError::at_line(path, line, None, message));
        }
        json::parse_line(bytes, line, &mut root)
            .map_err(|e| InputError::at_line(path, line, e.column.as_deref(), e.message))?;
        rows += 1;
        if rows % 8192 == 0 {
            progress(8192);
        }
    }
    progress(rows % 8192);
    let fields = match &root.kind {
        Kind::Object(fields) => fields.clone(),
        _ => Default::default(),
    };
    if rows > 0 && fields.is_empty() {
        return Err(InputError::new(
            path,
            None,
            "no line has a key: there are no columns to store",
        ));
    }
    let fields = json::fields_of(&fields, "").map_err(|(line, column, message)| {
        InputError::at_line(path, line, Some(&column), message)
    })?;
    Ok(Scanned {
        schema: Arc::new(Schema::new(fields)),
        rows,
    })
}

/// Arrow's JSON reader over the file, under the schema its scan decided.
pub fn open(
    path: &Path,
    schema: SchemaRef,
    batch_rows: usize,
) -> Result<arrow::json::Reader<BufReader<File>>, InputError> {
    arrow::json::ReaderBuilder::new(schema)
        .with_batch_size(batch_rows)
        .with_strict_mode(true)
        .build(BufReader::new(open_file(path)?))
        .map_err(|e| InputError::new(path, None, e))
}

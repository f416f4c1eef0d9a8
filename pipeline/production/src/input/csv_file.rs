//! CSV with a header line. The bytes pass through [`Guard`], which refuses a NUL byte, a record
//! over the size limit and an unterminated quote before the CSV parser sees them; every field
//! is then typed by [`Column`], which watches every value of the file.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::text::{self, unit_for};
use super::{InputError, MAX_HEADER_BYTES, MAX_RECORD_BYTES, Scanned, open_file, quoted};

/// Where the byte stream stands in CSV's quoting (the `csv` crate's defaults: `"` quotes,
/// `""` inside quotes is a quote, `\r` or `\n` ends a record).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the field's end, or the first half of `""`.
    QuoteInQuoted,
}

/// Why [`Guard`] stopped the stream, at which physical line (1-based).
#[derive(Debug)]
struct Refusal {
    line: u64,
    message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Refusal {}

/// The file's bytes, checked as they pass: memory stays bounded whatever the file holds,
/// because no record the parser buffers can outgrow the limit, and a zero-filled file stops at
/// its first block.
struct Guard<R> {
    inner: R,
    quoting: Quoting,
    line: u64,
    record_line: u64,
    quote_line: u64,
    record_bytes: usize,
    header: bool,
}

impl<R: Read> Guard<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            quoting: Quoting::FieldStart,
            line: 1,
            record_line: 1,
            quote_line: 1,
            record_bytes: 0,
            header: true,
        }
    }

    fn refuse(line: u64, message: String) -> io::Error {
        io::Error::other(Refusal { line, message })
    }

    fn check(&mut self, byte: u8) -> io::Result<()> {
        if byte == 0 {
            return Err(Self::refuse(
                self.line,
                "a NUL byte: this is not a text CSV file".into(),
            ));
        }
        self.record_bytes += 1;
        let limit = if self.header {
            MAX_HEADER_BYTES
        } else {
            MAX_RECORD_BYTES
        };
        if self.record_bytes > limit {
            let what = if self.header {
                "the header"
            } else {
                "the record starting here"
            };
            return Err(Self::refuse(
                self.record_line,
                format!("{what} is longer than the limit of {} MiB", limit >> 20),
            ));
        }
        let end = matches!(byte, b'\n' | b'\r');
        self.quoting = match (self.quoting, byte) {
            (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
            (Quoting::Quoted, _) => Quoting::Quoted,
            (Quoting::FieldStart, b'"') => {
                self.quote_line = self.line;
                Quoting::Quoted
            }
            (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
            (_, b',') => Quoting::FieldStart,
            (_, _) if end => {
                self.record_bytes = 0;
                self.header = false;
                self.record_line = self.line + u64::from(byte == b'\n');
                Quoting::FieldStart
            }
            (_, _) => Quoting::Unquoted,
        };
        if byte == b'\n' {
            self.line += 1;
            if self.quoting != Quoting::Quoted {
                self.record_line = self.line;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.quoting == Quoting::Quoted {
            return Err(Self::refuse(
                self.quote_line,
                "a quoted field is never closed: the file ends inside its quotes".into(),
            ));
        }
        for &byte in &buf[..n] {
            self.check(byte)?;
        }
        Ok(n)
    }
}

type Reader = csv::Reader<Guard<BufReader<File>>>;

fn reader(path: &Path) -> Result<Reader, InputError> {
    let guard = Guard::new(BufReader::new(open_file(path)?));
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(guard))
}

/// A `csv` error as an [`InputError`] naming the physical line.
fn csv_error(path: &Path, err: csv::Error) -> InputError {
    let line = err.position().map(csv::Position::line);
    match err.kind() {
        csv::ErrorKind::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<Refusal>()) {
            Some(r) => InputError::at_line(path, r.line, None, &r.message),
            None => InputError::new(path, None, io),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len,
            len,
            pos,
        } => {
            let line = pos.as_ref().map(|p| p.line()).or(line).unwrap_or(0);
            InputError::at_line(
                path,
                line,
                None,
                format!("{len} fields where the header has {expected_len}"),
            )
        }
        _ => match line {
            Some(line) => InputError::at_line(path, line, None, &err),
            None => InputError::new(path, None, &err),
        },
    }
}

/// The column names, checked: UTF-8, not empty, no control characters, no two alike. A
/// UTF-8 byte-order mark before the first name is not part of it.
fn header(path: &Path, reader: &mut Reader) -> Result<Vec<String>, InputError> {
    let record = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e))?
        .clone();
    let refuse = |message: String| InputError::at_line(path, 1, None, message);
    let mut names: Vec<String> = Vec::with_capacity(record.len());
    for (index, raw) in record.iter().enumerate() {
        let raw = if index == 0 {
            raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)
        } else {
            raw
        };
        let name = std::str::from_utf8(raw)
            .map_err(|_| refuse(format!("the name of column {} is not UTF-8", index + 1)))?;
        if name.is_empty() {
            return Err(refuse(format!("column {} has an empty name", index + 1)));
        }
        if name.chars().any(char::is_control) {
            return Err(refuse(format!(
                "column name {} holds a control character",
                quoted(name)
            )));
        }
        if let Some(first) = names.iter().position(|n| n == name) {
            return Err(refuse(format!(
                "column name {} appears twice (columns {} and {})",
                quoted(name),
                first + 1,
                index + 1
            )));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// What every non-empty value of a column seen so far allows it to be.
#[derive(Clone)]
struct Column {
    seen: bool,
    int: bool,
    float: bool,
    boolean: bool,
    date: bool,
    naive: bool,
    instant: bool,
    fraction_digits: u32,
    min: i128,
    max: i128,
}

impl Column {
    fn new() -> Self {
        Self {
            seen: false,
            int: true,
            float: true,
            boolean: true,
            date: true,
            naive: true,
            instant: true,
            fraction_digits: 0,
            min: i128::MAX,
            max: i128::MIN,
        }
    }

    fn observe(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        self.seen = true;
        let int = if self.int || self.float {
            text::integer(value)
        } else {
            None
        };
        self.int &= int.is_some();
        // Integers within ±2^53 are exact doubles; anything else is checked.
        let small = int.is_some_and(|i| i.unsigned_abs() <= 1 << 53);
        // Short-circuits: a flag once false stays false, and its parser need not run again.
        self.float = self.float && (small || text::exact_float(value).is_some());
        self.boolean = self.boolean && text::boolean(value).is_some();
        self.date = self.date && text::date(value).is_some();
        if self.naive || self.instant {
            match text::timestamp(value) {
                Some(t) => {
                    self.naive &= !t.has_offset;
                    self.instant &= t.has_offset;
                    self.fraction_digits = self.fraction_digits.max(t.fraction_digits);
                    self.min = self.min.min(t.nanos);
                    self.max = self.max.max(t.nanos);
                }
                None => (self.naive, self.instant) = (false, false),
            }
        }
    }

    /// The narrowest type that holds every value seen exactly; text if none does.
    fn data_type(&self) -> DataType {
        if !self.seen {
            return DataType::Utf8;
        }
        if self.int {
            return DataType::Int64;
        }
        if self.float {
            return DataType::Float64;
        }
        if self.boolean {
            return DataType::Boolean;
        }
        if self.date {
            return DataType::Date32;
        }
        // A Delta table holds timestamps to the microsecond: a column needing nanoseconds stays
        // text, exactly as written, rather than be refused when it is published.
        if (self.naive || self.instant) && self.fraction_digits <= 6 {
            let unit = unit_for(self.fraction_digits);
            if text::in_unit(self.min, unit).is_some() && text::in_unit(self.max, unit).is_some() {
                let zone = self.instant.then(|| Arc::from("UTC"));
                return DataType::Timestamp(unit, zone);
            }
        }
        DataType::Utf8
    }
}

/// A field as UTF-8, or an error naming its line and column.
fn field<'a>(
    path: &Path,
    record: &'a csv::ByteRecord,
    index: usize,
    name: &str,
) -> Result<&'a str, InputError> {
    let bytes = record.get(index).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|e| {
        let line = record.position().map_or(0, csv::Position::line);
        InputError::at_line(
            path,
            line,
            Some(name),
            format!(
                "not UTF-8 (an invalid byte at offset {} of the field)",
                e.valid_up_to()
            ),
        )
    })
}

/// Reads all of a CSV file and decides its columns.
pub fn scan(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<Scanned, InputError> {
    let mut reader = reader(path)?;
    let names = header(path, &mut reader)?;
    let mut columns = vec![Column::new(); names.len()];
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        for (index, (column, name)) in columns.iter_mut().zip(&names).enumerate() {
            column.observe(field(path, &record, index, name)?);
        }
        rows += 1;
        if rows % 8192 == 0 {
            progress(8192);
        }
    }
    progress(rows % 8192);
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(name, column)| Field::new(name, column.data_type(), true))
        .collect();
    Ok(Scanned {
        schema: Arc::new(Schema::new(fields)),
        rows,
    })
}

/// One column's values as a batch is built.
enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Time(TimeUnit, Int64Builder),
    Text(StringBuilder),
}

impl Builder {
    fn new(data_type: &DataType) -> Self {
        match data_type {
            DataType::Int64 => Builder::Int(Int64Builder::new()),
            DataType::Float64 => Builder::Float(Float64Builder::new()),
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            DataType::Timestamp(unit, _) => Builder::Time(*unit, Int64Builder::new()),
            _ => Builder::Text(StringBuilder::new()),
        }
    }

    /// Appends `value`; `None` when it does not convert (the file changed since its scan).
    fn push(&mut self, value: &str) -> Option<()> {
        if value.is_empty() {
            match self {
                Builder::Int(b) | Builder::Time(_, b) => b.append_null(),
                Builder::Float(b) => b.append_null(),
                Builder::Bool(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Text(b) => b.append_null(),
            }
            return Some(());
        }
        match self {
            Builder::Int(b) => b.append_value(text::integer(value)?),
            Builder::Float(b) => b.append_value(text::exact_float(value)?),
            Builder::Bool(b) => b.append_value(text::boolean(value)?),
            Builder::Date(b) => b.append_value(text::date(value)?),
            Builder::Time(unit, b) => {
                b.append_value(text::in_unit(text::timestamp(value)?.nanos, *unit)?)
            }
            Builder::Text(b) => b.append_value(value),
        }
        Some(())
    }

    fn finish(&mut self, data_type: &DataType) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(_, b) => {
                let ints = b.finish();
                // Int64 to a timestamp of any unit is a reinterpretation: exact.
                arrow::compute::cast(&ints, data_type).expect("int64 casts to a timestamp")
            }
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Batches of a scanned CSV file.
pub struct Batches {
    path: std::path::PathBuf,
    reader: Reader,
    schema: SchemaRef,
    batch_rows: usize,
    record: csv::ByteRecord,
}

impl Batches {
    pub fn open(path: &Path, schema: SchemaRef, batch_rows: usize) -> Result<Self, InputError> {
        let mut reader = reader(path)?;
        let names = header(path, &mut reader)?;
        let same = names.len() == schema.fields().len()
            && names
                .iter()
                .zip(schema.fields())
                .all(|(n, f)| n == f.name());
        if !same {
            return Err(InputError::at_line(
                path,
                1,
                None,
                "the header changed since the file was validated",
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            schema,
            batch_rows,
            record: csv::ByteRecord::new(),
        })
    }

    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, InputError> {
        let fields = self.schema.fields().clone();
        let mut builders: Vec<Builder> =
            fields.iter().map(|f| Builder::new(f.data_type())).collect();
        let mut rows = 0;
        while rows < self.batch_rows {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(&self.path, e))?;
            if !more {
                break;
            }
            for (index, (builder, f)) in builders.iter_mut().zip(fields.iter()).enumerate() {
                let value = field(&self.path, &self.record, index, f.name())?;
                builder.push(value).ok_or_else(|| {
                    let line = self.record.position().map_or(0, csv::Position::line);
                    InputError::at_line(
                        &self.path,
                        line,
                        Some(f.name()),
                        format!(
                            "{} is not {}: the file changed since it was validated",
                            quoted(value),
                            f.data_type()
                        ),
                    )
                })?;
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = builders
            .iter_mut()
            .zip(fields.iter())
            .map(|(b, f)| b.finish(f.data_type()))
            .collect();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map(Some)
            .map_err(|e| InputError::new(&self.path, None, e))
    }
}

//! One JSON Lines line at a time, parsed straight into the file's column types ([`Slot`]):
//! every key of every line, at every depth, and the literal text of every number, so that a
//! key seen once on the last line still gets its column and a number is typed from its digits,
//! not from a rounded double.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields};

use super::MAX_JSON_DEPTH;
use super::text;

/// Something wrong at a place in a line: the column path (`a.b`, `tags[]`) if inside one.
#[derive(Debug)]
pub struct JsonError {
    pub column: Option<String>,
    pub message: String,
}

/// What a number column has held: the first value that needs a double, and the first value
/// a double cannot hold exactly (which refuses the column only if it needs doubles).
#[derive(Clone, Debug, Default)]
pub struct Numbers {
    first_fractional: Option<(u64, String)>,
    first_inexact: Option<(u64, String)>,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// Only nulls (or nothing) so far.
    Unknown,
    Bool,
    Number(Numbers),
    Text,
    Object(BTreeMap<String, Slot>),
    List(Box<Slot>),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Unknown => "null",
            Kind::Bool => "a boolean",
            Kind::Number(_) => "a number",
            Kind::Text => "a string",
            Kind::Object(_) => "an object",
            Kind::List(_) => "an array",
        }
    }
}

/// One column (or nested field, or list element): its kind and the line that fixed it.
#[derive(Clone, Debug)]
pub struct Slot {
    pub kind: Kind,
    pub line: u64,
}

impl Slot {
    pub fn new() -> Self {
        Self {
            kind: Kind::Unknown,
            line: 0,
        }
    }
}

/// `{` and `}` as bytes (named, so brace-counting tools are not misled by the literals).
const OBJECT_OPEN: u8 = 0x7b;
const OBJECT_CLOSE: u8 = 0x7d;

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    /// The path of the value being parsed, for messages.
    path: Vec<String>,
}

/// Parses one line (a JSON object) into `root`, widening its columns.
pub fn parse_line(bytes: &[u8], line: u64, root: &mut Slot) -> Result<(), JsonError> {
    let mut parser = Parser {
        bytes,
        pos: 0,
        line,
        path: Vec::new(),
    };
    parser.skip_ws();
    if parser.peek() != Some(OBJECT_OPEN) {
        return Err(parser.error("not a JSON object"));
    }
    parser.value(root)?;
    parser.skip_ws();
    if parser.pos != bytes.len() {
        return Err(parser.error("more after the JSON object (one object per line)"));
    }
    Ok(())
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn column(&self) -> Option<String> {
        if self.path.is_empty() {
            return None;
        }
        let mut out = String::new();
        for part in &self.path {
            if part != "[]" && !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
        Some(out)
    }

    fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError {
            column: self.column(),
            message: message.into(),
        }
    }

    fn invalid(&self, what: &str) -> JsonError {
        self.error(format!(
            "not valid JSON: {what} at character {}",
            self.pos + 1
        ))
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.invalid(&format!("expected '{}'", byte as char)))
        }
    }

    /// Fixes `slot` to `kind` if it held only nulls; refuses another kind.
    fn settle(&self, slot: &mut Slot, kind: Kind) -> Result<(), JsonError> {
        match (&slot.kind, &kind) {
            (Kind::Unknown, _) => {
                *slot = Slot {
                    kind,
                    line: self.line,
                };
                Ok(())
            }
            (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => Ok(()),
            (a, b) => Err(self.error(format!(
                "{} where line {} has {}; a column holds one type",
                b.name(),
                slot.line,
                a.name()
            ))),
        }
    }

    fn value(&mut self, slot: &mut Slot) -> Result<(), JsonError> {
        self.skip_ws();
        if self.path.len() > MAX_JSON_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        match self.peek() {
            Some(OBJECT_OPEN) => self.object(slot),
            Some(b'[') => self.list(slot),
            Some(b'"') => {
                self.string()?;
                self.settle(slot, Kind::Text)
            }
            Some(b't') => self.literal(b"true", slot, Kind::Bool),
            Some(b'f') => self.literal(b"false", slot, Kind::Bool),
            Some(b'n') => self.literal(b"null", slot, Kind::Unknown),
            Some(b'-' | b'0'..=b'9') => self.number(slot),
            _ => Err(self.invalid("expected a value")),
        }
    }

    fn literal(&mut self, word: &[u8], slot: &mut Slot, kind: Kind) -> Result<(), JsonError> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(self.invalid("expected a value"));
        }
        self.pos += word.len();
        match kind {
            Kind::Unknown => Ok(()),
            kind => self.settle(slot, kind),
        }
    }

    fn object(&mut self, slot: &mut Slot) -> Result<(), JsonError> {
        self.settle(slot, Kind::Object(BTreeMap::new()))?;
        let Kind::Object(fields) = &mut slot.kind else {
            unreachable!("settled to an object")
        };
        self.expect(OBJECT_OPEN)?;
        let mut keys: Vec<String> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(OBJECT_CLOSE) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            if key.is_empty() || key.chars().any(char::is_control) {
                return Err(self.error("a key that is empty or holds a control character"));
            }
            if keys.contains(&key) {
                return Err(self.error(format!(
                    "key {} appears twice in one object",
                    super::quoted(&key)
                )));
            }
            self.skip_ws();
            self.expect(b':')?;
            self.path.push(key.clone());
            self.value(fields.entry(key.clone()).or_insert_with(Slot::new))?;
            self.path.pop();
            keys.push(key);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(OBJECT_CLOSE) => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.invalid("expected ',' or '}'")),
            }
        }
    }

    fn list(&mut self, slot: &mut Slot) -> Result<(), JsonError> {
        self.settle(slot, Kind::List(Box::new(Slot::new())))?;
        let Kind::List(items) = &mut slot.kind else {
            unreachable!("settled to a list")
        };
        self.expect(b'[')?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        self.path.push("[]".into());
        loop {
            self.value(items)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.path.pop();
                    return Ok(());
                }
                _ => return Err(self.invalid("expected ',' or ']'")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.invalid("a short \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.invalid("a bad \\u escape"))?;
        let value = u32::from_str_radix(text, 16).map_err(|_| self.invalid("a bad \\u escape"))?;
        self.pos += 4;
        Ok(value)
    }

    /// A string, decoded. The line is known to be UTF-8.
    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let byte = self
                .peek()
                .ok_or_else(|| self.invalid("an unterminated string"))?;
            self.pos += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.invalid("an unterminated string"))?;
                    self.pos += 1;
                    let ch = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.invalid("a bad escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..0x20 => return Err(self.invalid("a control character inside a string")),
                _ => out.push(byte),
            }
        }
        String::from_utf8(out).map_err(|_| self.invalid("a string that is not UTF-8"))
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.bytes[self.pos..].starts_with(b"\\u") {
                return Err(self.invalid("a lone surrogate"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.invalid("a lone surrogate"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.invalid("a lone surrogate"))
    }

    fn number(&mut self, slot: &mut Slot) -> Result<(), JsonError> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        let literal = std::str::from_utf8(&self.bytes[start..self.pos]).expect("ASCII");
        if !text::is_decimal(literal) {
            return Err(self.invalid(&format!("a malformed number {literal}")));
        }
        self.settle(slot, Kind::Number(Numbers::default()))?;
        let Kind::Number(numbers) = &mut slot.kind else {
            unreachable!("settled to a number")
        };
        let integer = !literal.contains(['.', 'e', 'E']);
        let int = if integer {
            literal.parse::<i64>().ok()
        } else {
            None
        };
        if int.is_none() && numbers.first_fractional.is_none() {
            numbers.first_fractional = Some((self.line, literal.to_owned()));
        }
        let small = int.is_some_and(|i| i.unsigned_abs() <= 1 << 53);
        if !small && numbers.first_inexact.is_none() && text::exact_float(literal).is_none() {
            numbers.first_inexact = Some((self.line, literal.to_owned()));
        }
        Ok(())
    }
}

/// A column's Arrow type, or why it has none: `(line, column path, message)`.
pub type Refused = (u64, String, String);

/// The Arrow type of `slot`, whose path is `path`.
pub fn data_type(slot: &Slot, path: &str) -> Result<DataType, Refused> {
    Ok(match &slot.kind {
        Kind::Unknown | Kind::Text => DataType::Utf8,
        Kind::Bool => DataType::Boolean,
        Kind::Number(numbers) => match (&numbers.first_fractional, &numbers.first_inexact) {
            (None, _) => DataType::Int64,
            (Some(_), None) => DataType::Float64,
            (Some((line_f, first)), Some((line, inexact))) => {
                return Err((
                    *line,
                    path.to_owned(),
                    format!(
                        "{inexact} has no exact 64-bit float, and the column needs floats ({first} at line {line_f})"
                    ),
                ));
            }
        },
        Kind::Object(fields) => {
            if fields.is_empty() {
                return Err((
                    slot.line,
                    path.to_owned(),
                    "only ever an empty object: Parquet cannot store a struct with no fields"
                        .into(),
                ));
            }
            DataType::Struct(fields_of(fields, path)?)
        }
        Kind::List(items) => {
            let item = data_type(items, &format!("{path}[]"))?;
            DataType::List(Arc::new(Field::new_list_field(item, true)))
        }
    })
}

/// The fields of an object, in key order, every one nullable (a missing key is null).
pub fn fields_of(fields: &BTreeMap<String, Slot>, path: &str) -> Result<Fields, Refused> {
    fields
        .iter()
        .map(|(name, slot)| {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            Ok(Field::new(name, data_type(slot, &child)?, true))
        })
        .collect()
}

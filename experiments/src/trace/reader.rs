//! The IBM Docker registry trace format: reading and writing.
//!
//! A trace is a CSV file with a header row naming its columns (in any order;
//! columns beyond [`COLUMNS`] are ignored) and one request per row:
//!
//! ```text
//! host,http.request.duration,http.request.method,http.request.remoteaddr,http.request.uri,http.request.useragent,http.response.status,http.response.written,id,timestamp
//! dal09-reg-1,0.134,GET,10.0.3.7:51234,/v2/library/ubuntu/blobs/sha256:9f1e,"docker/17.03.1-ce go/go1.7.5 (linux)",200,41943040,4c1d2b6e,2017-06-20T00:00:01.250Z
//! ```
//!
//! For a cache the key is `http.request.uri` and the object's size
//! `http.response.written`. Fields may be quoted (`"a,b"`, with `""` for a
//! quote inside); a quoted field ends on its own line, so a row is always
//! exactly one line and errors name it. Timestamps are ISO-8601 as in the
//! published traces (`2017-06-20T00:00:01.250Z`, offsets `+02:00` and a
//! space instead of `T` accepted) or seconds since the Unix epoch
//! (`1497916801.25`).
//!
//! [`TraceReader`] streams a file: it holds one line at a time, and yields
//! one `Result` per row. A row is an error when a column is missing, a
//! number or timestamp does not parse, or the size is negative; the error
//! carries the 1-based line number and the column's name, and reading goes
//! on with the next row, so a caller can stop or skip and count.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// The columns of the IBM trace, in the published order.
pub const COLUMNS: [&str; 10] = [
    "host",
    "http.request.duration",
    "http.request.method",
    "http.request.remoteaddr",
    "http.request.uri",
    "http.request.useragent",
    "http.response.status",
    "http.response.written",
    "id",
    "timestamp",
];

const HOST: usize = 0;
const DURATION: usize = 1;
const METHOD: usize = 2;
const REMOTE: usize = 3;
const URI: usize = 4;
const AGENT: usize = 5;
const STATUS: usize = 6;
const WRITTEN: usize = 7;
const ID: usize = 8;
const TIMESTAMP: usize = 9;

/// The request's HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Put,
    Head,
    /// Any other method (registries also see POST, PATCH, DELETE): a valid
    /// row that a cache replay skips.
    Other(String),
}

impl Method {
    /// Parses a method name, case-insensitively.
    pub fn parse(text: &str) -> Method {
        let upper = text.trim().to_ascii_uppercase();
        match upper.as_str() {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "HEAD" => Method::Head,
            _ => Method::Other(upper),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Head => "HEAD",
            Method::Other(name) => name,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The row's line in the file (1-based; the header is a line too).
    pub line: u64,
    pub host: String,
    /// `http.request.duration` in seconds; `None` when the field is empty.
    pub duration: Option<f64>,
    pub method: Method,
    pub remote_addr: String,
    /// The key: `http.request.uri`.
    pub uri: String,
    pub user_agent: String,
    pub status: u16,
    /// The object's size: `http.response.written`, in bytes.
    pub size: u64,
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// What is wrong with a row (or the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceErrorKind {
    /// Reading the file failed; nothing more is read.
    Io,
    /// The header lacks a column, or there is no header.
    BadHeader,
    /// The line is not UTF-8.
    NotUtf8,
    /// A quoted field is not closed on its line, or text follows its
    /// closing quote.
    BadQuote,
    /// The row has fewer fields than the header names.
    MissingColumn,
    /// The row has more fields than the header names.
    ExtraFields,
    /// A field that must have a value is empty.
    Empty,
    /// A number does not parse (or is out of range).
    BadNumber,
    /// A timestamp does not parse.
    BadTimestamp,
    /// The size (`http.response.written`) is negative.
    NegativeSize,
}

impl TraceErrorKind {
    fn describe(self) -> &'static str {
        match self {
            TraceErrorKind::Io => "read error",
            TraceErrorKind::BadHeader => "bad header",
            TraceErrorKind::NotUtf8 => "not UTF-8",
            TraceErrorKind::BadQuote => "bad quoting",
            TraceErrorKind::MissingColumn => "missing column",
            TraceErrorKind::ExtraFields => "more fields than the header",
            TraceErrorKind::Empty => "empty value",
            TraceErrorKind::BadNumber => "bad number",
            TraceErrorKind::BadTimestamp => "bad timestamp",
            TraceErrorKind::NegativeSize => "negative size",
        }
    }
}

/// A malformed row (or an unreadable file), with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// 1-based line number.
    pub line: u64,
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub kind: TraceErrorKind,
    /// The offending text or the underlying error.
    pub detail: String,
}

impl TraceError {
    fn new(
        line: u64,
        column: Option<usize>,
        kind: TraceErrorKind,
        detail: impl Into<String>,
    ) -> Self {
        TraceError {
            line,
            column: column
                .and_then(|c| COLUMNS.get(c))
                .map(|c| (*c).to_string()),
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.kind.describe())?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for TraceError {}

/// Streams the rows of a trace; see the module documentation.
pub struct TraceReader<R> {
    input: R,
    /// Lines consumed so far.
    line: u64,
    /// Position of each of [`COLUMNS`] in a row.
    index: [usize; COLUMNS.len()],
    /// Fields in the header.
    width: usize,
    buf: Vec<u8>,
    done: bool,
}

impl TraceReader<BufReader<File>> {
    /// Opens a trace file and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|err| {
            TraceError::new(
                0,
                None,
                TraceErrorKind::Io,
                format!("{}: {err}", path.display()),
            )
        })?;
        TraceReader::new(BufReader::new(file))
    }
}

impl<R: BufRead> TraceReader<R> {
    /// Reads the header (the first non-blank line), which must name every
    /// column of [`COLUMNS`].
    pub fn new(input: R) -> Result<Self, TraceError> {
        let mut reader = TraceReader {
            input,
            line: 0,
            index: [0; COLUMNS.len()],
            width: 0,
            buf: Vec::new(),
            done: false,
        };
        let (line, fields) = match reader.next_fields() {
            None => {
                return Err(TraceError::new(
                    1,
                    None,
                    TraceErrorKind::BadHeader,
                    "the file is empty",
                ));
            }
            Some(Err(mut err)) => {
                if err.kind != TraceErrorKind::Io {
                    err.kind = TraceErrorKind::BadHeader;
                }
                return Err(err);
            }
            Some(Ok(header)) => header,
        };
        for (i, name) in COLUMNS.iter().enumerate() {
            match fields.iter().position(|field| field.trim() == *name) {
                Some(position) => reader.index[i] = position,
                None => {
                    return Err(TraceError::new(
                        line,
                        Some(i),
                        TraceErrorKind::BadHeader,
                        "not in the header",
                    ));
                }
            }
        }
        reader.width = fields.len();
        Ok(reader)
    }

    /// The next non-blank line split into fields, with its line number.
    fn next_fields(&mut self) -> Option<Result<(u64, Vec<String>), TraceError>> {
        if self.done {
            return None;
        }
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(err) => {
                    self.done = true;
                    return Some(Err(TraceError::new(
                        self.line + 1,
                        None,
                        TraceErrorKind::Io,
                        err.to_string(),
                    )));
                }
            }
            self.line += 1;
            let line = self.line;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(text) => text.trim_end_matches(['\n', '\r']),
                Err(err) => {
                    return Some(Err(TraceError::new(
                        line,
                        None,
                        TraceErrorKind::NotUtf8,
                        err.to_string(),
                    )));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(
                split_fields(text)
                    .map(|fields| (line, fields))
                    .map_err(|detail| {
                        TraceError::new(line, None, TraceErrorKind::BadQuote, detail)
                    }),
            );
        }
    }

    /// Turns a row's fields into a request.
    fn decode(&self, line: u64, fields: &[String]) -> Result<Request, TraceError> {
        if fields.len() < self.width {
            // Name the first column (in the row's order) that is missing.
            let missing = (0..COLUMNS.len())
                .filter(|&c| self.index[c] >= fields.len())
                .min_by_key(|&c| self.index[c]);
            let detail = format!("{} fields, the header has {}", fields.len(), self.width);
            if missing.is_some() {
                return Err(TraceError::new(
                    line,
                    missing,
                    TraceErrorKind::MissingColumn,
                    detail,
                ));
            }
            // Only columns this reader ignores are missing: fine.
        } else if fields.len() > self.width {
            return Err(TraceError::new(
                line,
                None,
                TraceErrorKind::ExtraFields,
                format!("{} fields, the header has {}", fields.len(), self.width),
            ));
        }
        let field = |c: usize| fields.get(self.index[c]).map_or("", |f| f.trim());
        let required = |c: usize| {
            let value = field(c);
            if value.is_empty() {
                Err(TraceError::new(line, Some(c), TraceErrorKind::Empty, ""))
            } else {
                Ok(value)
            }
        };

        let uri = required(URI)?.to_string();
        let method = Method::parse(required(METHOD)?);
        let duration = match field(DURATION) {
            "" => None,
            text => match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => {
                    return Err(TraceError::new(
                        line,
                        Some(DURATION),
                        TraceErrorKind::BadNumber,
                        text,
                    ));
                }
            },
        };
        let status_text = required(STATUS)?;
        let status = status_text.parse::<u16>().map_err(|_| {
            TraceError::new(line, Some(STATUS), TraceErrorKind::BadNumber, status_text)
        })?;
        let size = parse_size(required(WRITTEN)?)
            .map_err(|(kind, text)| TraceError::new(line, Some(WRITTEN), kind, text))?;
        let timestamp_text = required(TIMESTAMP)?;
        let timestamp_ms = parse_timestamp(timestamp_text).ok_or_else(|| {
            TraceError::new(
                line,
                Some(TIMESTAMP),
                TraceErrorKind::BadTimestamp,
                timestamp_text,
            )
        })?;
        Ok(Request {
            line,
            host: field(HOST).to_string(),
            duration,
            method,
            remote_addr: field(REMOTE).to_string(),
            uri,
            user_agent: field(AGENT).to_string(),
            status,
            size,
            id: field(ID).to_string(),
            timestamp_ms,
        })
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.next_fields()? {
            Ok((line, fields)) => self.decode(line, &fields),
            Err(err) => Err(err),
        })
    }
}

/// A size in bytes: a non-negative integer.
fn parse_size(text: &str) -> Result<u64, (TraceErrorKind, String)> {
    if let Ok(size) = text.parse::<u64>() {
        return Ok(size);
    }
    let negative = text
        .strip_prefix('-')
        .is_some_and(|rest| rest.parse::<f64>().is_ok_and(|v| v > 0.0));
    let kind = if negative {
        TraceErrorKind::NegativeSize
    } else {
        TraceErrorKind::BadNumber
    };
    Err((kind, text.to_string()))
}

/// Splits one line into CSV fields; an error says what is wrong with the
/// quoting.
pub fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut field = String::new();
    loop {
        // At the start of a field.
        if chars.peek().is_some_and(|&(_, c)| c == '"') {
            let (start, _) = chars.next().unwrap_or((0, '"'));
            loop {
                match chars.next() {
                    None => {
                        return Err(format!("quote opened at byte {} is not closed", start + 1));
                    }
                    Some((_, '"')) => {
                        if chars.peek().is_some_and(|&(_, c)| c == '"') {
                            chars.next();
                            field.push('"');
                        } else {
                            break;
                        }
                    }
                    Some((_, c)) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    return Ok(fields);
                }
                Some((_, ',')) => fields.push(std::mem::take(&mut field)),
                Some((at, c)) => {
                    return Err(format!("{c:?} after a closing quote at byte {}", at + 1));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(std::mem::take(&mut field));
                        return Ok(fields);
                    }
                    Some((_, ',')) => {
                        fields.push(std::mem::take(&mut field));
                        break;
                    }
                    Some((_, c)) => field.push(c),
                }
            }
        }
    }
}

/// Parses a timestamp: ISO-8601 date and time (`2017-06-20T00:00:01.250Z`,
/// with `T` or a space, an optional fraction, `Z`, an offset `±HH:MM` or
/// `±HHMM`, or nothing for UTC), or seconds since the Unix epoch
/// (`1497916801.25`). Milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.contains(['-', ':']) || text.starts_with('-') && !text[1..].contains(['-', ':']) {
        let seconds: f64 = text.parse().ok()?;
        if !seconds.is_finite() || seconds.abs() > 1e13 {
            return None;
        }
        return Some((seconds * 1000.0).round() as i64);
    }
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    // YYYY-MM-DD
    let year = digits(0, 4)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(11, 2)?;
    if bytes.get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(14, 2)?;
    if bytes.get(16) != Some(&b':') {
        return None;
    }
    let second = digits(17, 2)?;
    let mut at = 19;
    let mut millis = 0i64;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // Milliseconds from the first three digits, rounded by the fourth.
        let fraction = &text[start..at];
        let padded = format!("{fraction:0<4}");
        let first: i64 = padded.get(..3)?.parse().ok()?;
        let next: i64 = padded.get(3..4)?.parse().ok()?;
        millis = first + i64::from(next >= 5);
    }
    let offset_minutes = match &text[at..] {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let rest = &zone[1..];
            let (h, m) = match rest.len() {
                5 if rest.as_bytes().get(2) == Some(&b':') => (rest.get(..2)?, rest.get(3..)?),
                4 => (rest.get(..2)?, rest.get(2..)?),
                2 => (rest, "00"),
                _ => return None,
            };
            let h: i64 = h.parse().ok()?;
            let m: i64 = m.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian
/// calendar (negative before). Years are counted from March so the leap day
/// is the last day of a "year", and 400-year eras repeat exactly.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the epoch as the trace writes them:
/// `2017-06-20T00:00:01.250Z`.
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// A field as CSV: quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes the header row ([`COLUMNS`] in the published order).
pub fn write_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))
}

/// Writes one request as a row under [`write_header`]'s header (its `line`
/// is not written).
pub fn write_request(out: &mut impl Write, request: &Request) -> std::io::Result<()> {
    let duration = request
        .duration
        .map(|d| format!("{d:.3}"))
        .unwrap_or_default();
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{}",
        csv_field(&request.host),
        duration,
        csv_field(request.method.as_str()),
        csv_field(&request.remote_addr),
        csv_field(&request.uri),
        csv_field(&request.user_agent),
        request.status,
        request.size,
        csv_field(&request.id),
        format_timestamp(request.timestamp_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Request, TraceError>> {
        TraceReader::new(text.as_bytes()).expect("header").collect()
    }

    const HEADER: &str = "host,http.request.duration,http.request.method,http.request.remoteaddr,http.request.uri,http.request.useragent,http.response.status,http.response.written,id,timestamp\n";

    #[test]
    fn timestamps_parse_in_every_accepted_form() {
        // 2017-06-20T00:00:00Z is 1497916800 s after the epoch.
        assert_eq!(
            parse_timestamp("2017-06-20T00:00:00.000Z"),
            Some(1_497_916_800_000)
        );
        assert_eq!(
            parse_timestamp("2017-06-20T00:00:01.25Z"),
            Some(1_497_916_801_250)
        );
        assert_eq!(
            parse_timestamp("2017-06-20 00:00:01.2505"),
            Some(1_497_916_801_251)
        );
        assert_eq!(
            parse_timestamp("2017-06-20T02:00:00+02:00"),
            Some(1_497_916_800_000)
        );
        assert_eq!(
            parse_timestamp("2017-06-19T19:00:00-0500"),
            Some(1_497_916_800_000)
        );
        assert_eq!(parse_timestamp("1497916800"), Some(1_497_916_800_000));
        assert_eq!(parse_timestamp("1497916801.25"), Some(1_497_916_801_250));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        for bad in [
            "",
            "yesterday",
            "2017-13-01T00:00:00Z",
            "2017-02-29T00:00:00Z",
            "2017-06-20T24:00:00Z",
            "2017-06-20T00:00:00.Z",
            "2017-06-20T00:00:00Q",
            "2017-06-20",
            "NaN",
            "inf",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamps_round_trip_through_the_writer() {
        for ms in [
            0,
            1_497_916_800_000,
            1_497_916_801_250,
            951_782_400_000,
            4_102_444_799_999,
        ] {
            let text = format_timestamp(ms);
            assert_eq!(parse_timestamp(&text), Some(ms), "{text}");
        }
        assert_eq!(
            format_timestamp(1_497_916_801_250),
            "2017-06-20T00:00:01.250Z"
        );
    }

    #[test]
    fn fields_split_with_quotes() {
        assert_eq!(split_fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            split_fields("\"a,b\",\"say \"\"hi\"\"\",").unwrap(),
            ["a,b", "say \"hi\"", ""]
        );
        assert_eq!(split_fields("\"\"").unwrap(), [""]);
        assert!(split_fields("\"open,b").is_err());
        assert!(split_fields("\"a\"b,c").is_err());
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let text = "timestamp,extra,http.response.written,http.request.uri,http.request.method,host,id,http.response.status,http.request.duration,http.request.useragent,http.request.remoteaddr\n\
                    1497916800,x,42,/v2/a/blobs/1,get,h1,i1,200,,\"ua, with comma\",1.2.3.4:5\n";
        let rows = read(text);
        assert_eq!(rows.len(), 1);
        let row = rows[0].as_ref().expect("a good row");
        assert_eq!(row.line, 2);
        assert_eq!(
            (row.uri.as_str(), row.size, row.status),
            ("/v2/a/blobs/1", 42, 200)
        );
        assert_eq!(row.method, Method::Get);
        assert_eq!(row.duration, None);
        assert_eq!(row.user_agent, "ua, with comma");
        assert_eq!(row.timestamp_ms, 1_497_916_800_000);
    }

    #[test]
    fn a_header_without_a_column_is_refused() {
        let err = TraceReader::new("host,id\nx,y\n".as_bytes())
            .err()
            .expect("refused");
        assert_eq!(err.kind, TraceErrorKind::BadHeader);
        assert_eq!(err.line, 1);
        assert_eq!(err.column.as_deref(), Some("http.request.duration"));
        assert!(TraceReader::new("".as_bytes()).is_err());
    }

    #[test]
    fn malformed_rows_name_line_and_column_and_reading_goes_on() {
        let text = format!(
            "{HEADER}\
             h,0.1,GET,a,/k1,ua,200,10,i,2017-06-20T00:00:00.000Z\n\
             h,0.1,GET,a,/k2,ua,200,-5,i,2017-06-20T00:00:00.000Z\n\
             h,0.1,GET,a,/k3,ua,2x0,10,i,2017-06-20T00:00:00.000Z\n\
             \n\
             h,0.1,GET,a,/k4,ua,200,10,i,not-a-time\n\
             h,0.1,GET,a,/k5,ua,200\n\
             h,0.1,GET,a,,ua,200,10,i,1497916800\n\
             h,0.1,GET,a,/k6,ua,200,10,i,1497916800,extra\n\
             h,slow,GET,a,/k7,ua,200,10,i,1497916800\n\
             h,0.1,GET,a,/k8,\"ua,200,10,i,1497916800\n\
             h,0.1,PUT,a,/k9,ua,201,7,i,1497916800\n"
        );
        let rows = read(&text);
        let summary: Vec<(u64, Option<String>, Option<TraceErrorKind>)> = rows
            .iter()
            .map(|row| match row {
                Ok(r) => (r.line, None, None),
                Err(e) => (e.line, e.column.clone(), Some(e.kind)),
            })
            .collect();
        let col = |c: &str| Some(c.to_string());
        assert_eq!(
            summary,
            vec![
                (2, None, None),
                (
                    3,
                    col("http.response.written"),
                    Some(TraceErrorKind::NegativeSize)
                ),
                (
                    4,
                    col("http.response.status"),
                    Some(TraceErrorKind::BadNumber)
                ),
                (6, col("timestamp"), Some(TraceErrorKind::BadTimestamp)),
                (
                    7,
                    col("http.response.written"),
                    Some(TraceErrorKind::MissingColumn)
                ),
                (8, col("http.request.uri"), Some(TraceErrorKind::Empty)),
                (9, None, Some(TraceErrorKind::ExtraFields)),
                (
                    10,
                    col("http.request.duration"),
                    Some(TraceErrorKind::BadNumber)
                ),
                (11, None, Some(TraceErrorKind::BadQuote)),
                (12, None, None),
            ]
        );
        let message = rows[1]
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert_eq!(
            message,
            "line 3, column http.response.written: negative size: -5"
        );
    }

    #[test]
    fn written_rows_read_back() {
        let request = Request {
            line: 2,
            host: "dal09".into(),
            duration: Some(0.25),
            method: Method::Get,
            remote_addr: "10.0.0.1:1234".into(),
            uri: "/v2/x/blobs/sha256:ab".into(),
            user_agent: "docker/17.03 \"quoted\", comma".into(),
            status: 200,
            size: 123_456,
            id: "abc".into(),
            timestamp_ms: 1_497_916_801_250,
        };
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_request(&mut out, &request).unwrap();
        let rows: Vec<_> = TraceReader::new(out.as_slice()).unwrap().collect();
        assert_eq!(rows, vec![Ok(request)]);
    }

    #[test]
    fn invalid_utf8_is_an_error_of_its_line() {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"h,0.1,GET,a,/\xff,ua,200,1,i,1\n");
        bytes.extend_from_slice(b"h,0.1,GET,a,/ok,ua,200,1,i,1\n");
        let rows: Vec<_> = TraceReader::new(bytes.as_slice()).unwrap().collect();
        assert_eq!(
            rows[0].as_ref().err().map(|e| (e.line, e.kind)),
            Some((2, TraceErrorKind::NotUtf8))
        );
        assert!(rows[1].is_ok());
    }
}

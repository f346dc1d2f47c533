//! Trace rows: the IBM Docker registry CSV reader
//! (`experiments/src/trace/reader.rs`), which replays read from files
//! nobody on this project wrote.
//!
//! Input: the bytes of a trace file. Properties: reading yields at most one
//! result per line and ends; every error displays; every row read, written
//! by the trace writer and read again, is the same row (the duration to
//! the writer's millisecond precision, and the timestamp when its year has
//! the four digits the format writes); a timestamp that parses and is
//! written parses back to the same instant.

use infinicache_experiments::trace::reader::{
    self, Request, TraceReader, format_timestamp, parse_timestamp, split_fields,
};

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the instants
/// whose year the writer prints as the four digits the reader expects.
const WRITABLE_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// Runs one input; panics if a property does not hold.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_timestamp(&text);
    for line in text.lines() {
        let _ = split_fields(line);
        check_timestamp(line);
    }

    let Ok(rows) = TraceReader::new(data) else {
        return;
    };
    let lines = data.split(|&b| b == b'\n').count();
    let mut read = 0;
    for row in rows {
        read += 1;
        assert!(read <= lines, "more rows than lines");
        match row {
            Ok(request) => check_round_trip(&request),
            Err(err) => {
                let _ = err.to_string();
            }
        }
    }
}

/// A parsed timestamp, written, parses back to the same instant.
fn check_timestamp(text: &str) {
    let Some(ms) = parse_timestamp(text) else {
        return;
    };
    if WRITABLE_MS.contains(&ms) {
        let written = format_timestamp(ms);
        assert_eq!(parse_timestamp(&written), Some(ms), "{text:?} -> {written}");
    }
}

/// A row, written and read again, is the same row.
fn check_round_trip(request: &Request) {
    if !WRITABLE_MS.contains(&request.timestamp_ms) {
        return;
    }
    let mut file = Vec::new();
    reader::write_header(&mut file).unwrap_or_else(|err| panic!("writing to memory: {err}"));
    reader::write_request(&mut file, request)
        .unwrap_or_else(|err| panic!("writing to memory: {err}"));
    let mut rows = TraceReader::new(&file[..])
        .unwrap_or_else(|err| panic!("the written header does not read back: {err}"));
    let again = match rows.next() {
        Some(Ok(again)) => again,
        other => panic!(
            "{request:?} written as {:?} reads back as {other:?}",
            String::from_utf8_lossy(&file)
        ),
    };
    assert!(rows.next().is_none(), "one row written, more read");
    let millis = |d: Option<f64>| d.map(|d| format!("{d:.3}"));
    assert_eq!(millis(again.duration), millis(request.duration));
    let expected = Request {
        line: again.line,
        duration: again.duration,
        ..request.clone()
    };
    assert_eq!(again, expected, "a row changed through the writer");
}

//! The Prometheus text exposition format, version 0.0.4.
//!
//! Hand-written rather than taken from `prometheus-client`: that crate
//! encodes OpenMetrics (not 0.0.4), and its histograms take a lock on every
//! observation, which the request path must not. What remains, writing
//! `# HELP` / `# TYPE` once per family, then one line per sample with
//! escaped label values, is this small module.
//!
//! ```text
//! # HELP infinicache_requests_total Client requests completed.
//! # TYPE infinicache_requests_total counter
//! infinicache_requests_total{frontend="native",command="get"} 3
//! ```

use std::fmt::Write;

use super::histogram::{HistogramSnapshot, LATENCY_BUCKETS};

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type, as `# TYPE` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts are written exactly, measurements as floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Value::Int(value)
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(u64::try_from(value).unwrap_or(u64::MAX))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

/// Labels of one sample, in order.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// Builds one exposition.
#[derive(Debug, Default)]
pub struct TextEncoder {
    out: String,
}

impl TextEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Its samples follow
    /// through the returned [`Family`], so they cannot be split from it.
    pub fn family(&mut self, name: &'static str, help: &str, kind: MetricType) -> Family<'_> {
        debug_assert!(valid_name(name), "metric name {name:?}");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_into(&mut self.out, help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.name());
        self.out.push('\n');
        Family {
            out: &mut self.out,
            name,
        }
    }

    /// A family with a single unlabelled sample.
    pub fn single(
        &mut self,
        name: &'static str,
        help: &str,
        kind: MetricType,
        value: impl Into<Value>,
    ) {
        self.family(name, help, kind).sample(&[], value);
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// `name{labels} value`.
    pub fn sample(&mut self, labels: Labels<'_>, value: impl Into<Value>) -> &mut Self {
        write_sample(self.out, self.name, "", labels, None, value.into());
        self
    }

    /// A histogram's `_bucket` series (cumulative, with `le`), `_sum` and
    /// `_count`.
    pub fn histogram(&mut self, labels: Labels<'_>, snapshot: &HistogramSnapshot) -> &mut Self {
        for (bound, count) in LATENCY_BUCKETS.iter().zip(snapshot.cumulative) {
            let le = format_float(*bound);
            write_sample(
                self.out,
                self.name,
                "_bucket",
                labels,
                Some(&le),
                count.into(),
            );
        }
        write_sample(
            self.out,
            self.name,
            "_bucket",
            labels,
            Some("+Inf"),
            snapshot.count.into(),
        );
        write_sample(
            self.out,
            self.name,
            "_sum",
            labels,
            None,
            snapshot.sum_seconds.into(),
        );
        write_sample(
            self.out,
            self.name,
            "_count",
            labels,
            None,
            snapshot.count.into(),
        );
        self
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: Labels<'_>,
    le: Option<&str>,
    value: Value,
) {
    out.push_str(name);
    out.push_str(suffix);
    let le = le.map(|le| ("le", le));
    let mut all = labels.iter().copied().chain(le).peekable();
    if all.peek().is_some() {
        out.push('{');
        for (i, (label, value)) in all.enumerate() {
            debug_assert!(valid_name(label), "label name {label:?}");
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, value, true);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    match value {
        Value::Int(value) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "{value}");
        }
        Value::Float(value) => out.push_str(&format_float(value)),
    }
    out.push('\n');
}

/// Floats as Prometheus reads them: `+Inf`, `-Inf`, `NaN`, or the shortest
/// decimal that round-trips.
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// Escapes `\` and line feeds (and `"` in label values), as the format
/// requires.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::histogram::Histogram;
    use super::*;

    #[test]
    fn families_have_help_type_and_samples() {
        let mut encoder = TextEncoder::new();
        encoder
            .family(
                "demo_requests_total",
                "Requests.\nAll of them, with a \\ backslash.",
                MetricType::Counter,
            )
            .sample(&[("frontend", "native"), ("command", "get")], 3u64)
            .sample(&[("frontend", "resp"), ("command", "say \"hi\"\n")], 0u64);
        encoder.single("demo_cost_usd", "Cost.", MetricType::Gauge, 0.25);
        encoder.single("demo_nothing", "NaN.", MetricType::Gauge, f64::NAN);
        assert_eq!(
            encoder.finish(),
            "# HELP demo_requests_total Requests.\\nAll of them, with a \\\\ backslash.\n\
             # TYPE demo_requests_total counter\n\
             demo_requests_total{frontend=\"native\",command=\"get\"} 3\n\
             demo_requests_total{frontend=\"resp\",command=\"say \\\"hi\\\"\\n\"} 0\n\
             # HELP demo_cost_usd Cost.\n\
             # TYPE demo_cost_usd gauge\n\
             demo_cost_usd 0.25\n\
             # HELP demo_nothing NaN.\n\
             # TYPE demo_nothing gauge\n\
             demo_nothing NaN\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(200));
        histogram.observe(Duration::from_millis(20));
        histogram.observe(Duration::from_secs(20));
        let mut encoder = TextEncoder::new();
        encoder
            .family("demo_seconds", "Latency.", MetricType::Histogram)
            .histogram(&[("command", "get")], &histogram.snapshot());
        let text = encoder.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP demo_seconds Latency.");
        assert_eq!(lines[1], "# TYPE demo_seconds histogram");
        assert_eq!(
            lines[2],
            "demo_seconds_bucket{command=\"get\",le=\"0.0001\"} 0"
        );
        assert_eq!(
            lines[3],
            "demo_seconds_bucket{command=\"get\",le=\"0.00025\"} 1"
        );
        assert!(lines.contains(&"demo_seconds_bucket{command=\"get\",le=\"0.025\"} 2"));
        assert!(lines.contains(&"demo_seconds_bucket{command=\"get\",le=\"1\"} 2"));
        assert_eq!(
            lines[17],
            "demo_seconds_bucket{command=\"get\",le=\"10\"} 2"
        );
        assert_eq!(
            lines[18],
            "demo_seconds_bucket{command=\"get\",le=\"+Inf\"} 3"
        );
        assert_eq!(lines[19], "demo_seconds_sum{command=\"get\"} 20.0202");
        assert_eq!(lines[20], "demo_seconds_count{command=\"get\"} 3");
        assert_eq!(lines.len(), 21);
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("infinicache_requests_total"));
        assert!(valid_name("a:b_c9"));
        assert!(!valid_name("9lives"));
        assert!(!valid_name("with-dash"));
        assert!(!valid_name(""));
    }
}

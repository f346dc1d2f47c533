//! Reading the Prometheus text format (0.0.4) the proxy serves at
//! `/metrics`: samples by name and labels, and histogram quantiles.
//!
//! Only what the dashboard needs: comments (`# HELP`, `# TYPE`) are skipped,
//! timestamps ignored, and a malformed line is an error naming it (a proxy
//! that serves garbage is worth saying so, not half-reading).

use thiserror::Error;

/// A line of the exposition that is not a sample.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line} of the metrics: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

/// A sample's labels, in order: `(name, value)`.
pub type Labels = Vec<(String, String)>;

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether every `(label, value)` of `wanted` is on this sample.
    fn has(&self, wanted: &[(&str, &str)]) -> bool {
        wanted
            .iter()
            .all(|(name, value)| self.label(name) == Some(value))
    }
}

/// Every sample of one exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    samples: Vec<Sample>,
}

impl Samples {
    pub fn parse(text: &str) -> Result<Samples, ParseError> {
        let mut samples = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line).map_err(|reason| ParseError {
                line: index + 1,
                reason,
            })?;
            samples.push(sample);
        }
        Ok(Samples { samples })
    }

    /// The samples named `name` carrying every label of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |sample| sample.name == name && sample.has(labels))
    }

    /// The first sample named `name` carrying `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .next()
            .map(|sample| sample.value)
    }

    /// The sum of the samples named `name` carrying `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    /// The histogram `name` (its `_bucket` series) for exactly these labels.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<Histogram> {
        let bucket_name = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = self
            .matching(&bucket_name, labels)
            .filter_map(|sample| {
                let le = parse_value(sample.label("le")?).ok()?;
                Some((le, sample.value))
            })
            .collect();
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Histogram { buckets })
    }
}

/// A histogram's cumulative buckets: `(upper bound, observations at or
/// below it)`, ascending, the last usually `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Every observation.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, count)| *count)
    }

    /// The observations since `earlier` (bucket by bucket), for the latency
    /// of the last interval rather than since the proxy started. A proxy
    /// that restarted in between has fewer: then this histogram is returned
    /// as it is.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let restarted =
            self.count() < earlier.count() || self.buckets.len() != earlier.buckets.len();
        if restarted {
            return self.clone();
        }
        let buckets = self
            .buckets
            .iter()
            .zip(&earlier.buckets)
            .map(|((le, now), (_, before))| (*le, now - before))
            .collect();
        Histogram { buckets }
    }

    /// The `q` quantile (0..=1), interpolated within its bucket as
    /// Prometheus's `histogram_quantile` does; `None` without observations.
    /// One falling in the `+Inf` bucket is reported as the highest finite
    /// bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank && cumulative > lower_count {
                if bound.is_infinite() {
                    return Some(lower_bound);
                }
                let within = (rank - lower_count) / (cumulative - lower_count);
                return Some(lower_bound + (bound - lower_bound) * within);
            }
            if bound.is_finite() {
                lower_bound = bound;
            }
            lower_count = cumulative;
        }
        Some(lower_bound)
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let value = rest
        .split_whitespace()
        .next()
        .ok_or("a sample needs a value")?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: parse_value(value)?,
    })
}

/// `name="value",...}`: returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = text.split_once('=').ok_or("a label without a value")?;
        let rest = rest
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        labels.push((name.trim().to_string(), value));
        text = rest[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse()
            .map_err(|_| format!("{text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP infinicache_requests_total Client requests.
# TYPE infinicache_requests_total counter
infinicache_requests_total{frontend=\"native\",command=\"get\"} 4
infinicache_requests_total{frontend=\"resp\",command=\"get\"} 6
infinicache_odd{path=\"a \\\"b\\\"\\\\c\\n\"} 1.5e3 1700000000000
infinicache_objects 12
lat_bucket{command=\"get\",le=\"0.001\"} 0
lat_bucket{command=\"get\",le=\"0.01\"} 8
lat_bucket{command=\"get\",le=\"0.1\"} 10
lat_bucket{command=\"get\",le=\"+Inf\"} 10
lat_count{command=\"get\"} 10
";

    #[test]
    fn samples_are_found_by_name_and_labels() {
        let samples = Samples::parse(TEXT).expect("parses");
        assert_eq!(samples.get("infinicache_objects", &[]), Some(12.0));
        assert_eq!(
            samples.get("infinicache_requests_total", &[("frontend", "resp")]),
            Some(6.0)
        );
        assert_eq!(samples.sum("infinicache_requests_total", &[]), 10.0);
        assert_eq!(samples.sum("nothing", &[]), 0.0);
        assert_eq!(
            samples.get("infinicache_odd", &[("path", "a \"b\"\\c\n")]),
            Some(1500.0)
        );
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let samples = Samples::parse(TEXT).expect("parses");
        let histogram = samples
            .histogram("lat", &[("command", "get")])
            .expect("histogram");
        assert_eq!(histogram.count(), 10.0);
        // The 5th of 10 lies 5/8 into (0.001, 0.01].
        let p50 = histogram.quantile(0.5).expect("p50");
        assert!((p50 - (0.001 + 0.009 * 5.0 / 8.0)).abs() < 1e-12, "{p50}");
        // The 9.9th lies 0.95 into (0.01, 0.1].
        let p99 = histogram.quantile(0.99).expect("p99");
        assert!((p99 - (0.01 + 0.09 * 0.95)).abs() < 1e-12, "{p99}");
        let none = histogram.since(&histogram);
        assert_eq!(none.quantile(0.5), None);
        let overflow = Histogram {
            buckets: vec![(0.1, 0.0), (f64::INFINITY, 3.0)],
        };
        assert_eq!(overflow.quantile(0.5), Some(0.1));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "metric",
            "metric{a=\"b\"",
            "metric{a=b} 1",
            "metric x",
            "{a=\"b\"} 1",
        ] {
            let err = Samples::parse(bad).expect_err(bad);
            assert_eq!(err.line, 1, "{bad}");
        }
    }
}

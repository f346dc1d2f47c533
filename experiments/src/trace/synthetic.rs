//! Synthetic traces with the published properties of the IBM Docker
//! registry workload, in the trace's own format.
//!
//! The InfiniCache paper (§2, on the Dallas and London registry traces)
//! reports: object sizes spanning several orders of magnitude (from about
//! a kilobyte to about a gigabyte); about 20% of the objects larger than
//! 10 MB, holding about 95% of the bytes; more than 30% of the large
//! objects read at least 10 times; and 35-45% of the objects reused within
//! an hour. [`generate`] draws a trace with those properties from a seed
//! (same seed, same trace), and [`Properties::measure`] measures them on any
//! trace, synthetic or real, so the generator is checked by what it
//! produces.
//!
//! How each object is drawn:
//!
//! * **size**: large (probability `large_fraction`) or small. A small
//!   object's size is log-uniform on 1 KB..10 MB; a large object's is a
//!   mixture: log-uniform on 10..100 MB (90%) or 100 MB..1 GB (10%).
//!   With 20% large objects the large ones hold about 95% of the bytes.
//! * **reads**: one read, with probability `once_small` / `once_large`;
//!   otherwise `1 + floor(m * U^(-1/alpha))` reads, a Pareto (Zipf-like,
//!   heavy-tailed) popularity with scale `m` (1.5 small, 6 large) and shape
//!   `alpha` (1.3), capped at `max_reads`. A large object that is read again
//!   is read 10 times or more with probability (6/9)^1.3 = 0.59.
//! * **time**: an object read once is read at a uniform time. An object
//!   read again lives in a window of the trace (log-uniform between two
//!   hours and the whole trace, placed uniformly): its first read opens the
//!   window, the second comes within the hour that follows with probability
//!   `reuse_within_hour` and later in the window otherwise, the others
//!   uniformly between the second read and the window's end. The request
//!   rate is therefore about even over the trace.
//!
//! Every read is a `GET` with status 200; the trace is sorted by time.

use std::collections::HashMap;
use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::reader::{Method, Request, write_header, write_request};

/// Decimal units, as the paper's "10 MB" and "1 GB".
pub const KB: u64 = 1_000;
pub const MB: u64 = 1_000_000;
pub const GB: u64 = 1_000_000_000;

/// Objects larger than this are "large" (the paper's 10 MB).
pub const LARGE: u64 = 10 * MB;

/// 2017-06-20T00:00:00Z, when the synthetic traces start (the published
/// traces were collected in June 2017).
pub const START_MS: i64 = 1_497_916_800_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    /// Length of the trace (simulated hours).
    pub hours: f64,
    /// Distinct objects.
    pub objects: usize,
    pub seed: u64,
    /// Share of objects larger than 10 MB.
    pub large_fraction: f64,
    /// Probability that a small / large object is read only once.
    pub once_small: f64,
    pub once_large: f64,
    /// Pareto shape of the number of reads.
    pub alpha: f64,
    /// Cap on the reads of one object.
    pub max_reads: u64,
    /// Probability that an object read again is read again within an hour.
    pub reuse_within_hour: f64,
}

impl Default for SyntheticSpec {
    /// A 50-hour trace of 4,000 objects (about 26,000 GETs).
    fn default() -> Self {
        SyntheticSpec {
            hours: 50.0,
            objects: 4_000,
            seed: 1,
            large_fraction: 0.2,
            once_small: 0.5,
            once_large: 0.38,
            alpha: 1.3,
            max_reads: 1_000,
            reuse_within_hour: 0.75,
        }
    }
}

impl SyntheticSpec {
    /// Checks the settings; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let probability = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, got {p}"))
            }
        };
        if !(self.hours.is_finite() && self.hours > 0.0) {
            return Err(format!("hours must be positive, got {}", self.hours));
        }
        if self.objects == 0 {
            return Err("objects must be positive".into());
        }
        probability("large fraction", self.large_fraction)?;
        probability("once (small)", self.once_small)?;
        probability("once (large)", self.once_large)?;
        probability("reuse within an hour", self.reuse_within_hour)?;
        if !(self.alpha.is_finite() && self.alpha > 0.0) || self.max_reads < 2 {
            return Err("alpha must be positive and max reads at least 2".into());
        }
        Ok(())
    }
}

/// Log-uniform on `lo..hi`.
fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// One object's size (bytes).
fn draw_size(rng: &mut StdRng, large: bool) -> u64 {
    let size = if !large {
        log_uniform(rng, KB as f64, LARGE as f64)
    } else if rng.random::<f64>() < 0.9 {
        log_uniform(rng, LARGE as f64, 100.0 * MB as f64)
    } else {
        log_uniform(rng, 100.0 * MB as f64, GB as f64)
    };
    // Keep the classes apart: a large object is strictly over 10 MB.
    let size = size.round() as u64;
    if large {
        size.max(LARGE + 1)
    } else {
        size.min(LARGE)
    }
}

/// How often one object is read.
fn draw_reads(rng: &mut StdRng, spec: &SyntheticSpec, large: bool) -> u64 {
    let once = if large {
        spec.once_large
    } else {
        spec.once_small
    };
    if rng.random::<f64>() < once {
        return 1;
    }
    let scale = if large { 6.0 } else { 1.5 };
    // U in (0, 1]: U = 0 would be an infinite draw.
    let u = 1.0 - rng.random::<f64>();
    let extra = (scale * u.powf(-1.0 / spec.alpha)).floor();
    let extra = if extra.is_finite() {
        extra as u64
    } else {
        spec.max_reads
    };
    (1 + extra.max(1)).min(spec.max_reads)
}

/// A fake digest for an object's URI: 64 hex digits from the rng.
fn digest(rng: &mut StdRng) -> String {
    (0..4)
        .map(|_| format!("{:016x}", rng.random::<u64>()))
        .collect()
}

/// Generates the trace: GET requests sorted by time.
pub fn generate(spec: &SyntheticSpec) -> Result<Vec<Request>, String> {
    spec.validate()?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let span_ms = (spec.hours * 3_600_000.0).round().max(1.0) as i64;
    let hour_ms = 3_600_000i64.min(span_ms);
    let repositories = [
        "library/ubuntu",
        "library/alpine",
        "tenant-a/web",
        "tenant-b/ml",
        "tenant-c/ci",
    ];
    let hosts = ["dal09-registry-1", "dal09-registry-2", "dal09-registry-3"];
    let mut requests = Vec::new();
    for _ in 0..spec.objects {
        let large = rng.random::<f64>() < spec.large_fraction;
        let size = draw_size(&mut rng, large);
        let reads = draw_reads(&mut rng, spec, large);
        let repository = repositories[rng.random_range(0..repositories.len())];
        let uri = format!("/v2/{repository}/blobs/sha256:{}", digest(&mut rng));
        let mut times = Vec::with_capacity(reads as usize);
        if reads == 1 {
            times.push(rng.random_range(0..span_ms));
        } else {
            // The object is read within a window of its own, log-uniform
            // between two hours and the whole trace, placed uniformly: so
            // reads spread evenly over the trace instead of piling up at
            // its end.
            let shortest = (2 * hour_ms).min(span_ms);
            let window = (log_uniform(&mut rng, shortest as f64, span_ms as f64).round() as i64)
                .clamp(shortest.max(2), span_ms.max(2));
            let first = rng.random_range(0..=(span_ms - window).max(0));
            let end = (first + window).min(span_ms);
            let second = if rng.random::<f64>() < spec.reuse_within_hour || window <= hour_ms + 1 {
                first + rng.random_range(1..=hour_ms.min(window - 1).max(1))
            } else {
                first + rng.random_range(hour_ms + 1..window)
            };
            let second = second.min(end - 1);
            times.push(first);
            times.push(second);
            for _ in 2..reads {
                times.push(rng.random_range(second..end.max(second + 1)));
            }
        }
        for t in times {
            // Throughput of a registry download: 20..200 MB/s.
            let throughput = log_uniform(&mut rng, 20.0 * MB as f64, 200.0 * MB as f64);
            requests.push(Request {
                line: 0,
                host: hosts[rng.random_range(0..hosts.len())].to_string(),
                duration: Some(0.002 + size as f64 / throughput),
                method: Method::Get,
                remote_addr: format!(
                    "10.{}.{}.{}:{}",
                    rng.random_range(0..=255u8),
                    rng.random_range(0..=255u8),
                    rng.random_range(1..=254u8),
                    rng.random_range(1024..=65535u16)
                ),
                uri: uri.clone(),
                user_agent: "docker/17.03.1-ce go/go1.7.5 kernel/4.4.0 os/linux arch/amd64".into(),
                status: 200,
                size,
                id: format!("{:016x}", rng.random::<u64>()),
                timestamp_ms: START_MS + t,
            });
        }
    }
    // Stable: equal times keep the order they were drawn in.
    requests.sort_by_key(|r| r.timestamp_ms);
    for (i, request) in requests.iter_mut().enumerate() {
        request.line = i as u64 + 2;
    }
    Ok(requests)
}

/// Writes `requests` as a trace (header and rows).
pub fn write_trace(out: &mut impl Write, requests: &[Request]) -> std::io::Result<()> {
    write_header(out)?;
    for request in requests {
        write_request(out, request)?;
    }
    Ok(())
}

/// The published properties, measured on a trace's GETs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub requests: u64,
    /// Distinct objects read.
    pub objects: u64,
    pub min_size: u64,
    pub max_size: u64,
    /// Bytes of all distinct objects (each at its largest size seen): the
    /// working set.
    pub working_set_bytes: u64,
    /// Bytes of all GETs.
    pub bytes_read: u64,
    /// Share of objects over 10 MB.
    pub large_fraction: f64,
    /// Share of the working set's bytes in objects over 10 MB.
    pub large_bytes_fraction: f64,
    /// Share of large objects read 10 times or more.
    pub large_read_10_fraction: f64,
    /// Share of objects whose second read comes within an hour of the
    /// first.
    pub reused_within_hour_fraction: f64,
    /// From the first to the last request (ms).
    pub span_ms: i64,
}

impl Properties {
    /// Measures a trace's GETs (in any order).
    pub fn measure<'a>(requests: impl IntoIterator<Item = &'a Request>) -> Properties {
        struct Seen {
            size: u64,
            reads: u64,
            first: i64,
            second: Option<i64>,
        }
        let mut objects: HashMap<&str, Seen> = HashMap::new();
        let mut properties = Properties::default();
        let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
        for request in requests {
            if request.method != Method::Get {
                continue;
            }
            properties.requests += 1;
            properties.bytes_read += request.size;
            earliest = earliest.min(request.timestamp_ms);
            latest = latest.max(request.timestamp_ms);
            let seen = objects.entry(request.uri.as_str()).or_insert(Seen {
                size: request.size,
                reads: 0,
                first: request.timestamp_ms,
                second: None,
            });
            seen.size = seen.size.max(request.size);
            seen.reads += 1;
            // Keep the earliest two read times, whatever the order.
            let t = request.timestamp_ms;
            if seen.reads > 1 {
                if t < seen.first {
                    seen.second = Some(seen.first);
                    seen.first = t;
                } else if seen.second.is_none_or(|s| t < s) {
                    seen.second = Some(t);
                }
            }
        }
        properties.objects = objects.len() as u64;
        if objects.is_empty() {
            return properties;
        }
        properties.span_ms = latest - earliest;
        properties.min_size = objects.values().map(|s| s.size).min().unwrap_or(0);
        properties.max_size = objects.values().map(|s| s.size).max().unwrap_or(0);
        properties.working_set_bytes = objects.values().map(|s| s.size).sum();
        let large: Vec<&Seen> = objects.values().filter(|s| s.size > LARGE).collect();
        let n = objects.len() as f64;
        properties.large_fraction = large.len() as f64 / n;
        let large_bytes: u64 = large.iter().map(|s| s.size).sum();
        properties.large_bytes_fraction = if properties.working_set_bytes == 0 {
            0.0
        } else {
            large_bytes as f64 / properties.working_set_bytes as f64
        };
        properties.large_read_10_fraction = if large.is_empty() {
            0.0
        } else {
            large.iter().filter(|s| s.reads >= 10).count() as f64 / large.len() as f64
        };
        properties.reused_within_hour_fraction = objects
            .values()
            .filter(|s| s.second.is_some_and(|second| second - s.first <= 3_600_000))
            .count() as f64
            / n;
        properties
    }

    /// The properties as text, next to the published ones.
    pub fn describe(&self) -> String {
        format!(
            "{} GETs of {} objects over {:.1} h; sizes {} .. {} bytes; working set {:.2} GB; \
             {:.1}% of objects > 10 MB (published: ~20%) holding {:.1}% of the bytes (~95%); \
             {:.1}% of large objects read >= 10 times (> 30%); {:.1}% of objects reused within an hour (35-45%)",
            self.requests,
            self.objects,
            self.span_ms as f64 / 3_600_000.0,
            self.min_size,
            self.max_size,
            self.working_set_bytes as f64 / GB as f64,
            100.0 * self.large_fraction,
            100.0 * self.large_bytes_fraction,
            100.0 * self.large_read_10_fraction,
            100.0 * self.reused_within_hour_fraction,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::reader::TraceReader;

    #[test]
    fn the_default_trace_has_the_published_properties() {
        let requests = generate(&SyntheticSpec::default()).expect("valid spec");
        let p = Properties::measure(&requests);
        let check = |name: &str, value: f64, lo: f64, hi: f64| {
            assert!(
                (lo..=hi).contains(&value),
                "{name} = {value}, expected {lo}..{hi}: {}",
                p.describe()
            );
        };
        assert_eq!(p.objects, 4_000);
        check("large objects", p.large_fraction, 0.17, 0.23);
        check("bytes in large objects", p.large_bytes_fraction, 0.90, 0.98);
        check(
            "large objects read 10+ times",
            p.large_read_10_fraction,
            0.30,
            0.45,
        );
        check(
            "reused within an hour",
            p.reused_within_hour_fraction,
            0.35,
            0.45,
        );
        // Several orders of magnitude: about 1 KB to about 1 GB.
        assert!(p.min_size < 5 * KB, "{}", p.describe());
        assert!(
            p.max_size > 500 * MB && p.max_size <= GB,
            "{}",
            p.describe()
        );
        assert!(
            p.span_ms > 49 * 3_600_000 && p.span_ms < 50 * 3_600_000,
            "{}",
            p.describe()
        );
        assert!(
            requests
                .windows(2)
                .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_trace() {
        let spec = SyntheticSpec {
            hours: 2.0,
            objects: 200,
            seed: 7,
            ..SyntheticSpec::default()
        };
        let a = generate(&spec).unwrap();
        assert_eq!(a, generate(&spec).unwrap());
        let b = generate(&SyntheticSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_written_trace_reads_back_the_same() {
        let spec = SyntheticSpec {
            hours: 0.1,
            objects: 30,
            ..SyntheticSpec::default()
        };
        let requests = generate(&spec).unwrap();
        let mut out = Vec::new();
        write_trace(&mut out, &requests).unwrap();
        let read: Vec<Request> = TraceReader::new(out.as_slice())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), requests.len());
        for (a, b) in read.iter().zip(&requests) {
            assert_eq!(
                (a.line, &a.uri, a.size, a.timestamp_ms),
                (b.line, &b.uri, b.size, b.timestamp_ms)
            );
        }
        // Short traces still fit: every read inside the span.
        let p = Properties::measure(&read);
        assert!(p.span_ms <= 360_000);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(
            generate(&SyntheticSpec {
                hours: 0.0,
                ..SyntheticSpec::default()
            })
            .is_err()
        );
        assert!(
            generate(&SyntheticSpec {
                objects: 0,
                ..SyntheticSpec::default()
            })
            .is_err()
        );
        assert!(
            generate(&SyntheticSpec {
                large_fraction: 1.5,
                ..SyntheticSpec::default()
            })
            .is_err()
        );
    }
}

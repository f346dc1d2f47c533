//! What a benchmark run measures: targets, operations, object sizes,
//! concurrency levels, key space and how long each cell runs; and the
//! parsers for the command line's lists (`1KiB,1MiB`, `get,put`, ...).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Which server a cell measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// The cache's own protocol through `infinicache::Client` (erasure
    /// coding in the client, chunks in parallel through the proxy).
    Native,
    /// The same client over TLS, against a second proxy whose client
    /// listener has a certificate (`--tls-cert`/`--tls-key`). Not in
    /// [`TargetKind::ALL`], the default: ask for it (`--targets
    /// native,native-tls`).
    NativeTls,
    /// The proxy's Redis-protocol frontend, through the `redis` crate.
    Resp,
    /// A plain `redis-server`, through the same `redis` client.
    Redis,
}

impl TargetKind {
    /// The default targets of a run.
    pub const ALL: [TargetKind; 3] = [TargetKind::Native, TargetKind::Resp, TargetKind::Redis];

    /// Every target, the opt-in ones ([`TargetKind::NativeTls`]) included.
    pub const EVERY: [TargetKind; 4] = [
        TargetKind::Native,
        TargetKind::NativeTls,
        TargetKind::Resp,
        TargetKind::Redis,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Native => "native",
            TargetKind::NativeTls => "native-tls",
            TargetKind::Resp => "resp",
            TargetKind::Redis => "redis",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TargetKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" | "infinicache" => Ok(TargetKind::Native),
            "native-tls" | "native_tls" | "nativetls" | "tls" => Ok(TargetKind::NativeTls),
            "resp" => Ok(TargetKind::Resp),
            "redis" | "redis-server" => Ok(TargetKind::Redis),
            other => Err(format!(
                "unknown target {other:?} (expected native, native-tls, resp or redis)"
            )),
        }
    }
}

/// The operation a cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Get,
    Put,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
        }
    }

    /// Upper-case, as in tables (`GET`, `PUT`).
    pub fn label(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Put => "PUT",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "get" => Ok(Op::Get),
            "put" | "set" => Ok(Op::Put),
            other => Err(format!("unknown operation {other:?} (expected get or put)")),
        }
    }
}

/// Parses a size: a number of bytes with an optional unit, binary (`KiB`,
/// `MiB`, `GiB`, also `K`, `M`, `G`) or decimal (`KB`, `MB`, `GB`), case
/// insensitive: `1KiB`, `64k`, `10MiB`, `1.5MB`, `4096`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("bad size {text:?}: expected e.g. 1KiB, 10MiB or 4096"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => return Err(format!("bad size {text:?}: unknown unit {other:?}")),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > (1u64 << 40) as f64 {
        return Err(format!("bad size {text:?}: out of range"));
    }
    Ok(bytes.round() as usize)
}

/// A short label for a size: `1KiB`, `64KiB`, `10MiB`, `1000B`; sizes
/// that are not whole binary units keep their byte count.
pub fn size_label(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, unit) in UNITS {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Parses a comma-separated list with `parse`; empty items are errors.
pub fn parse_list<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items: Vec<T> = text
        .split(',')
        .map(|item| {
            if item.trim().is_empty() {
                Err(format!("empty item in list {text:?}"))
            } else {
                parse(item)
            }
        })
        .collect::<Result<_, _>>()?;
    if items.is_empty() {
        return Err("empty list".into());
    }
    Ok(items)
}

/// How long each measured cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellLength {
    /// Operations keep being started until this much time has passed (the
    /// ones in flight then complete and are counted).
    Duration(Duration),
    /// Exactly this many operations, spread over the workers.
    Ops(u64),
}

/// How the `redis` client connects to the RESP frontend and redis-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// One connection per worker, as `redis-benchmark -c N` opens N.
    PerWorker,
    /// One multiplexed (pipelined) connection shared by all workers.
    Shared,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<TargetKind>,
    pub ops: Vec<Op>,
    /// Object sizes in bytes.
    pub sizes: Vec<usize>,
    pub concurrency: Vec<usize>,
    /// Most keys per (target, size); see [`Settings::keys_for`].
    pub keys: usize,
    /// Memory budget of one (target, size) key space, in bytes: a size
    /// gets `min(keys, keyspace_bytes / size)` keys, but at least the
    /// highest concurrency (each worker writes keys of its own).
    pub keyspace_bytes: usize,
    /// Measured part of a cell.
    pub length: CellLength,
    /// Unmeasured warm-up before each cell (with [`CellLength::Ops`], a
    /// tenth of the operations is used instead).
    pub warmup: Duration,
    /// Erasure coding of the native client (and of the proxy it starts,
    /// so that RESP values are coded alike).
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Cache nodes of the proxy the tool starts (0: `max(12, k + r)`).
    pub pool_size: usize,
    /// Extra flags for the proxies the tool starts (the native-tls one
    /// too; after its own, so they override them).
    pub proxy_args: Vec<String>,
    /// Addresses of already running servers; `None`: start one.
    pub native_addr: Option<String>,
    /// A TLS client listener of a running proxy (for `native-tls`).
    pub native_tls_addr: Option<String>,
    /// The CA certificates (PEM) `native-tls` trusts for `native_tls_addr`;
    /// `None`: the system's trust store. Ignored when the tool starts the
    /// TLS proxy itself (it trusts the test CA it made).
    pub tls_ca: Option<PathBuf>,
    pub resp_addr: Option<String>,
    pub redis_addr: Option<String>,
    /// `redis-server` executable for the server the tool starts.
    pub redis_server: PathBuf,
    pub connections: Connections,
    /// Time limit of one operation (an operation over it is an error).
    pub op_timeout: Duration,
    /// Output directory (CSV, SVG charts).
    pub out: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            targets: TargetKind::ALL.to_vec(),
            ops: vec![Op::Get, Op::Put],
            sizes: vec![1 << 10, 1 << 20, 10 << 20, 100 << 20],
            concurrency: vec![1, 16],
            keys: 1000,
            keyspace_bytes: 1 << 30,
            length: CellLength::Duration(Duration::from_secs(10)),
            warmup: Duration::from_secs(2),
            data_shards: 10,
            parity_shards: 2,
            pool_size: 0,
            proxy_args: Vec::new(),
            native_addr: None,
            native_tls_addr: None,
            tls_ca: None,
            resp_addr: None,
            redis_addr: None,
            redis_server: PathBuf::from("redis-server"),
            connections: Connections::PerWorker,
            op_timeout: Duration::from_secs(120),
            out: PathBuf::from("target/experiments/bench"),
        }
    }
}

impl Settings {
    /// The highest concurrency of the run.
    pub fn max_concurrency(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1).max(1)
    }

    /// Keys of the key space of objects of `size` bytes: the memory budget
    /// divided by the size, capped by `keys`, and never below the highest
    /// concurrency. With the defaults (1000 keys, 1 GiB): 1000 keys of
    /// 1 KiB or 1 MiB, 102 of 10 MiB, 16 of 100 MiB (1.6 GiB at
    /// concurrency 16).
    pub fn keys_for(&self, size: usize) -> usize {
        let by_budget = self.keyspace_bytes / size.max(1);
        by_budget.min(self.keys).max(self.max_concurrency()).max(1)
    }

    /// Checks the combination makes sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() || self.ops.is_empty() || self.sizes.is_empty() {
            return Err("nothing to measure: targets, ops and sizes must not be empty".into());
        }
        if self.concurrency.is_empty() || self.concurrency.contains(&0) {
            return Err("concurrency levels must be at least 1".into());
        }
        if self.data_shards == 0 {
            return Err("data shards must be at least 1".into());
        }
        match self.length {
            CellLength::Duration(d) if d.is_zero() => {
                return Err("the cell duration must be positive".into());
            }
            CellLength::Ops(0) => return Err("ops per cell must be at least 1".into()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        let cases = [
            ("1KiB", 1024),
            ("64k", 65536),
            ("1MiB", 1 << 20),
            ("10mib", 10 << 20),
            ("100MiB", 100 << 20),
            ("1.5MB", 1_500_000),
            ("4096", 4096),
            ("0", 0),
            ("2GiB", 2 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "KiB", "1XB", "-1", "1e999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(size_label(1024), "1KiB");
        assert_eq!(size_label(100 << 20), "100MiB");
        assert_eq!(size_label(1000), "1000B");
        assert_eq!(size_label(1536), "1536B");
        assert_eq!(size_label(0), "0B");
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("native, resp,redis", str::parse::<TargetKind>),
            Ok(TargetKind::ALL.to_vec())
        );
        assert_eq!(
            parse_list("get,put,set", str::parse::<Op>),
            Ok(vec![Op::Get, Op::Put, Op::Put])
        );
        assert!(parse_list("get,,put", str::parse::<Op>).is_err());
        assert!(parse_list("memcached", str::parse::<TargetKind>).is_err());
    }

    #[test]
    fn native_tls_is_selectable_but_not_a_default() {
        assert_eq!(
            parse_list("native,native-tls", str::parse::<TargetKind>),
            Ok(vec![TargetKind::Native, TargetKind::NativeTls])
        );
        for alias in ["native-tls", "NATIVE-TLS", " native_tls ", "tls"] {
            assert_eq!(alias.parse(), Ok(TargetKind::NativeTls), "{alias}");
        }
        assert!("native-ssl".parse::<TargetKind>().is_err());
        assert_eq!(TargetKind::NativeTls.name(), "native-tls");
        assert_eq!(TargetKind::NativeTls.to_string(), "native-tls");
        // Names round-trip through the parser.
        for kind in TargetKind::EVERY {
            assert_eq!(kind.name().parse(), Ok(kind));
        }
        assert!(!TargetKind::ALL.contains(&TargetKind::NativeTls));
        assert!(TargetKind::EVERY.contains(&TargetKind::NativeTls));
        assert_eq!(Settings::default().targets, TargetKind::ALL.to_vec());
    }

    #[test]
    fn key_space_fits_the_budget() {
        let settings = Settings::default();
        assert_eq!(settings.keys_for(1024), 1000);
        assert_eq!(settings.keys_for(1 << 20), 1000);
        assert_eq!(settings.keys_for(10 << 20), 102);
        // Never fewer keys than workers.
        assert_eq!(settings.keys_for(100 << 20), 16);
        assert!(settings.validate().is_ok());
        let none = Settings {
            concurrency: vec![0],
            ..Settings::default()
        };
        assert!(none.validate().is_err());
    }
}

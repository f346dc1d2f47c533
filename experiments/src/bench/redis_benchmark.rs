//! `redis-benchmark` against the RESP frontend and against redis-server:
//! Redis's own C benchmark (`-t set,get -d <size> -c <conc> -n <N> --csv`)
//! on both servers, its CSV parsed and shown side by side.
//!
//! Without `-r`, every request uses the one key `key:__rand_int__` (SET
//! runs first, so GET always finds it); it is deleted from both servers
//! after each size so large values do not pile up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::options::size_label;
use super::report::fmt_duration;

macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// One test (SET or GET) of one redis-benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct RbRow {
    /// `resp` or `redis`.
    pub server: String,
    /// `SET` or `GET`.
    pub test: String,
    pub size: usize,
    pub concurrency: usize,
    pub requests: u64,
    pub rps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl RbRow {
    pub fn mb_per_sec(&self) -> f64 {
        self.rps * self.size as f64 / 1e6
    }
}

/// The numbers of one CSV line of `redis-benchmark --csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct RbLine {
    pub test: String,
    pub rps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

/// Parses `redis-benchmark --csv` output: a header line naming the columns
/// (`"test","rps","avg_latency_ms",...,"max_latency_ms"`), then one line
/// per test. Lines before the header (warnings) are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<RbLine>, String> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("\"test\""));
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("no CSV header in redis-benchmark output: {text:?}"))?
        .split(',')
        .map(unquote)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("redis-benchmark CSV has no {name} column: {header:?}"))
    };
    let (test, rps, avg, p50, p95, p99, max) = (
        column("test")?,
        column("rps")?,
        column("avg_latency_ms")?,
        column("p50_latency_ms")?,
        column("p95_latency_ms")?,
        column("p99_latency_ms")?,
        column("max_latency_ms")?,
    );
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        let number = |i: usize| -> Result<f64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("bad redis-benchmark CSV line {line:?}"))
        };
        out.push(RbLine {
            test: fields
                .get(test)
                .ok_or_else(|| format!("bad redis-benchmark CSV line {line:?}"))?
                .to_string(),
            rps: number(rps)?,
            avg_ms: number(avg)?,
            p50_ms: number(p50)?,
            p95_ms: number(p95)?,
            p99_ms: number(p99)?,
            max_ms: number(max)?,
        });
    }
    Ok(out)
}

/// What a redis-benchmark comparison runs.
#[derive(Debug, Clone)]
pub struct RbSettings {
    pub program: PathBuf,
    pub sizes: Vec<usize>,
    pub concurrency: Vec<usize>,
    /// Requests per test; `None`: [`default_requests`].
    pub requests: Option<u64>,
    /// Longest one redis-benchmark run may take.
    pub timeout: Duration,
}

/// Requests per test for objects of `size` bytes at `concurrency`: about
/// 2 GiB of values, between 30 (and two per connection) and 20 000.
pub fn default_requests(size: usize, concurrency: usize) -> u64 {
    let by_bytes = (2u64 << 30) / size.max(1) as u64;
    let floor = 30.max(2 * concurrency as u64);
    by_bytes.clamp(floor, 20_000.max(floor))
}

/// Runs redis-benchmark once against `addr`.
pub async fn run_one(
    settings: &RbSettings,
    server: &str,
    addr: &str,
    size: usize,
    concurrency: usize,
) -> Result<Vec<RbRow>, String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("bad address {addr:?}: expected HOST:PORT"))?;
    let requests = settings
        .requests
        .unwrap_or_else(|| default_requests(size, concurrency));
    let mut command = Command::new(&settings.program);
    command
        .args(["-h", host, "-p", port, "-t", "set,get", "--csv"])
        .args(["-d", &size.to_string()])
        .args(["-c", &concurrency.to_string()])
        .args(["-n", &requests.to_string()])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(settings.timeout, command.output())
        .await
        .map_err(|_| {
            format!(
                "redis-benchmark against {server} ({}, c={concurrency}) took over {:?}",
                size_label(size),
                settings.timeout
            )
        })?
        .map_err(|err| format!("cannot run {}: {err}", settings.program.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark against {server} failed ({}): {} {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let lines = parse_csv(&stdout)?;
    for wanted in ["SET", "GET"] {
        if !lines.iter().any(|l| l.test == wanted) {
            return Err(format!(
                "redis-benchmark against {server} reported no {wanted}: {}",
                stdout.trim()
            ));
        }
    }
    Ok(lines
        .into_iter()
        .map(|l| RbRow {
            server: server.to_string(),
            test: l.test,
            size,
            concurrency,
            requests,
            rps: l.rps,
            avg_ms: l.avg_ms,
            p50_ms: l.p50_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            max_ms: l.max_ms,
        })
        .collect())
}

/// Deletes redis-benchmark's key from the server at `addr`.
pub async fn clean_up(addr: &str) -> Result<(), String> {
    let client = redis::Client::open(format!("redis://{addr}/"))
        .map_err(|err| format!("bad address {addr:?}: {err}"))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    redis::cmd("DEL")
        .arg("key:__rand_int__")
        .query_async::<i64>(&mut conn)
        .await
        .map(drop)
        .map_err(|err| format!("DEL on {addr}: {err}"))
}

fn ms(v: f64) -> String {
    fmt_duration(Duration::from_secs_f64(v.max(0.0) / 1e3))
}

/// Both servers side by side: per test, size and concurrency, requests
/// per second, MB/s and p50/p99 of the RESP frontend and of redis-server.
pub fn table(rows: &[RbRow]) -> String {
    let mut out = String::new();
    w!(
        out,
        "redis-benchmark: RESP frontend (resp) next to redis-server (redis)\n"
    );
    w!(
        out,
        "{:<4} {:>7} {:>4} {:>6} | {:>9} {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} {:>8} | {:>7}\n",
        "test",
        "size",
        "conc",
        "n",
        "resp rps",
        "MB/s",
        "p50",
        "p99",
        "redis rps",
        "MB/s",
        "p50",
        "p99",
        "rps r/r"
    );
    let mut keys: Vec<(usize, usize, String)> = Vec::new();
    for row in rows {
        let key = (row.size, row.concurrency, row.test.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let find = |server: &str, (size, conc, test): &(usize, usize, String)| {
        rows.iter().find(|r| {
            r.server == server && r.size == *size && r.concurrency == *conc && r.test == *test
        })
    };
    let half = |row: Option<&RbRow>| match row {
        Some(r) => format!(
            "{:>9.0} {:>8.1} {:>8} {:>8}",
            r.rps,
            r.mb_per_sec(),
            ms(r.p50_ms),
            ms(r.p99_ms)
        ),
        None => format!("{:>9} {:>8} {:>8} {:>8}", "-", "-", "-", "-"),
    };
    for key in &keys {
        let (resp, redis) = (find("resp", key), find("redis", key));
        let n = resp.or(redis).map_or(0, |r| r.requests);
        let ratio = match (resp, redis) {
            (Some(a), Some(b)) if b.rps > 0.0 => format!("{:.2}x", a.rps / b.rps),
            _ => "-".into(),
        };
        w!(
            out,
            "{:<4} {:>7} {:>4} {:>6} | {} | {} | {:>7}\n",
            key.2,
            size_label(key.0),
            key.1,
            n,
            half(resp),
            half(redis),
            ratio
        );
    }
    out
}

pub fn csv(rows: &[RbRow]) -> String {
    let mut out = String::from(
        "server,test,size_bytes,size,concurrency,requests,rps,mb_per_s,avg_ms,p50_ms,p95_ms,p99_ms,max_ms\n",
    );
    for r in rows {
        w!(
            out,
            "{},{},{},{},{},{},{:.2},{:.3},{},{},{},{},{}\n",
            r.server,
            r.test,
            r.size,
            size_label(r.size),
            r.concurrency,
            r.requests,
            r.rps,
            r.mb_per_sec(),
            r.avg_ms,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    out
}

/// Writes `redis-benchmark.csv` and `redis-benchmark.txt` into `dir`.
pub fn write_all(rows: &[RbRow], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let csv_path = dir.join("redis-benchmark.csv");
    std::fs::write(&csv_path, csv(rows))
        .map_err(|err| format!("cannot write {}: {err}", csv_path.display()))?;
    let txt_path = dir.join("redis-benchmark.txt");
    std::fs::write(&txt_path, table(rows))
        .map_err(|err| format!("cannot write {}: {err}", txt_path.display()))?;
    Ok(vec![csv_path, txt_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "WARNING: Could not fetch server CONFIG\n\
\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"SET\",\"83333.34\",\"0.327\",\"0.080\",\"0.319\",\"0.455\",\"0.567\",\"1.071\"\n\
\"GET\",\"90909.09\",\"0.300\",\"0.072\",\"0.295\",\"0.431\",\"0.527\",\"0.911\"\n";

    #[test]
    fn parses_redis_benchmark_csv() {
        let lines = parse_csv(OUTPUT).expect("parse");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].test, "SET");
        assert!((lines[0].rps - 83333.34).abs() < 1e-6);
        assert!((lines[1].p99_ms - 0.527).abs() < 1e-9);
        assert!((lines[1].max_ms - 0.911).abs() < 1e-9);
        assert!(parse_csv("nothing here").is_err());
        assert!(parse_csv("\"test\",\"rps\"\n\"SET\",\"1\"\n").is_err());
    }

    #[test]
    fn side_by_side_table() {
        let lines = parse_csv(OUTPUT).expect("parse");
        let mut rows = Vec::new();
        for (server, scale) in [("resp", 0.5), ("redis", 1.0)] {
            for l in &lines {
                rows.push(RbRow {
                    server: server.into(),
                    test: l.test.clone(),
                    size: 1024,
                    concurrency: 16,
                    requests: 1000,
                    rps: l.rps * scale,
                    avg_ms: l.avg_ms,
                    p50_ms: l.p50_ms / scale,
                    p95_ms: l.p95_ms,
                    p99_ms: l.p99_ms,
                    max_ms: l.max_ms,
                });
            }
        }
        let text = table(&rows);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("0.50x"), "{text}");
        assert!(
            text.contains("SET     1KiB   16   1000 |     41667"),
            "{text}"
        );
        assert_eq!(csv(&rows).lines().count(), 5);
        assert_eq!(default_requests(1024, 16), 20_000);
        assert_eq!(default_requests(1 << 20, 1), 2048);
        assert_eq!(default_requests(100 << 20, 16), 32);
    }
}

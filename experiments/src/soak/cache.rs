//! The cache a run drives, and what the tool reads from it: the proxy's
//! counters (`GET /status`), the platform's reclaim statistics
//! (`GET /admin/stats`) and the proxy process's memory (`/proc`).
//!
//! Either the tool starts the cache (the release proxy through the test
//! harness's `TestCache`, with the local platform and the node binary) or it
//! is given a running one by address. Reads of the admin APIs never panic:
//! a proxy that stopped answering is reported, not fatal to the report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use infinicache_tests::harness::TestCache;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::options::{Settings, Target};
use crate::bench::servers::workspace_bin;

/// How long one admin request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A cache to drive.
pub struct Cache {
    started: Option<TestCache>,
    /// The proxy's client listener.
    pub client_addr: String,
    /// The proxy's admin API.
    pub admin: Option<SocketAddr>,
    /// The local platform's Invoke/admin API.
    pub platform: Option<SocketAddr>,
    /// The proxy's process id.
    pub pid: Option<u32>,
    /// What was started (or found), for the report.
    pub description: String,
}

impl Cache {
    /// Starts the cache `settings` describe, or names the existing one.
    pub async fn open(settings: &Settings) -> Result<Cache, String> {
        match &settings.target {
            Target::Existing(existing) => Ok(Cache {
                started: None,
                client_addr: existing.proxy.clone(),
                admin: existing.admin,
                platform: existing.platform,
                pid: existing.pid,
                description: format!("existing proxy at {}", existing.proxy),
            }),
            Target::Start(_) => {
                // Fail with a hint rather than the harness's panic.
                workspace_bin("infinicache-proxy")?;
                workspace_bin("infinicache-node")?;
                let args = settings.proxy_args();
                let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
                // Reclaims, failovers and repairs are the point here, not news.
                let log = std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "error".into());
                let node_log =
                    std::env::var("INFINICACHE_NODE_LOG").unwrap_or_else(|_| "error".into());
                let cache = TestCache::start_with_env(
                    &arg_refs,
                    &[
                        ("INFINICACHE_LOG", log.as_str()),
                        ("INFINICACHE_NODE_LOG", node_log.as_str()),
                    ],
                )
                .await;
                Ok(Cache {
                    client_addr: cache.client_addr.clone(),
                    // The harness reports 0.0.0.0:0-like placeholders for
                    // listeners that are off; a port of 0 is none.
                    admin: Some(cache.admin_addr).filter(|a| a.port() != 0),
                    platform: Some(cache.platform_addr).filter(|a| a.port() != 0),
                    pid: cache.pid(),
                    description: format!(
                        "infinicache-proxy {}",
                        settings.proxy_args_for_display().join(" ")
                    ),
                    started: Some(cache),
                })
            }
        }
    }

    /// Stops what was started.
    pub async fn stop(self) {
        if let Some(cache) = self.started {
            cache.stop().await;
        }
    }

    /// The proxy's counters and the platform's statistics now.
    pub async fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        if let Some(admin) = self.admin {
            match get_json(admin, "/status").await {
                Ok(status) => snapshot.counters = numbers(&status["counters"]),
                Err(err) => tracing::warn!(%err, "cannot read the proxy's /status"),
            }
        }
        if let Some(platform) = self.platform {
            match get_json(platform, "/admin/stats").await {
                Ok(stats) => {
                    snapshot.platform = numbers(&stats["reclaims"])
                        .into_iter()
                        .map(|(reason, n)| (format!("reclaims_{reason}"), n))
                        .collect();
                    if let Some(cold) = stats["cold_starts"].as_u64() {
                        snapshot.platform.insert("cold_starts".into(), cold);
                    }
                }
                Err(err) => tracing::warn!(%err, "cannot read the platform's /admin/stats"),
            }
        }
        snapshot
    }
}

/// Counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The proxy's `/status` counters.
    pub counters: BTreeMap<String, u64>,
    /// The platform's cold starts and reclaims by reason.
    pub platform: BTreeMap<String, u64>,
}

impl Snapshot {
    /// What grew from `before` to `self` (counters only grow; one missing
    /// from `before` counts from 0).
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        let delta = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(name, n)| {
                    let old = then.get(name).copied().unwrap_or(0);
                    (name.clone(), n.saturating_sub(old))
                })
                .collect()
        };
        Snapshot {
            counters: delta(&self.counters, &before.counters),
            platform: delta(&self.platform, &before.platform),
        }
    }
}

/// The unsigned numbers of a JSON object, by name.
fn numbers(object: &Value) -> BTreeMap<String, u64> {
    object
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|(name, v)| v.as_u64().map(|n| (name.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

/// A process's resident memory now and at its peak, from
/// `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    pub rss: u64,
    pub peak: u64,
}

/// Reads `pid`'s memory; `None` if it is gone or not readable (not Linux).
pub fn process_memory(pid: u32) -> Option<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_process_memory(&status)
}

fn parse_process_memory(status: &str) -> Option<ProcessMemory> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    Some(ProcessMemory {
        rss: field("VmRSS")?,
        peak: field("VmHWM")?,
    })
}

/// `GET path` on an admin API, as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    request_json(addr, "GET", path).await
}

/// `POST path` (no body) on an admin API, as JSON.
pub async fn post_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    request_json(addr, "POST", path).await
}

async fn request_json(addr: SocketAddr, method: &str, path: &str) -> Result<Value, String> {
    let (status, body) = tokio::time::timeout(HTTP_TIMEOUT, exchange(addr, method, path))
        .await
        .map_err(|_| {
            format!("{method} http://{addr}{path}: no answer within {HTTP_TIMEOUT:?}")
        })??;
    if status != 200 {
        return Err(format!("{method} http://{addr}{path}: {status} {body}"));
    }
    serde_json::from_str(&body)
        .map_err(|err| format!("{method} http://{addr}{path}: not JSON ({err}): {body}"))
}

/// One HTTP/1.1 exchange with `Connection: close`: status and body.
async fn exchange(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String), String> {
    let fail = |err: std::io::Error| format!("{method} http://{addr}{path}: {err}");
    let mut stream = TcpStream::connect(addr).await.map_err(fail)?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(fail)?;
    parse_response(&String::from_utf8_lossy(&response))
        .ok_or_else(|| format!("{method} http://{addr}{path}: not an HTTP response"))
}

fn parse_response(text: &str) -> Option<(u16, String)> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\tinfinicache-pro\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(
            parse_process_memory(status),
            Some(ProcessMemory {
                rss: 100 << 20,
                peak: 200 << 20
            })
        );
        assert_eq!(parse_process_memory("Name:\tx\n"), None);
        // This process has a /proc entry on Linux.
        if cfg!(target_os = "linux") {
            let me = process_memory(std::process::id()).expect("own /proc/self/status");
            assert!(me.peak >= me.rss && me.rss > 0);
        }
    }

    #[test]
    fn responses_parse_plain_and_chunked() {
        assert_eq!(
            parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            Some((200, "{}".into()))
        );
        assert_eq!(
            parse_response(
                "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            ),
            Some((404, "abcde".into()))
        );
        assert_eq!(parse_response("garbage"), None);
    }

    #[test]
    fn snapshots_subtract() {
        let before = Snapshot {
            counters: [("failovers".to_string(), 2)].into(),
            platform: BTreeMap::new(),
        };
        let after = Snapshot {
            counters: [("failovers".to_string(), 5), ("chunks_lost".to_string(), 1)].into(),
            platform: [("cold_starts".to_string(), 9)].into(),
        };
        let delta = after.since(&before);
        assert_eq!(delta.counters["failovers"], 3);
        assert_eq!(delta.counters["chunks_lost"], 1);
        assert_eq!(delta.platform["cold_starts"], 9);
    }
}

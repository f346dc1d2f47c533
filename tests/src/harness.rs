//! A real cache on loopback for end-to-end tests: the `infinicache-proxy`
//! binary with its embedded local Lambda platform, whose environments run the
//! real `infinicache-node` binary.
//!
//! Every cache listens on ephemeral ports (port 0), so tests run in
//! parallel without colliding; the proxy announces its addresses on stdout.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use infinicache::Client;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::target_bin;

/// The proxy binary with its client and node listeners on free loopback
/// ports and nothing else set: for tests of how it starts (or refuses to).
pub fn proxy_command() -> Command {
    let mut command = Command::new(target_bin("infinicache-proxy"));
    command
        .args(["--client-listen", "127.0.0.1:0"])
        .args(["--node-listen", "127.0.0.1:0"])
        .kill_on_drop(true);
    command
}

/// Runs a command to its end and checks that it succeeded, showing its
/// standard error if it did not.
pub async fn run_ok(command: &mut Command) -> std::process::Output {
    let output = command.output().await.expect("cannot run the command");
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A running proxy (and its local platform and nodes).
pub struct TestCache {
    child: Child,
    /// The client listener.
    pub client_addr: String,
    /// The node listener.
    pub node_addr: String,
    /// The local platform's Invoke/admin API.
    pub platform_addr: SocketAddr,
    /// The proxy's admin/status API.
    pub admin_addr: SocketAddr,
    /// The RESP (Redis protocol) frontend; `None` when it is off.
    pub resp_addr: Option<String>,
    /// Prometheus's own listener (`--metrics-listen`); `None` without one.
    pub metrics_addr: Option<SocketAddr>,
    /// The proxy's data directory (the directory object store lives there),
    /// when the harness made it: removed with the cache.
    data_dir: Option<tempfile::TempDir>,
}

impl TestCache {
    /// Starts a cache with test-friendly defaults (no periodic warm-ups or
    /// backups, a fresh temporary data directory unless `args` name one)
    /// plus `args` (proxy flags, which may override the defaults).
    pub async fn start(args: &[&str]) -> TestCache {
        TestCache::start_with_env(args, &[]).await
    }

    /// Like [`TestCache::start`], with extra environment variables.
    pub async fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> TestCache {
        let mut command = Command::new(target_bin("infinicache-proxy"));
        command.envs(env.iter().copied());
        // Every cache gets its own data directory (and so its own directory
        // object store): one left by an earlier run would be recovered.
        let data_dir = if args.contains(&"--data-dir") {
            None
        } else {
            let dir = tempfile::tempdir().expect("cannot create a data directory");
            command.arg("--data-dir").arg(dir.path());
            Some(dir)
        };
        command
            .args([
                "--client-listen",
                "127.0.0.1:0",
                "--node-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--resp-listen",
                "127.0.0.1:0",
            ])
            .args(["--warmup-interval", "0s", "--backup-interval", "0s"])
            .args(args);
        if !env.iter().any(|(name, _)| *name == "INFINICACHE_LOG") {
            command.env(
                "INFINICACHE_LOG",
                std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("cannot start infinicache-proxy");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read proxy stdout") {
                if line.starts_with("infinicache-proxy ready") {
                    return line;
                }
            }
            panic!("infinicache-proxy exited before it was ready");
        })
        .await
        .expect("infinicache-proxy did not become ready");
        let field = |name: &str| {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {ready:?}"))
                .to_string()
        };
        let platform = field("platform");
        // A proxy on AWS has no local platform: "platform=aws".
        let platform_addr = platform
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        // Keep draining stdout so the proxy never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let admin_addr = field("admin")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let resp_addr = ready
            .split_whitespace()
            .find_map(|part| part.strip_prefix("resp="))
            .filter(|addr| *addr != "off")
            .map(str::to_string);
        let metrics_addr = ready
            .split_whitespace()
            .find_map(|part| part.strip_prefix("metrics="))
            .and_then(|addr| addr.parse().ok());
        TestCache {
            child,
            client_addr: field("client"),
            node_addr: field("nodes"),
            platform_addr,
            admin_addr,
            resp_addr,
            metrics_addr,
            data_dir,
        }
    }

    /// The `infinicache` command-line client pointed at this cache, with
    /// `args`; settings from the environment of the test run are removed.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(target_bin("infinicache"));
        for name in [
            "INFINICACHE_SECRET",
            "INFINICACHE_TLS",
            "INFINICACHE_TLS_CA",
        ] {
            command.env_remove(name);
        }
        command.arg("--proxy").arg(&self.client_addr).args(args);
        command
    }

    /// The proxy's process id (`None` once it has been reaped), for tools
    /// that watch its memory in `/proc`.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The data directory the harness made for this cache (none when the
    /// test passed `--data-dir` itself).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_ref().map(tempfile::TempDir::path)
    }

    /// A client with `k` data and `r` parity shards.
    pub async fn client(&self, k: usize, r: usize) -> Client {
        Client::builder()
            .proxy(&self.client_addr)
            .data_shards(k)
            .parity_shards(r)
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .expect("connect to the test cache")
    }

    /// GET on the platform's admin API, parsed as JSON.
    pub async fn admin_get(&self, path: &str) -> Value {
        let (status, body) = http(self.platform_addr, "GET", path, "").await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("admin API returned JSON")
    }

    /// POST on the platform's admin API, parsed as JSON.
    pub async fn admin_post(&self, path: &str) -> Value {
        let (status, body) = http(self.platform_addr, "POST", path, "").await;
        assert_eq!(status, 200, "POST {path}: {body}");
        serde_json::from_str(&body).expect("admin API returned JSON")
    }

    /// The proxy's `GET /status`.
    pub async fn status(&self) -> Value {
        let (status, body) = http(self.admin_addr, "GET", "/status", "").await;
        assert_eq!(status, 200, "GET /status: {body}");
        serde_json::from_str(&body).expect("status is JSON")
    }

    /// One of the proxy's counters.
    pub async fn counter(&self, name: &str) -> u64 {
        self.status().await["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// Runs a backup round now (`POST /backup`) and returns its report.
    pub async fn backup_now(&self) -> Value {
        let (status, body) = http(self.admin_addr, "POST", "/backup", "").await;
        assert_eq!(status, 200, "POST /backup: {body}");
        serde_json::from_str(&body).expect("backup report is JSON")
    }

    /// Reclaims one environment (by platform environment id).
    pub async fn reclaim_environment(&self, id: u64) -> u64 {
        let reply = self
            .admin_post(&format!("/admin/environments/{id}/reclaim"))
            .await;
        reply["reclaimed"].as_u64().expect("reclaimed count")
    }

    /// A function's live environments as the platform lists them.
    pub async fn environments(&self, function: &str) -> Vec<Value> {
        match self
            .admin_get(&format!("/admin/functions/{function}/environments"))
            .await
        {
            Value::Array(envs) => envs,
            other => panic!("environments is not a list: {other}"),
        }
    }

    /// Reclaims (kills) every environment of a function, as the provider may.
    pub async fn reclaim(&self, function: &str) -> u64 {
        let reply = self
            .admin_post(&format!("/admin/functions/{function}/reclaim"))
            .await;
        reply["reclaimed"].as_u64().expect("reclaimed count")
    }

    /// The pids of a function's environments.
    pub async fn pids(&self, function: &str) -> Vec<u32> {
        let envs = self
            .admin_get(&format!("/admin/functions/{function}/environments"))
            .await;
        envs.as_array()
            .map(|envs| {
                envs.iter()
                    .filter_map(|env| env["pid"].as_u64())
                    .map(|pid| pid as u32)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The platform's billing records.
    pub async fn billing(&self) -> Vec<Value> {
        match self.admin_get("/admin/billing").await {
            Value::Array(records) => records,
            other => panic!("billing is not a list: {other}"),
        }
    }

    /// Sends SIGTERM and waits for the proxy to exit (a drained, flushed
    /// shutdown): its exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .expect("the proxy did not exit within 120 s of SIGTERM")
            .expect("wait for the proxy")
    }

    /// Stops the proxy gracefully (it kills its environments).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

impl Drop for TestCache {
    fn drop(&mut self) {
        // Ask for a clean shutdown first: the proxy then kills its node
        // processes, including frozen ones, instead of orphaning them.
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.start_kill();
    }
}

/// A minimal HTTP/1.1 request (`Connection: close`); returns status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    // A wedged server fails the test instead of hanging it.
    tokio::time::timeout(HTTP_TIMEOUT, http_exchange(addr, method, path, body))
        .await
        .unwrap_or_else(|_| {
            panic!("{method} http://{addr}{path}: no answer within {HTTP_TIMEOUT:?}")
        })
}

/// The longest an admin request may take (a backup round included).
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

async fn http_exchange(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    (status, dechunk(body))
}

/// Undoes `Transfer-Encoding: chunked` if the body looks chunked.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_string();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if size == 0 {
            return out;
        }
        let Some(chunk) = after.get(..size) else {
            return body.to_string();
        };
        out.push_str(chunk);
        rest = after.get(size + 2..).unwrap_or_default();
    }
}

/// Waits until `check` holds, polling every 50 ms for up to 30 s (generous:
/// the machines running the tests are shared and slow); panics naming
/// `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Random bytes.
pub fn random_bytes(len: usize) -> bytes::Bytes {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data.into()
}

/// Proxy flags for a pool of six nodes coding RS(4+2) by default.
pub const SMALL_POOL: &[&str] = &[
    "--pool-size",
    "6",
    "--data-shards",
    "4",
    "--parity-shards",
    "2",
];

impl TestCache {
    /// A cache with [`SMALL_POOL`] plus `args`.
    pub async fn small(args: &[&str]) -> TestCache {
        let all: Vec<&str> = SMALL_POOL.iter().chain(args).copied().collect();
        TestCache::start(&all).await
    }
}

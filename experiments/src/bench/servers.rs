//! The servers the tool starts when it is not given addresses: a cache (the
//! release `infinicache-proxy` with its local Lambda platform and nodes,
//! through the test harness's `TestCache`) and a plain `redis-server`.
//!
//! The cache is started for benchmarking, not with the proxy's defaults:
//!
//! * `--node-idle-timeout 10m` and `--function-timeout 1h`: nodes stay
//!   connected (warm) for the whole run instead of returning after 100 ms
//!   of idleness, so cells measure the steady state, not invocations;
//! * `--no-reclaim`: the platform does not reclaim environments mid-run
//!   (warm-ups and backups are already off in the harness);
//! * `--cos off`: no durable object store under the function memory, as in
//!   InfiniCache and as the redis-server it is compared with (no RDB, no
//!   AOF); `--proxy-args "--cos dir"` measures InfiniStore's write-back;
//! * `--pool-size max(12, k + r)`, `--data-shards k --parity-shards r`
//!   (the RESP frontend codes values with the proxy's defaults);
//! * `--node-memory-mb` large enough for three times the largest key space
//!   with its parity (an overwrite keeps the old version until the new one
//!   commits), and at least the default 1024.
//!
//! For the native-tls target, a second cache like the first (same flags)
//! with `--tls-cert`/`--tls-key`: a test CA and a server certificate for
//! `localhost` and `127.0.0.1` made into a temporary directory that lives
//! as long as the [`Servers`]; the client trusts that CA.
//!
//! The redis-server runs on a free loopback port with `--save ''
//! --appendonly no` and is killed at the end.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infinicache_tests::certs::TestCerts;
use infinicache_tests::harness::TestCache;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::options::{Settings, TargetKind};

/// A binary of this workspace next to the running executable (as
/// `infinicache_tests::target_bin` finds it, without panicking).
pub fn workspace_bin(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot locate the running executable: {err}"))?;
    let mut dir = exe
        .parent()
        .ok_or("the running executable has no directory")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "`{name}` not found at {}: build it first (`cargo build --release -p infinicache-proxy \
             -p infinicache-node`, or `make bench-redis`)",
            path.display()
        ))
    }
}

/// A free loopback port (bound and released: another process could take
/// it in between, which is unlikely on a benchmark machine).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("no free loopback port: {err}"))
}

/// The proxy flags the tool starts its cache with (before `proxy_args`).
pub fn proxy_flags(settings: &Settings) -> Vec<String> {
    let k = settings.data_shards.max(1);
    let n = k + settings.parity_shards;
    let pool = if settings.pool_size == 0 {
        n.max(12)
    } else {
        settings.pool_size
    };
    let largest = settings
        .sizes
        .iter()
        .map(|&size| settings.keys_for(size) as u128 * size as u128)
        .max()
        .unwrap_or(0);
    let coded = largest * n as u128 / k as u128;
    let per_node_mb = (3 * coded / pool.max(1) as u128).div_ceil(1 << 20) as u64;
    let memory_mb = (per_node_mb + 96).max(1024);
    [
        "--pool-size".to_string(),
        pool.to_string(),
        "--data-shards".into(),
        k.to_string(),
        "--parity-shards".into(),
        settings.parity_shards.to_string(),
        "--node-memory-mb".into(),
        memory_mb.to_string(),
        "--node-idle-timeout".into(),
        "10m".into(),
        "--function-timeout".into(),
        "1h".into(),
        "--no-reclaim".into(),
        "--cos".into(),
        "off".into(),
    ]
    .into()
}

/// A directory of its own under the system's temporary directory,
/// removed (with its contents) when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>`, a name no other directory has.
    pub fn new(prefix: &str) -> Result<TempDir, String> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let path = base.join(format!("{prefix}-{pid}-{nanos}-{attempt}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => {
                    return Err(format!("cannot create {}: {err}", path.display()));
                }
            }
        }
        Err(format!(
            "cannot create a temporary directory in {}",
            base.display()
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The servers of one run and the addresses of every target.
pub struct Servers {
    cache: Option<TestCache>,
    /// The second cache, with TLS on its client listener (native-tls).
    tls_cache: Option<TestCache>,
    redis: Option<RedisServer>,
    native: Option<String>,
    native_tls: Option<String>,
    /// The CA the native-tls client trusts (`None`: the system's roots).
    tls_ca: Option<PathBuf>,
    /// Where the TLS cache's certificates are; removed with the servers
    /// (declared after the caches, so dropped after them).
    certs_dir: Option<TempDir>,
    resp: Option<String>,
    redis_addr: Option<String>,
    /// What was started, with which flags (printed with the results).
    pub notes: Vec<String>,
}

impl Servers {
    /// Starts what `targets` need and was not given an address for.
    pub async fn start(settings: &Settings, targets: &[TargetKind]) -> Result<Servers, String> {
        let mut servers = Servers {
            cache: None,
            tls_cache: None,
            redis: None,
            native: settings.native_addr.clone(),
            native_tls: settings.native_tls_addr.clone(),
            tls_ca: settings.tls_ca.clone(),
            certs_dir: None,
            resp: settings.resp_addr.clone(),
            redis_addr: settings.redis_addr.clone(),
            notes: Vec::new(),
        };
        let wants = |kind| targets.contains(&kind);
        let need_native = wants(TargetKind::Native) && servers.native.is_none();
        let need_resp = wants(TargetKind::Resp) && servers.resp.is_none();
        if need_native || need_resp {
            workspace_bin("infinicache-node")?;
            // The harness gives the RESP frontend a port of its own
            // (`--resp-listen 127.0.0.1:0`) and reads it from the ready line.
            let mut args = proxy_flags(settings);
            args.extend(settings.proxy_args.iter().cloned());
            let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let cache = TestCache::start(&arg_refs).await;
            servers.notes.push(format!(
                "cache: infinicache-proxy {} (client {}, RESP {})",
                args.join(" "),
                cache.client_addr,
                cache.resp_addr.as_deref().unwrap_or("off")
            ));
            if need_native {
                servers.native = Some(cache.client_addr.clone());
            }
            if need_resp {
                let Some(resp) = cache.resp_addr.clone() else {
                    cache.stop().await;
                    return Err(
                        "the resp target needs the proxy's RESP frontend, which is off \
                                (--no-resp in --proxy-args?)"
                            .into(),
                    );
                };
                servers.resp = Some(resp);
            }
            servers.cache = Some(cache);
        }
        if wants(TargetKind::NativeTls) && servers.native_tls.is_none() {
            workspace_bin("infinicache-node")?;
            let dir = TempDir::new("infinicache-bench-certs")?;
            let certs = TestCerts::generate(dir.path()).map_err(|err| {
                format!(
                    "cannot write test certificates into {}: {err}",
                    dir.path().display()
                )
            })?;
            let mut args = proxy_flags(settings);
            args.extend(settings.proxy_args.iter().cloned());
            let shown = args.join(" ");
            args.push("--tls-cert".into());
            args.push(certs.cert.display().to_string());
            args.push("--tls-key".into());
            args.push(certs.key.display().to_string());
            let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let cache = TestCache::start(&arg_refs).await;
            servers.notes.push(format!(
                "cache (TLS): infinicache-proxy {shown} --tls-cert server.pem --tls-key \
                 server.key (client {}, test CA)",
                cache.client_addr
            ));
            servers.native_tls = Some(cache.client_addr.clone());
            servers.tls_ca = Some(certs.ca);
            servers.tls_cache = Some(cache);
            servers.certs_dir = Some(dir);
        }
        if wants(TargetKind::Redis) && servers.redis_addr.is_none() {
            let redis = RedisServer::start(&settings.redis_server).await?;
            servers
                .notes
                .push(format!("redis: {} on {}", redis.version, redis.addr));
            servers.redis_addr = Some(redis.addr.clone());
            servers.redis = Some(redis);
        }
        Ok(servers)
    }

    /// The address of `kind`'s server, if it has one.
    pub fn addr(&self, kind: TargetKind) -> Option<&str> {
        match kind {
            TargetKind::Native => self.native.as_deref(),
            TargetKind::NativeTls => self.native_tls.as_deref(),
            TargetKind::Resp => self.resp.as_deref(),
            TargetKind::Redis => self.redis_addr.as_deref(),
        }
    }

    /// The CA certificates (PEM) the native-tls client trusts: the test
    /// CA of the TLS cache started, or `--tls-ca`; `None`: the system's.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// Stops what was started (and removes the test certificates).
    pub async fn stop(self) {
        if let Some(redis) = self.redis {
            redis.stop().await;
        }
        if let Some(cache) = self.tls_cache {
            cache.stop().await;
        }
        if let Some(cache) = self.cache {
            cache.stop().await;
        }
        drop(self.certs_dir);
    }
}

/// Finds an executable: a path as given, a bare name on `PATH`.
pub fn find_executable(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A `redis-server` child process on a free loopback port, with
/// persistence off; killed when stopped or dropped.
pub struct RedisServer {
    child: Child,
    pub addr: String,
    /// `redis-server --version`'s first words.
    pub version: String,
}

impl RedisServer {
    /// Starts `program` and waits until it answers PING.
    pub async fn start(program: &Path) -> Result<RedisServer, String> {
        let Some(path) = find_executable(program) else {
            return Err(format!(
                "{} is not installed (or not on PATH): install it (`make redis`, or \
                 `apt-get install redis-server`), point --redis-server at it, or pass \
                 --redis ADDR of a running server, or leave redis out of --targets",
                program.display()
            ));
        };
        let version = Command::new(&path)
            .arg("--version")
            .output()
            .await
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .map_err(|err| format!("cannot run {}: {err}", path.display()))?;
        let port = free_port()?;
        let mut child = Command::new(&path)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", path.display()))?;
        // Keep the last lines of its log for error messages.
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut log) = log.lock() {
                        if log.len() >= 20 {
                            log.remove(0);
                        }
                        log.push(line);
                    }
                }
            });
        }
        let addr = format!("127.0.0.1:{port}");
        let mut server = RedisServer {
            child,
            addr,
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "redis-server exited at start ({status}): {}",
                    tail(&log)
                ));
            }
            if server.ping().await {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.stop().await;
                return Err(format!(
                    "redis-server did not answer PING within 15 s: {}",
                    tail(&log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(format!("redis://{}/", self.addr)) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok_and(|reply| reply == "PONG")
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn tail(log: &Mutex<Vec<String>>) -> String {
    log.lock()
        .map(|lines| lines.join(" | "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_memory_fits_the_largest_key_space() {
        let settings = Settings::default();
        let flags = proxy_flags(&settings);
        let value = |name: &str| {
            flags
                .iter()
                .position(|f| f == name)
                .and_then(|i| flags.get(i + 1))
                .cloned()
        };
        assert_eq!(value("--pool-size").as_deref(), Some("12"));
        assert_eq!(value("--cos").as_deref(), Some("off"));
        // 16 × 100 MiB × 12/10 over 12 nodes, three times: 480 MiB.
        assert_eq!(value("--node-memory-mb").as_deref(), Some("1024"));
        let big = Settings {
            sizes: vec![1 << 30],
            ..Settings::default()
        };
        let flags = proxy_flags(&big);
        let mb: u64 = flags
            .iter()
            .position(|f| f == "--node-memory-mb")
            .and_then(|i| flags.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // 16 GiB × 1.2 × 3 / 12 = 4915.2 MiB, plus headroom.
        assert_eq!(mb, 4916 + 96);
    }

    #[test]
    fn temp_dirs_are_distinct_and_removed() {
        let a = TempDir::new("infinicache-bench-test").expect("temp dir");
        let b = TempDir::new("infinicache-bench-test").expect("temp dir");
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("f"), b"x").expect("write");
        let path = a.path().to_path_buf();
        assert!(path.is_dir());
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn executables_are_found_on_path() {
        assert!(find_executable(Path::new("sh")).is_some());
        assert!(find_executable(Path::new("/definitely/not/here")).is_none());
        assert!(find_executable(Path::new("no-such-program-xyz")).is_none());
    }
}

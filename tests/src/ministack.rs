//! ministack, a third-party implementation of the AWS Lambda (and S3) API,
//! for the tests of the AWS path and of the S3 object store; and running
//! `infinicache-proxy deploy` against it.
//!
//! `make test` installs ministack into `<workspace>/.venv`; `MINISTACK_BIN`
//! points at another installation.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::http;
use crate::target_bin;

/// The default function prefix.
pub const PREFIX: &str = "infinicache-node";

/// The role ARN the tests deploy with (ministack accepts any).
pub const ROLE: &str = "arn:aws:iam::000000000000:role/infinicache-node";

/// Credentials and region for talking to ministack, isolated from any AWS
/// configuration of the machine.
pub const AWS_TEST_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A ministack process on a free loopback port, killed (with anything it
/// started) on drop. Its working directory and TMPDIR are a temporary
/// directory, which also holds its log.
pub struct Ministack {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Ministack {
    /// `MINISTACK_BIN` if set, else `<workspace>/.venv/bin/ministack`.
    fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("MINISTACK_BIN") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MINISTACK_BIN={} does not exist; run `make test`, which installs ministack into .venv",
                path.display()
            );
            return path;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate is inside the workspace");
        let path = workspace.join(".venv/bin/ministack");
        assert!(
            path.is_file(),
            "ministack (the Lambda emulator the deploy tests run against) is not installed at {}: \
             run `make test`, which installs it into .venv, or set MINISTACK_BIN",
            path.display()
        );
        path
    }

    /// Starts ministack and waits until its health check answers.
    pub async fn start() -> Ministack {
        let binary = Ministack::binary();
        let dir = tempfile::tempdir().expect("temporary directory for ministack");
        // A free port: bind, note it, release it for ministack.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let log = std::fs::File::create(dir.path().join("ministack.log")).expect("ministack log");
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&binary)
                .current_dir(dir.path())
                .env("TMPDIR", dir.path())
                .env("BIND_HOST", "127.0.0.1")
                .env("GATEWAY_PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("ministack log"))
                .stderr(log)
                // Its own process group, so drop can stop whatever it starts.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()))
        };
        let mut ministack = Ministack {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        ministack.wait_healthy().await;
        ministack
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ministack exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let (status, _) = http(self.addr, "GET", "/_ministack/health", "").await;
                if status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "ministack did not become healthy on {}:\n{}",
                self.addr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates an S3 bucket (ministack serves S3 path-style on the same
    /// port). A plain `PUT /<bucket>` is S3's CreateBucket; ministack does
    /// not check signatures, so the tests crate needs no S3 client of its
    /// own for this.
    pub async fn create_bucket(&self, bucket: &str) {
        let (status, body) = http(self.addr, "PUT", &format!("/{bucket}"), "").await;
        assert_eq!(status, 200, "CreateBucket {bucket}: {body}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ministack.log")).unwrap_or_default()
    }
}

impl Drop for Ministack {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = killpg(group, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// What one `infinicache-proxy deploy` run did.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts success and returns stdout.
    pub fn success(&self) -> String {
        assert!(
            self.output.status.success(),
            "deploy failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// The `NAME: outcome` lines.
    pub fn outcomes(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .filter(|line| line.starts_with(&format!("{PREFIX}-")))
            .map(str::to_string)
            .collect()
    }
}

/// Runs `infinicache-proxy deploy ARGS` with test credentials, isolated from
/// any AWS configuration of the machine.
pub async fn deploy(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("temporary home");
    let mut command = tokio::process::Command::new(target_bin("infinicache-proxy"));
    command
        .arg("deploy")
        .args(args)
        .env_remove("INFINICACHE_CONFIG")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("deploy finished in time")
        .expect("infinicache-proxy runs");
    Run { output }
}

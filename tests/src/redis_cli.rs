//! Driving `redis-cli`, the reference Redis client, against the RESP
//! frontend.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// `redis-cli`, which the test needs: CI installs it (Debian's redis-tools).
pub fn redis_cli() -> std::path::PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let path = std::path::Path::new(dir).join("redis-cli");
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "redis-cli is not installed: install redis-tools (apt-get install redis-tools, or `make redis`); CI installs it"
    );
}

/// Runs redis-cli against `addr` with `args`, feeding `stdin`; returns its
/// standard output (redis-cli prints errors there too).
pub async fn run_cli(addr: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut child = tokio::process::Command::new(redis_cli())
        .args(["-h", host, "-p", port])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run redis-cli");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
        });
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("redis-cli finished in time")
        .expect("redis-cli ran");
    let mut out = output.stdout;
    out.extend_from_slice(&output.stderr);
    out
}

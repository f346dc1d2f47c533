//! The OS side of an environment: spawning the runtime process with the
//! Lambda environment variables, signalling it, and reaping it.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::config::FunctionConfig;
use super::environment::Environment;
use super::ids;

/// Binds the loopback listener of one environment's Runtime API. Each
/// environment gets its own port so a request's port tells which
/// environment is calling.
pub(crate) fn bind_runtime_listener() -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// `AWS_LAMBDA_LOG_STREAM_NAME` in AWS's format: `YYYY/MM/DD/[$LATEST]<hex>`.
fn log_stream_name(env_id: u64) -> String {
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let day = date.get(..10).unwrap_or("1970-01-01").replace('-', "/");
    let salt: u64 = rand::random();
    format!("{day}/[$LATEST]{env_id:08x}{salt:016x}")
}

/// Spawns the function's executable as a new environment's runtime.
///
/// The child inherits stdout/stderr (its logs go where the platform's go),
/// gets the variables AWS sets for a custom runtime (they win over the
/// function's own `environment`, as AWS reserves them), and is killed if the
/// handle is dropped, so no runtime process outlives the platform.
pub(crate) fn spawn(
    config: &FunctionConfig,
    env_id: u64,
    runtime_api: SocketAddr,
) -> std::io::Result<Child> {
    let mut cmd = Command::new(&config.executable);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        // Would make lambda_runtime poll concurrently; one invocation at a
        // time per environment is the semantics being reproduced.
        .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
        .env_remove("_X_AMZN_TRACE_ID");
    if let Some(dir) = config.executable.parent() {
        cmd.env("LAMBDA_TASK_ROOT", dir);
    }
    cmd.envs(config.environment.iter().map(|(k, v)| (k, v)));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &config.name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            config.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name(env_id))
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("AWS_REGION", ids::REGION)
        .env("AWS_DEFAULT_REGION", ids::REGION);
    cmd.spawn()
}

/// Sends `sig` to `pid`; `false` if it could not be delivered (already gone).
pub(crate) fn signal(pid: u32, sig: Signal) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match kill(Pid::from_raw(raw), sig) {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(pid, ?sig, %err, "signal not delivered");
            false
        }
    }
}

/// Peak resident memory of a live process in MiB (rounded up): `VmHWM` from
/// `/proc/<pid>/status`, the closest thing to AWS's "Max Memory Used". `None`
/// where procfs is unavailable or the process is gone (a zombie has no
/// memory lines either).
pub(crate) fn peak_memory_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm_kb(&status).map(|kb| kb.div_ceil(1024))
}

/// The `VmHWM:   12345 kB` line of a `/proc/<pid>/status` file, in kB.
fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let mut parts = line.split_whitespace();
    let value = parts.next()?.parse().ok()?;
    (parts.next() == Some("kB")).then_some(value)
}

/// AWS-style description of how a runtime process ended.
fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => Signal::try_from(sig)
                .map(|s| format!("signal: {}", s.as_str()))
                .unwrap_or_else(|_| format!("signal: {sig}")),
            (None, None) => s.to_string(),
        },
        Err(err) => format!("unknown exit ({err})"),
    }
}

/// Owns the child until it is gone: reaps it when it exits on its own, or
/// SIGKILLs and reaps it when a kill is requested (no zombies, and a frozen
/// process is killed just as well). Then stops the environment's Runtime API
/// listener and tells the environment.
pub(crate) async fn supervise(env: Arc<Environment>, mut child: Child, server: JoinHandle<()>) {
    let status = tokio::select! {
        status = child.wait() => status,
        () = env.kill_requested() => {
            if let Err(err) = child.start_kill() {
                tracing::debug!(env = env.id, %err, "kill failed (already exited?)");
            }
            child.wait().await
        }
    };
    server.abort();
    let description = describe(&status);
    tracing::debug!(env = env.id, pid = env.pid, status = %description, "environment exited");
    env.on_exit(&description);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stream_name_has_aws_shape() {
        let name = log_stream_name(7);
        assert_eq!(name.as_bytes()[4], b'/');
        assert!(name.contains("/[$LATEST]00000007"));
    }

    #[test]
    fn reads_peak_memory() {
        let status = "Name:\tx\nVmPeak:\t  20000 kB\nVmHWM:\t    3073 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(3073));
        assert_eq!(parse_vm_hwm_kb("Name:\tzombie\nState:\tZ\n"), None);
        assert_eq!(parse_vm_hwm_kb("VmHWM:\tlots kB\n"), None);
        // This test process has touched some memory.
        assert!(peak_memory_mb(std::process::id()).is_some_and(|mb| mb > 0));
        assert_eq!(peak_memory_mb(u32::MAX), None);
    }
}

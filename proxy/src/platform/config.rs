//! Configuration of the local Lambda platform and of the functions it hosts.
//!
//! The knobs mirror what matters to InfiniCache on real AWS Lambda: how
//! invocations are billed, whether idle execution environments are frozen
//! (so their process memory survives but no CPU is used), when the provider
//! reclaims environments (see [`super::reclaim`]), and how many environments
//! one function may have.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PlatformError;
use super::reclaim::ReclaimPolicy;

/// Platform-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformConfig {
    /// Address of the Invoke API and of the admin API; port 0 picks an
    /// ephemeral port (see [`super::LocalPlatform::addr`]).
    pub listen: SocketAddr,
    /// Billing granularity: the billed duration is the invocation duration
    /// rounded up to a multiple of this tick (at least one tick). AWS bills
    /// per 1 ms today; the InfiniCache paper was written for the legacy 100 ms.
    #[serde(with = "humantime_serde")]
    pub billing_tick: Duration,
    /// SIGSTOP environments between invocations, as AWS freezes the sandbox
    /// once the runtime asks for its next event. `false` leaves them running
    /// (useful to show that freezing is what keeps background work from
    /// progressing).
    pub freeze: bool,
    /// When environments are reclaimed (their memory lost): by default what
    /// is known of AWS; see [`ReclaimPolicy`].
    pub reclaim: ReclaimPolicy,
    /// Cap on concurrently existing environments of one function (its
    /// "reserved concurrency"); invokes beyond it get `TooManyRequestsException`.
    pub max_environments_per_function: usize,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            billing_tick: Duration::from_millis(1),
            freeze: true,
            reclaim: ReclaimPolicy::default(),
            max_environments_per_function: 8,
        }
    }
}

/// One deployed function: its code (an executable built on `lambda_runtime`)
/// and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// Function name, as used in the Invoke API path and in ARNs.
    pub name: String,
    /// The function binary; each execution environment runs one instance.
    pub executable: PathBuf,
    /// Configured memory, exposed as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and
    /// used in billing records (GB-seconds are what AWS charges).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Invocation timeout. On expiry the environment is killed and the invoke
    /// returns the function error "Task timed out after X seconds".
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra environment variables, like a function's configuration on AWS.
    #[serde(default)]
    pub environment: Vec<(String, String)>,
}

/// AWS's default memory size for a new function.
fn default_memory_mb() -> u32 {
    128
}

/// AWS's default timeout for a new function.
fn default_timeout() -> Duration {
    Duration::from_secs(3)
}

impl FunctionConfig {
    /// A function with AWS's defaults (128 MB, 3 s timeout, no extra env vars).
    pub fn new(name: impl Into<String>, executable: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            executable: executable.into(),
            memory_mb: default_memory_mb(),
            timeout: default_timeout(),
            environment: Vec::new(),
        }
    }
}

/// AWS's limits on function names: 1..=64 characters of `[A-Za-z0-9_-]`.
/// Enforcing them keeps names safe to embed in ARNs, URL paths and env vars.
fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Rejects configurations AWS would reject (or that cannot work locally)
/// before anything is started.
pub(crate) fn validate(
    config: &PlatformConfig,
    functions: &[FunctionConfig],
) -> Result<(), PlatformError> {
    let invalid = |msg: String| Err(PlatformError::InvalidConfig(msg));
    if config.billing_tick.is_zero() {
        return invalid("billing_tick must be positive".into());
    }
    if config.max_environments_per_function == 0 {
        return invalid("max_environments_per_function must be at least 1".into());
    }
    config.reclaim.validate()?;
    let mut seen = std::collections::HashSet::new();
    for f in functions {
        if !valid_function_name(&f.name) {
            return invalid(format!(
                "invalid function name {:?}: 1-64 characters of [A-Za-z0-9_-]",
                f.name
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return invalid(format!("function {:?} is defined twice", f.name));
        }
        if f.timeout.is_zero() {
            return invalid(format!("function {:?}: timeout must be positive", f.name));
        }
        if f.memory_mb == 0 {
            return invalid(format!("function {:?}: memory_mb must be positive", f.name));
        }
        if !f.executable.is_file() {
            return Err(PlatformError::MissingExecutable {
                function: f.name.clone(),
                path: f.executable.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_follow_aws_rules() {
        assert!(valid_function_name("node-1_a"));
        assert!(!valid_function_name(""));
        assert!(!valid_function_name("a:b"));
        assert!(!valid_function_name(&"x".repeat(65)));
    }

    #[test]
    fn rejects_zero_tick_and_duplicates() {
        let exe = std::env::current_exe().unwrap_or_default();
        let cfg = PlatformConfig {
            billing_tick: Duration::ZERO,
            ..PlatformConfig::default()
        };
        assert!(validate(&cfg, &[]).is_err());
        let f = FunctionConfig::new("f", exe);
        assert!(validate(&PlatformConfig::default(), std::slice::from_ref(&f)).is_ok());
        assert!(validate(&PlatformConfig::default(), &[f.clone(), f]).is_err());
    }

    #[test]
    fn rejects_invalid_reclaim_policy() {
        let cfg = PlatformConfig {
            reclaim: ReclaimPolicy {
                time_scale: 0.0,
                ..ReclaimPolicy::default()
            },
            ..PlatformConfig::default()
        };
        assert!(matches!(
            validate(&cfg, &[]),
            Err(PlatformError::Reclaim(
                super::super::reclaim::ReclaimPolicyError::TimeScale(_)
            ))
        ));
    }
}

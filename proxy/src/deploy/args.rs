//! `infinicache-proxy deploy` flags, and the settings they resolve to.
//!
//! The settings the proxy and its functions must agree on (pool size,
//! function prefix, memory, reserve, timeout, region, endpoint) are the
//! proxy's own [`Config`] settings: they come from the defaults, then the
//! same `--config` TOML file the proxy serves with, then these flags. So
//! `deploy --config proxy.toml` deploys exactly the functions that
//! `infinicache-proxy --platform aws --config proxy.toml` invokes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::DeployError;
use super::spec::{Architecture, FunctionSpec, Vpc};
use crate::config::{Config, ConfigError, MAX_POOL_SIZE};

/// The variable that tells a node how much of its memory to keep back.
pub const RESERVED_MB_VARIABLE: &str = "INFINICACHE_RESERVED_MB";

/// Lambda's limits on function memory (MB).
pub const MEMORY_MB_RANGE: std::ops::RangeInclusive<u32> = 128..=10240;

/// Lambda's longest function timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

/// Lambda's longest function name.
const MAX_FUNCTION_NAME_LEN: usize = 64;

/// Flags of `infinicache-proxy deploy`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_override_self = true)]
pub struct DeployArgs {
    /// TOML config file of the proxy: pool_size, function_prefix,
    /// node_memory_mb, node_reserved_mb, function_timeout, region and
    /// endpoint_url are taken from it; flags override them.
    #[arg(short, long, env = "INFINICACHE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Number of functions, PREFIX-0 .. PREFIX-(N-1) [default: 12].
    #[arg(long, value_name = "N")]
    pub pool_size: Option<usize>,
    /// Functions are named PREFIX-<index> [default: infinicache-node].
    #[arg(long, value_name = "PREFIX")]
    pub function_prefix: Option<String>,
    /// The node binary, a Linux executable for --architecture [default:
    /// infinicache-node next to this executable].
    #[arg(long, value_name = "PATH")]
    pub node_binary: Option<PathBuf>,
    /// Memory of each function (MB) [default: 1024].
    #[arg(long, visible_alias = "node-memory-mb", value_name = "MB")]
    pub memory_mb: Option<u32>,
    /// Memory each node keeps back for itself (MB), passed to the nodes as
    /// INFINICACHE_RESERVED_MB [default: 32].
    #[arg(long, value_name = "MB")]
    pub node_reserved_mb: Option<u32>,
    /// Function timeout, whole seconds up to 15m [default: 15m].
    #[arg(long, visible_alias = "function-timeout", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Execution role of the functions (IAM role ARN).
    #[arg(long, value_name = "ARN", required_unless_present = "delete")]
    pub role: Option<String>,
    /// Instruction set of the functions (and of the node binary).
    #[arg(long, value_enum, default_value_t = Architecture::X86_64)]
    pub architecture: Architecture,
    /// Extra environment variable of the functions (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_variable)]
    pub env: Vec<(String, String)>,
    /// VPC subnets of the functions (comma-separated; needs
    /// --security-group-ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub subnet_ids: Vec<String>,
    /// VPC security groups of the functions (comma-separated; needs
    /// --subnet-ids).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub security_group_ids: Vec<String>,
    /// AWS region [default: the AWS configuration's, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Lambda API endpoint override (e.g. an emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Delete the functions instead (functions that do not exist are fine).
    #[arg(long)]
    pub delete: bool,
    /// Functions deployed at the same time.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Longest wait for one function to become active or finish updating.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "10m")]
    pub max_wait: Duration,
}

/// `KEY=VALUE`.
fn parse_variable(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// The shared settings a config file may set; `None` when it does not, so
/// an unset region leaves the choice to the AWS configuration chain.
#[derive(Debug, Default, Deserialize)]
struct SharedSettings {
    pool_size: Option<usize>,
    function_prefix: Option<String>,
    node_memory_mb: Option<u32>,
    node_reserved_mb: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    function_timeout: Option<Duration>,
    region: Option<String>,
    endpoint_url: Option<String>,
}

impl SharedSettings {
    /// Reads the shared settings of a proxy config file. The file is also
    /// parsed as a whole [`Config`], so a misspelt setting is an error here
    /// exactly as it is when serving.
    fn from_file(path: &Path) -> Result<SharedSettings, ConfigError> {
        Config::from_file(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }
}

/// Everything a deploy needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub pool_size: usize,
    pub function_prefix: String,
    pub node_binary: PathBuf,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    /// `None` only when deleting.
    pub role: Option<String>,
    pub architecture: Architecture,
    /// The functions' environment, including [`RESERVED_MB_VARIABLE`].
    pub environment: BTreeMap<String, String>,
    pub vpc: Vpc,
    /// `None`: from the AWS configuration chain.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub delete: bool,
    pub concurrency: usize,
    pub max_wait: Duration,
}

impl DeployArgs {
    /// Resolves the flags over the config file and defaults, and checks them
    /// against Lambda's limits so mistakes surface before any API call.
    pub fn into_settings(self) -> Result<DeploySettings, DeployError> {
        let shared = match &self.config {
            Some(path) => SharedSettings::from_file(path)?,
            None => SharedSettings::default(),
        };
        let defaults = Config::default();
        let invalid =
            |setting: &'static str, reason: String| DeployError::Invalid { setting, reason };

        let pool_size = self
            .pool_size
            .or(shared.pool_size)
            .unwrap_or(defaults.pool_size);
        if pool_size == 0 || pool_size > MAX_POOL_SIZE {
            return Err(invalid(
                "pool_size",
                format!("must be 1..={MAX_POOL_SIZE}, got {pool_size}"),
            ));
        }
        let function_prefix = self
            .function_prefix
            .or(shared.function_prefix)
            .unwrap_or(defaults.function_prefix);
        if function_prefix.is_empty()
            || !function_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "function_prefix",
                "must be non-empty letters, digits, '-' or '_'".into(),
            ));
        }
        let longest = function_name(&function_prefix, pool_size - 1);
        if longest.len() > MAX_FUNCTION_NAME_LEN {
            return Err(invalid(
                "function_prefix",
                format!("{longest} is longer than Lambda's {MAX_FUNCTION_NAME_LEN} characters"),
            ));
        }
        let node_binary = match self.node_binary {
            Some(path) => path,
            None => default_node_binary(),
        };

        let memory_mb = self
            .memory_mb
            .or(shared.node_memory_mb)
            .unwrap_or(defaults.node_memory_mb);
        if !MEMORY_MB_RANGE.contains(&memory_mb) {
            return Err(invalid(
                "memory_mb",
                format!(
                    "Lambda functions have {}..={} MB, got {memory_mb}",
                    MEMORY_MB_RANGE.start(),
                    MEMORY_MB_RANGE.end()
                ),
            ));
        }
        let reserved_mb = self
            .node_reserved_mb
            .or(shared.node_reserved_mb)
            .unwrap_or(defaults.node_reserved_mb);
        if reserved_mb >= memory_mb {
            return Err(invalid(
                "node_reserved_mb",
                format!("{reserved_mb} MB leaves no room in {memory_mb} MB functions"),
            ));
        }
        let timeout = self
            .timeout
            .or(shared.function_timeout)
            .unwrap_or(defaults.function_timeout);
        if timeout < Duration::from_secs(1) || timeout > MAX_TIMEOUT || timeout.subsec_nanos() != 0
        {
            return Err(invalid(
                "timeout",
                format!(
                    "Lambda timeouts are whole seconds from 1s to 15m, got {}",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        let timeout_secs =
            u32::try_from(timeout.as_secs()).map_err(|_| invalid("timeout", "too long".into()))?;

        let mut environment = BTreeMap::new();
        for (key, value) in self.env {
            if key == RESERVED_MB_VARIABLE {
                return Err(invalid(
                    "env",
                    format!("{RESERVED_MB_VARIABLE} is set from --node-reserved-mb"),
                ));
            }
            environment.insert(key, value);
        }
        environment.insert(RESERVED_MB_VARIABLE.to_string(), reserved_mb.to_string());

        let vpc = Vpc::new(self.subnet_ids, self.security_group_ids);
        if vpc.subnet_ids().is_empty() != vpc.security_group_ids().is_empty() {
            return Err(invalid(
                "subnet_ids/security_group_ids",
                "a VPC needs both subnets and security groups".into(),
            ));
        }
        if self.concurrency == 0 {
            return Err(invalid("concurrency", "must be positive".into()));
        }
        let role = self.role.filter(|role| !role.is_empty());
        if role.is_none() && !self.delete {
            return Err(invalid("role", "--role ARN is required to deploy".into()));
        }

        Ok(DeploySettings {
            pool_size,
            function_prefix,
            node_binary,
            memory_mb,
            timeout_secs,
            role,
            architecture: self.architecture,
            environment,
            vpc,
            region: self.region.or(shared.region),
            endpoint_url: self.endpoint_url.or(shared.endpoint_url),
            delete: self.delete,
            concurrency: self.concurrency,
            max_wait: self.max_wait,
        })
    }
}

impl DeploySettings {
    /// The function names, in index order.
    pub fn function_names(&self) -> Vec<String> {
        (0..self.pool_size)
            .map(|index| function_name(&self.function_prefix, index))
            .collect()
    }

    /// The desired state of function `name` with the package `code_sha256`.
    pub fn function_spec(
        &self,
        name: &str,
        code_sha256: &str,
    ) -> Result<FunctionSpec, DeployError> {
        let role = self.role.clone().ok_or_else(|| DeployError::Invalid {
            setting: "role",
            reason: "--role ARN is required to deploy".into(),
        })?;
        Ok(FunctionSpec {
            name: name.to_string(),
            role,
            memory_mb: self.memory_mb,
            timeout_secs: self.timeout_secs,
            architecture: self.architecture,
            environment: self.environment.clone(),
            vpc: self.vpc.clone(),
            code_sha256: code_sha256.to_string(),
        })
    }
}

/// Function `index`'s name, exactly as the proxy names the functions it
/// invokes ([`Config::function_name`]).
fn function_name(prefix: &str, index: usize) -> String {
    Config {
        function_prefix: prefix.to_string(),
        ..Config::default()
    }
    .function_name(index)
}

/// `infinicache-node` next to the running executable, as the local
/// platform finds it: the workspace builds both into the same directory.
pub fn default_node_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("infinicache-node")))
        .unwrap_or_else(|| PathBuf::from("infinicache-node"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        deploy: DeployArgs,
    }

    fn settings(args: &[&str]) -> Result<DeploySettings, DeployError> {
        let cli = Cli::try_parse_from(std::iter::once("deploy").chain(args.iter().copied()))
            .map_err(|err| DeployError::Invalid {
                setting: "args",
                reason: err.to_string(),
            })?;
        cli.deploy.into_settings()
    }

    const ROLE: &str = "arn:aws:iam::000000000000:role/infinicache-node";

    #[test]
    fn defaults_match_the_proxy() {
        let settings = settings(&["--role", ROLE]).expect("valid");
        let config = Config::default();
        assert_eq!(settings.pool_size, config.pool_size);
        assert_eq!(settings.memory_mb, config.node_memory_mb);
        assert_eq!(settings.timeout_secs, 900);
        assert_eq!(settings.architecture, Architecture::X86_64);
        assert_eq!(
            settings.function_names(),
            (0..12).map(|i| config.function_name(i)).collect::<Vec<_>>()
        );
        assert_eq!(settings.environment[RESERVED_MB_VARIABLE], "32");
        assert!(settings.vpc.is_none());
        assert_eq!(settings.region, None);
        assert!(settings.node_binary.ends_with("infinicache-node"));
    }

    #[test]
    fn flags_set_the_function_spec() {
        let settings = settings(&[
            "--role",
            ROLE,
            "--pool-size",
            "3",
            "--function-prefix",
            "ic",
            "--memory-mb",
            "2048",
            "--node-reserved-mb",
            "64",
            "--timeout",
            "2m",
            "--architecture",
            "arm64",
            "--env",
            "INFINICACHE_LOG=debug",
            "--env",
            "EMPTY=",
            "--subnet-ids",
            "subnet-b,subnet-a",
            "--security-group-ids",
            "sg-1",
        ])
        .expect("valid");
        assert_eq!(settings.function_names(), ["ic-0", "ic-1", "ic-2"]);
        let spec = settings.function_spec("ic-1", "sha").expect("spec");
        assert_eq!(spec.memory_mb, 2048);
        assert_eq!(spec.timeout_secs, 120);
        assert_eq!(spec.architecture, Architecture::Arm64);
        assert_eq!(
            spec.environment,
            BTreeMap::from([
                ("EMPTY".to_string(), String::new()),
                ("INFINICACHE_LOG".to_string(), "debug".to_string()),
                (RESERVED_MB_VARIABLE.to_string(), "64".to_string()),
            ])
        );
        assert_eq!(spec.vpc.subnet_ids(), ["subnet-a", "subnet-b"]);
        assert_eq!(spec.role, ROLE);
    }

    #[test]
    fn a_config_file_provides_the_shared_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            "pool_size = 4\nfunction_prefix = \"cache\"\nnode_memory_mb = 3008\n\
             function_timeout = \"5m\"\nregion = \"eu-west-1\"\nwarmup_interval = \"0s\"\n",
        )
        .expect("write config");
        let path = path.to_str().expect("utf-8 path");
        let from_file = settings(&["--config", path, "--role", ROLE]).expect("valid");
        assert_eq!(from_file.pool_size, 4);
        assert_eq!(from_file.function_names()[3], "cache-3");
        assert_eq!(from_file.memory_mb, 3008);
        assert_eq!(from_file.timeout_secs, 300);
        assert_eq!(from_file.region.as_deref(), Some("eu-west-1"));
        let overridden =
            settings(&["--config", path, "--role", ROLE, "--pool-size", "2"]).expect("valid");
        assert_eq!(overridden.pool_size, 2);

        std::fs::write(dir.path().join("bad.toml"), "pool_sise = 4\n").expect("write");
        let bad = dir.path().join("bad.toml");
        let err = settings(&["--config", bad.to_str().expect("utf-8"), "--role", ROLE])
            .expect_err("misspelt setting");
        assert!(err.to_string().contains("pool_sise"), "{err}");
    }

    #[test]
    fn bad_settings_are_refused_before_any_call() {
        for (args, needle) in [
            (&["--pool-size", "0"][..], "pool_size"),
            (&["--memory-mb", "64"][..], "memory_mb"),
            (
                &["--memory-mb", "128", "--node-reserved-mb", "128"][..],
                "node_reserved_mb",
            ),
            (&["--timeout", "16m"][..], "timeout"),
            (&["--timeout", "1500ms"][..], "timeout"),
            (&["--function-prefix", "a b"][..], "function_prefix"),
            (
                &["--function-prefix", &"x".repeat(62)][..],
                "function_prefix",
            ),
            (&["--subnet-ids", "subnet-1"][..], "security groups"),
            (
                &["--env", "INFINICACHE_RESERVED_MB=1"][..],
                "--node-reserved-mb",
            ),
            (&["--env", "NOVALUE"][..], "KEY=VALUE"),
        ] {
            let mut all = vec!["--role", ROLE];
            all.extend_from_slice(args);
            let err = settings(&all).expect_err("invalid");
            assert!(err.to_string().contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_role_is_required_unless_deleting() {
        let err = settings(&[]).expect_err("no role");
        assert!(err.to_string().contains("--role"), "{err}");
        let delete = settings(&["--delete"]).expect("delete needs no role");
        assert!(delete.delete);
        assert!(delete.function_spec("x", "sha").is_err());
    }
}

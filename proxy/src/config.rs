//! Proxy settings.
//!
//! Every constant of the original InfiniCache (ports, pool size, function
//! memory, erasure-coding parameters, intervals, billing tick, region,
//! function prefix) is a setting here. Settings come from defaults, then an
//! optional TOML file, then command-line flags (see `main.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use infinicache::CodecParams;
use infinicache::protocol::DEFAULT_MAX_FRAME_LEN;
use serde::Deserialize;
use thiserror::Error;

/// The largest pool the proxy manages.
pub const MAX_POOL_SIZE: usize = 1000;

/// Where the RESP (Redis protocol) frontend listens by default.
pub const DEFAULT_RESP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6380);

/// A secret setting: deserialised like a string, never shown by `Debug`
/// (settings may be logged).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Whether `given` is this secret (compared in constant time).
    pub fn matches(&self, given: &[u8]) -> bool {
        crate::auth::secret_matches(self.0.as_bytes(), given)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where cache nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    /// The embedded local Lambda platform (child processes on this machine).
    Local,
    /// AWS Lambda (or any endpoint speaking its API).
    Aws,
}

/// All proxy settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    pub client_listen: SocketAddr,
    /// Where cache nodes dial in.
    pub node_listen: SocketAddr,
    /// The admin/status HTTP API (JSON): node states, counters, what the
    /// invocations cost, and on-demand warm-up and backup rounds. Unset: off.
    pub admin_listen: Option<SocketAddr>,
    /// A listener of its own for Prometheus's `GET /metrics`, which the
    /// admin listener serves too. Unset: none.
    pub metrics_listen: Option<SocketAddr>,
    /// The RESP (Redis protocol) frontend, for any Redis client. `"off"`:
    /// no RESP frontend. The address must be free: the proxy does not start
    /// without a frontend its users expect.
    #[serde(deserialize_with = "listen_or_off")]
    pub resp_listen: Option<SocketAddr>,
    /// The password RESP clients must give (`AUTH`, or `HELLO ... AUTH`)
    /// before anything else. Unset: `secret`, if that is set.
    pub resp_password: Option<Secret>,
    /// The shared secret clients must present: in the native handshake, and
    /// (unless `resp_password` is set) as the RESP password. Unset: clients
    /// are not authenticated. Nodes never use it: each invocation carries a
    /// token of its own.
    pub secret: Option<Secret>,
    /// TLS on the client listeners (native and RESP). Unset: plain TCP.
    pub tls: Option<TlsSettings>,
    /// The node listener address as nodes should dial it (defaults to the
    /// bound node listener address; set it when nodes run elsewhere).
    pub advertise_addr: Option<String>,
    /// Local platform or AWS.
    pub platform: PlatformKind,
    /// Number of function deployments (cache nodes).
    pub pool_size: usize,
    /// Functions are named `<function_prefix>-<index>`.
    pub function_prefix: String,
    /// Memory of each function (MB); with the reserve, gives node capacity.
    pub node_memory_mb: u32,
    /// Memory each node keeps back for itself (MB).
    pub node_reserved_mb: u32,
    /// Suggested erasure coding for clients that set none.
    pub data_shards: usize,
    pub parity_shards: usize,
    /// How often idle nodes are invoked to keep them warm (0 = never).
    #[serde(with = "humantime_serde")]
    pub warmup_interval: Duration,
    /// How often every node holding data is delta-synced to its backup
    /// environment (0 = no backups).
    #[serde(with = "humantime_serde")]
    pub backup_interval: Duration,
    /// The provider's billing granularity; nodes return just before a tick ends.
    #[serde(with = "humantime_serde")]
    pub billing_tick: Duration,
    /// A node returns from its invocation after being idle this long.
    #[serde(with = "humantime_serde")]
    pub node_idle_timeout: Duration,
    /// Function timeout (the invocation deadline a node must return before).
    #[serde(with = "humantime_serde")]
    pub function_timeout: Duration,
    /// How long a node may take to dial in after being invoked.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one chunk request to a node may take.
    #[serde(with = "humantime_serde")]
    pub node_request_timeout: Duration,
    /// A PUT whose chunks have not all arrived by then is abandoned.
    #[serde(with = "humantime_serde")]
    pub put_timeout: Duration,
    /// Largest frame accepted from clients and nodes (bytes).
    pub max_frame_len: u32,
    /// Largest object accepted (bytes).
    pub max_object_size: u64,
    /// AWS region. Unset: the AWS configuration chain decides (environment,
    /// profile), and the local platform calls itself us-east-1.
    pub region: Option<String>,
    /// Lambda API endpoint override (e.g. an emulator); AWS platform only.
    pub endpoint_url: Option<String>,
    /// Where the proxy keeps its files (the directory object store, by
    /// default).
    pub data_dir: PathBuf,
    /// The durable object store under the function memory (InfiniStore).
    pub cos: crate::cos::settings::CosSettings,
    /// The elastic sliding window of deployments (with the object store
    /// only: without it the whole pool is one bucket, as in InfiniCache).
    pub window: crate::cluster::window::WindowSettings,
    /// Settings of the embedded local Lambda platform.
    pub local: LocalSettings,
    /// What one client may make the proxy hold, and for how long.
    pub limits: crate::server::limits::ClientLimits,
    /// Lambda prices, to turn billed GB-seconds into dollars.
    pub pricing: crate::metrics::Pricing,
}

/// The certificate the client listeners present (`[tls]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, PEM, the proxy's own certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Settings of the embedded local Lambda platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// Where the platform's Invoke/admin API listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The node binary; default: `infinicache-node` next to the proxy binary.
    pub node_binary: Option<PathBuf>,
    /// Freeze (SIGSTOP) environments between invocations, as Lambda does.
    pub freeze: bool,
    /// Most concurrent environments of one function.
    pub max_environments_per_function: usize,
    /// When environments are reclaimed, losing the node's memory (the
    /// `[local.reclaim]` table): by default as measured on AWS (idle ones
    /// after 10-27 min, all after about 2 h), optionally with random reclaims
    /// and with simulated time running faster than real time.
    pub reclaim: crate::platform::ReclaimPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_listen: ([127, 0, 0, 1], 6378).into(),
            node_listen: ([127, 0, 0, 1], 6379).into(),
            admin_listen: Some(([127, 0, 0, 1], 6377).into()),
            metrics_listen: None,
            resp_listen: Some(DEFAULT_RESP_LISTEN),
            resp_password: None,
            secret: None,
            tls: None,
            advertise_addr: None,
            platform: PlatformKind::Local,
            pool_size: 12,
            function_prefix: "infinicache-node".into(),
            node_memory_mb: 1024,
            node_reserved_mb: 32,
            data_shards: 10,
            parity_shards: 2,
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::from_secs(300),
            billing_tick: Duration::from_millis(1),
            node_idle_timeout: Duration::from_millis(100),
            function_timeout: Duration::from_secs(900),
            connect_timeout: Duration::from_secs(30),
            node_request_timeout: Duration::from_secs(10),
            put_timeout: Duration::from_secs(60),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_object_size: 4 * 1024 * 1024 * 1024,
            region: None,
            endpoint_url: None,
            data_dir: PathBuf::from("infinicache-data"),
            cos: crate::cos::settings::CosSettings::default(),
            window: crate::cluster::window::WindowSettings::default(),
            local: LocalSettings::default(),
            limits: crate::server::limits::ClientLimits::default(),
            pricing: crate::metrics::Pricing::default(),
        }
    }
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            listen: ([127, 0, 0, 1], 0).into(),
            node_binary: None,
            freeze: true,
            max_environments_per_function: 8,
            reclaim: crate::platform::ReclaimPolicy::default(),
        }
    }
}

/// Reads a listener address, or `"off"` for none.
fn listen_or_off<'de, D>(deserializer: D) -> Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|err| serde::de::Error::custom(format!("{text:?}: {err} (or \"off\")")))
}

/// A setting that makes no sense.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

impl Config {
    /// Reads a TOML config file (missing settings keep their defaults).
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: String| Err(ConfigError::Invalid { setting, reason });
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return invalid(
                "pool_size",
                format!("must be 1..={MAX_POOL_SIZE}, got {}", self.pool_size),
            );
        }
        let params = self.default_params()?;
        if params.total_shards() > self.pool_size {
            return invalid(
                "data_shards + parity_shards",
                format!(
                    "{} chunks per object need as many nodes, but pool_size is {}",
                    params.total_shards(),
                    self.pool_size
                ),
            );
        }
        if self.node_memory_mb <= self.node_reserved_mb {
            return invalid(
                "node_memory_mb",
                format!(
                    "{} MB leaves no room next to the {} MB reserve",
                    self.node_memory_mb, self.node_reserved_mb
                ),
            );
        }
        if self.billing_tick.is_zero() {
            return invalid("billing_tick", "must be positive".into());
        }
        if self.function_timeout < Duration::from_secs(1) {
            return invalid("function_timeout", "must be at least 1s".into());
        }
        for (setting, value) in [
            ("connect_timeout", self.connect_timeout),
            ("node_request_timeout", self.node_request_timeout),
            ("put_timeout", self.put_timeout),
        ] {
            if value.is_zero() {
                return invalid(setting, "must be positive".into());
            }
        }
        if self.max_frame_len < 1024 {
            return invalid("max_frame_len", "must be at least 1024 bytes".into());
        }
        if self.function_prefix.is_empty()
            || !self
                .function_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return invalid(
                "function_prefix",
                "must be non-empty letters, digits, '-' or '_'".into(),
            );
        }
        for (name, secret) in [
            ("resp_password", &self.resp_password),
            ("secret", &self.secret),
        ] {
            if secret
                .as_ref()
                .is_some_and(|secret| secret.expose().is_empty())
            {
                return invalid(name, "must not be empty (leave it unset for none)".into());
            }
        }
        self.cos.validate()?;
        if let Err(reason) = self.limits.validate() {
            return invalid("limits", reason);
        }
        if let Err(reason) = self.pricing.validate() {
            return invalid("pricing", reason);
        }
        if let Err(reason) = self.window.validate() {
            return invalid("window", reason);
        }
        if self.local.max_environments_per_function == 0 {
            return invalid(
                "local.max_environments_per_function",
                "must be positive".into(),
            );
        }
        if let Err(err) = self.local.reclaim.validate() {
            return invalid("local.reclaim", err.to_string());
        }
        Ok(())
    }

    /// The suggested erasure-coding parameters.
    pub fn default_params(&self) -> Result<CodecParams, ConfigError> {
        CodecParams::new(self.data_shards, self.parity_shards).map_err(|err| ConfigError::Invalid {
            setting: "data_shards/parity_shards",
            reason: err.to_string(),
        })
    }

    /// Chunk capacity of one node, before it reports its own.
    pub fn node_capacity(&self) -> u64 {
        u64::from(self.node_memory_mb.saturating_sub(self.node_reserved_mb)) * 1024 * 1024
    }

    /// The function name of node `index`.
    pub fn function_name(&self, index: usize) -> String {
        format!("{}-{index}", self.function_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults");
    }

    #[test]
    fn toml_overrides_defaults() {
        let config: Config =
            toml::from_str("pool_size = 20\nwarmup_interval = \"5m\"\n[local]\nfreeze = false\n")
                .expect("parse");
        assert_eq!(config.pool_size, 20);
        assert_eq!(config.warmup_interval, Duration::from_secs(300));
        assert!(!config.local.freeze);
        assert_eq!(config.data_shards, 10);
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let text = include_str!("../../docs/proxy.example.toml");
        let example: Config = toml::from_str(text).expect("docs/proxy.example.toml parses");
        example.validate().expect("and is valid");
        assert_eq!(format!("{example:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn tls_needs_both_a_certificate_and_a_key() {
        let config: Config =
            toml::from_str("[tls]\ncert = \"proxy.pem\"\nkey = \"proxy.key\"\n").expect("parse");
        assert_eq!(
            config.tls,
            Some(TlsSettings {
                cert: "proxy.pem".into(),
                key: "proxy.key".into()
            })
        );
        assert!(toml::from_str::<Config>("[tls]\ncert = \"proxy.pem\"\n").is_err());
        assert!(
            toml::from_str::<Config>("[tls]\ncert = \"a\"\nkey = \"b\"\nca = \"c\"\n").is_err()
        );
    }

    #[test]
    fn the_resp_frontend_can_be_moved_turned_off_and_protected() {
        let config: Config =
            toml::from_str("resp_listen = \"0.0.0.0:7000\"\nresp_password = \"hunter2\"\n")
                .expect("parse");
        assert_eq!(config.resp_listen, Some(([0, 0, 0, 0], 7000).into()));
        assert_eq!(
            config.resp_password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "secrets are not shown"
        );
        let off: Config = toml::from_str("resp_listen = \"off\"\n").expect("parse");
        assert_eq!(off.resp_listen, None);
        assert!(toml::from_str::<Config>("resp_listen = \"nowhere\"\n").is_err());
        let empty = Config {
            resp_password: Some(Secret::new("")),
            ..Config::default()
        };
        assert!(empty.validate().is_err());
    }

    #[test]
    fn unknown_settings_are_rejected() {
        assert!(toml::from_str::<Config>("pool_sise = 3").is_err());
    }

    #[test]
    fn inconsistent_settings_are_rejected() {
        let small_pool = Config {
            pool_size: 5,
            ..Config::default()
        };
        assert!(small_pool.validate().is_err());
        let no_room = Config {
            node_memory_mb: 32,
            ..Config::default()
        };
        assert!(no_room.validate().is_err());
        let bad_k = Config {
            data_shards: 0,
            ..Config::default()
        };
        assert!(bad_k.validate().is_err());
    }
}

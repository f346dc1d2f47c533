//! What a soak run does: how many clients, for how long, which mix of
//! operations on which sizes, against which cache, and how hard the platform
//! is made to reclaim environments meanwhile.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

pub use crate::bench::options::{parse_size, size_label};

/// The three operations of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Put,
    Get,
    Delete,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Put, Op::Get, Op::Delete];

    /// Upper case, as in tables and error kinds (`PUT`, `GET`, `DELETE`).
    pub fn label(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Delete => "DELETE",
        }
    }

    /// Position in [`Op::ALL`], for per-operation arrays.
    pub fn index(self) -> usize {
        match self {
            Op::Put => 0,
            Op::Get => 1,
            Op::Delete => 2,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Relative weights of PUT, GET and DELETE: `put=30,get=60,delete=10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub put: u32,
    pub get: u32,
    pub delete: u32,
}

impl Default for Mix {
    /// Reads dominate, as in a cache; deletes are frequent enough that
    /// every key is deleted (and must stay deleted) many times an hour.
    fn default() -> Self {
        Mix {
            put: 30,
            get: 60,
            delete: 10,
        }
    }
}

impl Mix {
    fn total(&self) -> u64 {
        u64::from(self.put) + u64::from(self.get) + u64::from(self.delete)
    }

    /// Draws an operation with these weights.
    pub fn pick(&self, rng: &mut impl Rng) -> Op {
        let total = self.total().max(1);
        let draw = rng.random_range(0..total);
        if draw < u64::from(self.put) {
            Op::Put
        } else if draw < u64::from(self.put) + u64::from(self.get) {
            Op::Get
        } else {
            Op::Delete
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "put={},get={},delete={}",
            self.put, self.get, self.delete
        )
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `put=30,get=60,delete=10`; an operation left out has weight 0.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut mix = Mix {
            put: 0,
            get: 0,
            delete: 0,
        };
        for part in text.split(',') {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("bad mix item {part:?}: expected e.g. get=60"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("bad weight in {part:?}: expected a whole number"))?;
            match name.trim().to_ascii_lowercase().as_str() {
                "put" | "set" => mix.put = weight,
                "get" => mix.get = weight,
                "delete" | "del" => mix.delete = weight,
                other => {
                    return Err(format!(
                        "unknown operation {other:?} in the mix (expected put, get, delete)"
                    ));
                }
            }
        }
        Ok(mix)
    }
}

/// How value sizes are drawn between the smallest and the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeDistribution {
    /// Every order of magnitude equally likely: mostly small values with a
    /// steady share of large ones, as in object caches.
    LogUniform,
    /// Every size equally likely.
    Uniform,
}

impl FromStr for SizeDistribution {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "log-uniform" | "loguniform" | "log" => Ok(SizeDistribution::LogUniform),
            "uniform" => Ok(SizeDistribution::Uniform),
            other => Err(format!(
                "unknown size distribution {other:?} (expected log-uniform or uniform)"
            )),
        }
    }
}

/// Value sizes: a distribution over `min..=max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub min: usize,
    pub max: usize,
    pub distribution: SizeDistribution,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            min: 1024,
            max: 4 << 20,
            distribution: SizeDistribution::LogUniform,
        }
    }
}

impl Sizes {
    /// Draws a size.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        if self.min >= self.max {
            return self.min;
        }
        match self.distribution {
            SizeDistribution::Uniform => rng.random_range(self.min..=self.max),
            SizeDistribution::LogUniform => {
                // Sizes of 0 have no logarithm: draw from 1 and clamp.
                let lo = (self.min.max(1) as f64).ln();
                let hi = (self.max as f64).ln();
                let size = rng.random_range(lo..=hi).exp().round() as usize;
                size.clamp(self.min, self.max)
            }
        }
    }

    /// The mean size, for the memory estimate.
    pub fn mean(&self) -> f64 {
        let (min, max) = (self.min as f64, self.max as f64);
        if self.min >= self.max {
            return min;
        }
        match self.distribution {
            SizeDistribution::Uniform => (min + max) / 2.0,
            SizeDistribution::LogUniform => (max - min.max(1.0)) / (max / min.max(1.0)).ln(),
        }
    }
}

impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            return write!(f, "{}", size_label(self.min));
        }
        let dist = match self.distribution {
            SizeDistribution::LogUniform => "log-uniform",
            SizeDistribution::Uniform => "uniform",
        };
        write!(
            f,
            "{dist} {}..{}",
            size_label(self.min),
            size_label(self.max)
        )
    }
}

/// Which environments the explicit reclaimer may kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReclaimTarget {
    /// Any live environment, serving or not: a crash under load, harsher
    /// than AWS (which recycles environments between invocations).
    Any,
    /// Only environments between invocations, as AWS reclaims them.
    Idle,
}

impl FromStr for ReclaimTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "any" => Ok(ReclaimTarget::Any),
            "idle" => Ok(ReclaimTarget::Idle),
            other => Err(format!(
                "unknown reclaim target {other:?} (expected any or idle)"
            )),
        }
    }
}

impl fmt::Display for ReclaimTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReclaimTarget::Any => "any",
            ReclaimTarget::Idle => "idle",
        })
    }
}

/// The cache the tool starts: the release proxy with its local platform,
/// configured as in production (warm-ups, backups, the directory object
/// store) but on a compressed clock so reclaims come often.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub pool_size: usize,
    /// Memory of each function (MB).
    pub node_memory_mb: u32,
    /// Simulated seconds per real second: the platform's lifetimes are
    /// divided by it (and its random rate multiplied); so are the warm-up
    /// and backup intervals below.
    pub time_scale: f64,
    /// Random reclaims per idle environment per simulated hour.
    pub random_reclaims_per_hour: f64,
    /// Simulated warm-up interval (zero: none).
    pub warmup_interval: Duration,
    /// Simulated backup interval (zero: none).
    pub backup_interval: Duration,
    /// The object store under the function memory: `dir` (the default, so
    /// no acknowledged write may go missing) or `off`.
    pub cos: String,
    /// More proxy flags, appended last (they win).
    pub extra_args: Vec<String>,
}

impl Default for CacheSettings {
    /// A pool of 24 functions of 1 GB; time runs 30 times faster, so an
    /// environment idle for its 10-27 simulated minutes goes after 20-54
    /// real seconds, every environment is recycled after about four real
    /// minutes, and each idle one is also reclaimed at random twice a
    /// simulated hour (once a real minute). Warm-up every simulated minute
    /// and backup every five, as the paper runs them.
    fn default() -> Self {
        CacheSettings {
            pool_size: 24,
            node_memory_mb: 1024,
            time_scale: 30.0,
            random_reclaims_per_hour: 2.0,
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::from_secs(300),
            cos: "dir".into(),
            extra_args: Vec::new(),
        }
    }
}

/// A proxy that is already running.
#[derive(Debug, Clone, Default)]
pub struct ExistingCache {
    /// Its client listener.
    pub proxy: String,
    /// Its admin API (`/status`): counters before and after.
    pub admin: Option<SocketAddr>,
    /// Its local platform's Invoke/admin API: explicit reclaims.
    pub platform: Option<SocketAddr>,
    /// Its process id: peak memory from `/proc`.
    pub pid: Option<u32>,
}

/// Which cache a run drives.
#[derive(Debug, Clone)]
pub enum Target {
    Start(CacheSettings),
    Existing(ExistingCache),
}

/// Everything one soak run does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Concurrent clients, each issuing one operation at a time on keys of
    /// its own.
    pub clients: usize,
    /// `infinicache::Client` connections the clients share (0: one each).
    pub connections: usize,
    /// Keys per client.
    pub keys_per_client: usize,
    /// How long the clients run (then every key is read once more).
    pub duration: Duration,
    pub mix: Mix,
    pub sizes: Sizes,
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Time limit of one operation.
    pub op_timeout: Duration,
    /// Reclaim one environment through the platform's admin API this often
    /// (zero: never).
    pub reclaim_every: Duration,
    pub reclaim_target: ReclaimTarget,
    /// After the timed phase, read every key once and check it.
    pub final_check: bool,
    /// Do not count GETs that found nothing where a value was written as
    /// failures: for a cache without an object store, which may lose data
    /// by design.
    pub allow_misses: bool,
    /// The proxy's client secret, if it requires one.
    pub secret: Option<String>,
    pub target: Target,
}

impl Default for Settings {
    /// 200 clients for five minutes, 8 keys each, sizes log-uniform from
    /// 1 KiB to 4 MiB (mean about 500 KB, so about 0.8 GB live), RS(10+2),
    /// one environment reclaimed every 10 s on top of the platform's own.
    fn default() -> Self {
        Settings {
            clients: 200,
            connections: 0,
            keys_per_client: 8,
            duration: Duration::from_secs(300),
            mix: Mix::default(),
            sizes: Sizes::default(),
            data_shards: 10,
            parity_shards: 2,
            op_timeout: Duration::from_secs(60),
            reclaim_every: Duration::from_secs(10),
            reclaim_target: ReclaimTarget::Any,
            final_check: true,
            allow_misses: false,
            secret: None,
            target: Target::Start(CacheSettings::default()),
        }
    }
}

impl Settings {
    /// The number of client connections.
    pub fn connection_count(&self) -> usize {
        if self.connections == 0 {
            self.clients
        } else {
            self.connections.min(self.clients)
        }
    }

    /// Checks the settings; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 || self.keys_per_client == 0 {
            return Err("clients and keys per client must be positive".into());
        }
        if self.clients > u32::MAX as usize || self.keys_per_client > u32::MAX as usize {
            return Err("too many clients or keys".into());
        }
        if self.duration.is_zero() || self.op_timeout.is_zero() {
            return Err("the duration and the operation timeout must be positive".into());
        }
        if self.mix.total() == 0 {
            return Err("the mix needs at least one operation with a positive weight".into());
        }
        if self.sizes.min > self.sizes.max {
            return Err(format!(
                "the smallest size ({}) exceeds the largest ({})",
                self.sizes.min, self.sizes.max
            ));
        }
        if self.data_shards == 0 {
            return Err("data shards must be at least 1".into());
        }
        if let Target::Start(cache) = &self.target {
            let needed = self.data_shards + self.parity_shards;
            if cache.pool_size < needed {
                return Err(format!(
                    "RS({}+{}) needs {needed} functions; the pool has {}",
                    self.data_shards, self.parity_shards, cache.pool_size
                ));
            }
            if !(cache.time_scale.is_finite() && cache.time_scale > 0.0) {
                return Err(format!(
                    "the time scale must be positive, got {}",
                    cache.time_scale
                ));
            }
            if !(cache.random_reclaims_per_hour.is_finite()
                && cache.random_reclaims_per_hour >= 0.0)
            {
                return Err("random reclaims per hour must be 0 or more".into());
            }
            if !matches!(cache.cos.as_str(), "dir" | "off") {
                return Err(format!(
                    "the object store must be dir or off, not {:?}",
                    cache.cos
                ));
            }
        }
        Ok(())
    }

    /// The proxy flags a started cache runs with (none for an existing one).
    pub fn proxy_args(&self) -> Vec<String> {
        let Target::Start(cache) = &self.target else {
            return Vec::new();
        };
        let scale = cache.time_scale;
        let mut args: Vec<String> = [
            ("--pool-size", cache.pool_size.to_string()),
            ("--data-shards", self.data_shards.to_string()),
            ("--parity-shards", self.parity_shards.to_string()),
            ("--node-memory-mb", cache.node_memory_mb.to_string()),
            ("--time-scale", scale.to_string()),
            (
                "--random-reclaims-per-hour",
                cache.random_reclaims_per_hour.to_string(),
            ),
            ("--warmup-interval", scaled(cache.warmup_interval, scale)),
            ("--backup-interval", scaled(cache.backup_interval, scale)),
            ("--cos", cache.cos.clone()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect();
        if let Some(secret) = &self.secret {
            args.extend(["--secret".to_string(), secret.clone()]);
        }
        args.extend(cache.extra_args.iter().cloned());
        args
    }

    /// The proxy flags with the secret masked, for reports and logs.
    pub fn proxy_args_for_display(&self) -> Vec<String> {
        let mut args = self.proxy_args();
        for i in 1..args.len() {
            if args[i - 1] == "--secret" {
                args[i] = "<redacted>".into();
            }
        }
        args
    }
}

/// `duration` of simulated time in real milliseconds, as a proxy flag.
fn scaled(duration: Duration, scale: f64) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    let millis = (duration.as_secs_f64() * 1000.0 / scale).round().max(1.0);
    format!("{}ms", millis as u64)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn mixes_parse_and_draw_by_weight() {
        let mix: Mix = "put=1,get=3".parse().expect("valid mix");
        assert_eq!(
            mix,
            Mix {
                put: 1,
                get: 3,
                delete: 0
            }
        );
        assert!("put=1,fly=2".parse::<Mix>().is_err());
        assert!("put".parse::<Mix>().is_err());
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[mix.pick(&mut rng).index()] += 1;
        }
        assert_eq!(counts[Op::Delete.index()], 0);
        assert!((800..1200).contains(&counts[Op::Put.index()]), "{counts:?}");
    }

    #[test]
    fn sizes_stay_in_range_and_log_uniform_favours_small() {
        let sizes = Sizes::default();
        let mut rng = StdRng::seed_from_u64(1);
        let drawn: Vec<usize> = (0..10_000).map(|_| sizes.pick(&mut rng)).collect();
        assert!(drawn.iter().all(|&s| (1024..=4 << 20).contains(&s)));
        // Half the draws lie below the geometric mean (64 KiB).
        let below = drawn.iter().filter(|&&s| s < 64 * 1024).count();
        assert!((4500..5500).contains(&below), "{below}");
        let mean = drawn.iter().sum::<usize>() as f64 / drawn.len() as f64;
        assert!((mean / sizes.mean() - 1.0).abs() < 0.1, "{mean}");
        let fixed = Sizes {
            min: 10,
            max: 10,
            distribution: SizeDistribution::Uniform,
        };
        assert_eq!(fixed.pick(&mut rng), 10);
        assert_eq!(fixed.to_string(), "10B");
    }

    #[test]
    fn proxy_args_scale_intervals_and_hide_the_secret() {
        let settings = Settings {
            secret: Some("hunter2".into()),
            ..Settings::default()
        };
        let args = settings.proxy_args();
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        assert_eq!(value("--warmup-interval").as_deref(), Some("2000ms"));
        assert_eq!(value("--backup-interval").as_deref(), Some("10000ms"));
        assert_eq!(value("--secret").as_deref(), Some("hunter2"));
        let shown = settings.proxy_args_for_display().join(" ");
        assert!(!shown.contains("hunter2") && shown.contains("<redacted>"));
        assert!(settings.validate().is_ok());
        let bad = Settings {
            data_shards: 30,
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
    }
}

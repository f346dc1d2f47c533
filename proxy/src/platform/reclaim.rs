//! When the platform reclaims execution environments, modelled on what is
//! known of AWS Lambda.
//!
//! AWS documents none of this, yet InfiniCache lives or dies by it: a
//! reclaimed environment takes its cached chunks with it. What published
//! measurements of AWS Lambda report (Wang et al., "Peeking Behind the
//! Curtains of Serverless Platforms", USENIX ATC'18; the InfiniCache paper,
//! FAST'20; later cold-start studies) is reproduced by three mechanisms:
//!
//! * **idle lifetime** — an environment nobody invokes is reclaimed after an
//!   idle time that varies between roughly 10 and 27 minutes. Each time an
//!   environment becomes idle a fresh idle lifetime is drawn uniformly from
//!   the configured range, so environments of one pool do not all vanish at
//!   once, and keeping one warm is a matter of probability, as on AWS;
//! * **maximum lifetime** — even a busy environment is recycled after a few
//!   hours (about 2 h). AWS never kills an environment in the middle of an
//!   invocation, so an environment past its lifetime is recycled at its next
//!   idle moment: right after the invocation that was running completes, or
//!   when the reaper finds it idle. The lifetime is drawn once per
//!   environment, uniformly from a range (default 1h50m..2h10m), so a pool
//!   started together is not recycled in one instant;
//! * **random reclaims** — AWS also reclaims environments for its own reasons
//!   (host maintenance, rebalancing). Modelled as a Poisson process over each
//!   environment's idle time; off by default, useful as a stress test.
//!
//! Hours-long policies make experiments slow, so [`ReclaimPolicy::time_scale`]
//! runs simulated time faster than real time: every duration of the policy is
//! divided by it and the random rate multiplied by it. With `time_scale = 60`
//! an hour of AWS behaviour plays out in a minute.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration drawn uniformly from `min..=max` (`min == max`: exactly that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeRange {
    /// Shortest lifetime (simulated time).
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    /// Longest lifetime (simulated time).
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

impl LifetimeRange {
    /// A range from `min` to `max` (checked by [`ReclaimPolicy::validate`]).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }

    /// Exactly `lifetime`, without jitter.
    pub fn fixed(lifetime: Duration) -> Self {
        Self::new(lifetime, lifetime)
    }

    /// Draws a lifetime uniformly from `min..=max` (simulated time).
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let (lo, hi) = (nanos(self.min), nanos(self.max));
        if lo >= hi {
            return self.min;
        }
        Duration::from_nanos(rng.random_range(lo..=hi))
    }

    fn validate(&self, setting: &'static str) -> Result<(), ReclaimPolicyError> {
        if self.min.is_zero() || self.max.is_zero() {
            return Err(ReclaimPolicyError::ZeroLifetime { setting });
        }
        if self.min > self.max {
            return Err(ReclaimPolicyError::InvertedRange {
                setting,
                min: self.min,
                max: self.max,
            });
        }
        Ok(())
    }
}

/// Why a lifetime given as text could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid lifetime {text:?}: {reason} (expected a duration such as \"15m\", or a range such as \"10m..27m\")"
)]
pub struct ParseLifetimeError {
    text: String,
    reason: String,
}

/// `"15m"` (exactly 15 minutes) or `"10m..27m"` (uniformly in between): the
/// form used by command-line flags and accepted in config files.
impl FromStr for LifetimeRange {
    type Err = ParseLifetimeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = |part: &str| {
            humantime::parse_duration(part.trim()).map_err(|err| ParseLifetimeError {
                text: text.to_owned(),
                reason: err.to_string(),
            })
        };
        match text.split_once("..") {
            Some((min, max)) => Ok(Self::new(parse(min)?, parse(max)?)),
            None => Ok(Self::fixed(parse(text)?)),
        }
    }
}

impl fmt::Display for LifetimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = humantime::format_duration;
        if self.min == self.max {
            write!(f, "{}", h(self.min))
        } else {
            write!(f, "{}..{}", h(self.min), h(self.max))
        }
    }
}

/// A policy that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReclaimPolicyError {
    /// `time_scale` is zero, negative, infinite or NaN.
    #[error("time_scale must be a finite number > 0, got {0}")]
    TimeScale(f64),
    /// `random_per_hour` is negative, infinite or NaN.
    #[error("random_per_hour must be a finite number >= 0, got {0}")]
    RandomRate(f64),
    /// A lifetime range with `min > max`.
    #[error("{setting}: min ({min:?}) is greater than max ({max:?})")]
    InvertedRange {
        /// `idle_lifetime` or `max_lifetime`.
        setting: &'static str,
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// A lifetime of zero (use "never" to turn the mechanism off).
    #[error("{setting}: lifetimes must be positive (use \"never\" to turn it off)")]
    ZeroLifetime {
        /// `idle_lifetime` or `max_lifetime`.
        setting: &'static str,
    },
}

/// When the platform reclaims environments (see the module docs). In TOML:
///
/// ```toml
/// [local.reclaim]
/// idle_lifetime = { min = "10m", max = "27m" }   # or "15m", or "never"
/// max_lifetime = { min = "1h 50m", max = "2h 10m" }
/// random_per_hour = 0.0
/// time_scale = 1.0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReclaimPolicy {
    /// Reclaim an environment idle for longer than a lifetime drawn from this
    /// range each time it becomes idle; `None` ("never"): keep idle
    /// environments forever.
    #[serde(with = "optional_lifetime")]
    pub idle_lifetime: Option<LifetimeRange>,
    /// Recycle an environment older than a lifetime drawn from this range
    /// when it was created, at its next idle moment; `None` ("never"):
    /// environments may live forever.
    #[serde(with = "optional_lifetime")]
    pub max_lifetime: Option<LifetimeRange>,
    /// Random reclaims of idle environments, per environment per simulated
    /// hour (a Poisson process over idle time).
    pub random_per_hour: f64,
    /// Simulated time runs this many times faster than real time.
    pub time_scale: f64,
}

impl Default for ReclaimPolicy {
    /// What is known of AWS: idle environments last 10 to 27 minutes, every
    /// environment is recycled after about 2 hours (±10 minutes of jitter),
    /// no random reclaims, real time.
    fn default() -> Self {
        Self {
            idle_lifetime: Some(LifetimeRange::new(
                Duration::from_secs(10 * 60),
                Duration::from_secs(27 * 60),
            )),
            max_lifetime: Some(LifetimeRange::new(
                Duration::from_secs(110 * 60),
                Duration::from_secs(130 * 60),
            )),
            random_per_hour: 0.0,
            time_scale: 1.0,
        }
    }
}

/// How often the reaper runs at most (it must still notice expiries in time
/// when nothing is scaled).
const MAX_REAPER_PERIOD: Duration = Duration::from_secs(1);
/// How often the reaper runs at least: finer checks would only burn CPU.
const MIN_REAPER_PERIOD: Duration = Duration::from_millis(10);

impl ReclaimPolicy {
    /// A policy that never reclaims anything.
    pub fn never() -> Self {
        Self {
            idle_lifetime: None,
            max_lifetime: None,
            random_per_hour: 0.0,
            time_scale: 1.0,
        }
    }

    /// Rejects values that would make the policy meaningless (or make the
    /// arithmetic below overflow or divide by zero).
    pub fn validate(&self) -> Result<(), ReclaimPolicyError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ReclaimPolicyError::TimeScale(self.time_scale));
        }
        if !(self.random_per_hour.is_finite() && self.random_per_hour >= 0.0) {
            return Err(ReclaimPolicyError::RandomRate(self.random_per_hour));
        }
        if let Some(range) = &self.idle_lifetime {
            range.validate("idle_lifetime")?;
        }
        if let Some(range) = &self.max_lifetime {
            range.validate("max_lifetime")?;
        }
        Ok(())
    }

    /// A simulated duration in real time: divided by the time scale,
    /// saturating (an absurdly slow scale means "practically never").
    pub fn to_real(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() / self.time_scale)
            .unwrap_or(Duration::MAX)
    }

    /// Random reclaims per idle environment per real second.
    pub fn random_rate_per_real_second(&self) -> f64 {
        self.random_per_hour * self.time_scale / 3600.0
    }

    /// Draws a real-time idle lifetime (`None`: never reclaimed when idle).
    pub fn sample_idle_lifetime(&self, rng: &mut impl Rng) -> Option<Duration> {
        self.idle_lifetime.map(|r| self.to_real(r.sample(rng)))
    }

    /// Draws a real-time maximum lifetime (`None`: lives forever).
    pub fn sample_max_lifetime(&self, rng: &mut impl Rng) -> Option<Duration> {
        self.max_lifetime.map(|r| self.to_real(r.sample(rng)))
    }

    /// Probability that an environment idle for `elapsed` (real time) is
    /// randomly reclaimed in that interval: `1 - e^(-rate·elapsed)`, which is
    /// `rate·elapsed` for short intervals but never exceeds 1.
    pub fn random_probability(&self, elapsed: Duration) -> f64 {
        let rate = self.random_rate_per_real_second();
        if rate <= 0.0 {
            return 0.0;
        }
        -(-rate * elapsed.as_secs_f64()).exp_m1()
    }

    /// How often the reaper checks environments, or `None` if nothing is
    /// ever reclaimed. A quarter of the shortest (scaled) lifetime or of the
    /// mean time between random reclaims keeps expiries late by at most 25 %,
    /// bounded to 10 ms..1 s.
    pub fn reaper_period(&self) -> Option<Duration> {
        let rate = self.random_rate_per_real_second();
        if self.idle_lifetime.is_none() && self.max_lifetime.is_none() && rate <= 0.0 {
            return None;
        }
        let mut period = MAX_REAPER_PERIOD;
        for range in [self.idle_lifetime, self.max_lifetime]
            .into_iter()
            .flatten()
        {
            period = period.min(self.to_real(range.min) / 4);
        }
        if rate > 0.0 {
            let quarter_mean = Duration::try_from_secs_f64(0.25 / rate).unwrap_or(Duration::MAX);
            period = period.min(quarter_mean);
        }
        Some(period.max(MIN_REAPER_PERIOD))
    }
}

/// `Option<LifetimeRange>` in config files: a `{min, max}` table, a single
/// duration (`"15m"`), a range (`"10m..27m"`), or `"never"` for `None` (TOML
/// has no null, and a missing key means "the default", not "off").
mod optional_lifetime {
    use super::*;

    const NEVER: &str = "never";

    pub fn serialize<S: Serializer>(
        value: &Option<LifetimeRange>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(range) => range.serialize(serializer),
            None => serializer.serialize_str(NEVER),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<LifetimeRange>, D::Error> {
        deserializer.deserialize_any(OptionalLifetime)
    }

    struct OptionalLifetime;

    impl<'de> Visitor<'de> for OptionalLifetime {
        type Value = Option<LifetimeRange>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a table {min = "10m", max = "27m"}, a duration ("15m"), a range ("10m..27m") or "never""#)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            match text.trim() {
                NEVER | "off" | "none" => Ok(None),
                other => other.parse().map(Some).map_err(E::custom),
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            LifetimeRange::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
}

/// Why an environment was reclaimed (shutdown, timeouts and crashes are
/// not reclaims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReclaimReason {
    /// Idle for longer than its idle lifetime.
    Idle,
    /// Older than its maximum lifetime.
    MaxLifetime,
    /// Random reclaim.
    Random,
    /// Reclaimed through the admin API (or [`super::LocalPlatform::reclaim`]).
    Admin,
}

/// Reclaims so far, by reason (`GET /admin/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReclaimCounts {
    /// Idle environments past their idle lifetime.
    pub idle: u64,
    /// Environments recycled past their maximum lifetime.
    pub max_lifetime: u64,
    /// Random reclaims.
    pub random: u64,
    /// Reclaims requested through the admin API or the Rust API.
    pub admin: u64,
}

/// Platform counters, as served by `GET /admin/stats` and
/// [`super::LocalPlatform::stats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformStats {
    /// Environments started (each is a cold start of its first invocation).
    pub cold_starts: u64,
    /// Environments reclaimed, by reason.
    pub reclaims: ReclaimCounts,
    /// The policy's time scale, to read the counts against.
    pub time_scale: f64,
}

/// The policy in force and the counters, shared by the reaper, the functions
/// and their environments.
#[derive(Debug)]
pub(crate) struct Reclaimer {
    pub policy: ReclaimPolicy,
    cold_starts: AtomicU64,
    idle: AtomicU64,
    max_lifetime: AtomicU64,
    random: AtomicU64,
    admin: AtomicU64,
}

impl Reclaimer {
    pub fn new(policy: ReclaimPolicy) -> Self {
        Self {
            policy,
            cold_starts: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            max_lifetime: AtomicU64::new(0),
            random: AtomicU64::new(0),
            admin: AtomicU64::new(0),
        }
    }

    /// When an environment becoming idle at `now` expires (`None`: never).
    pub fn idle_deadline(&self, now: Instant) -> Option<Instant> {
        let lifetime = self.policy.sample_idle_lifetime(&mut rand::rng())?;
        now.checked_add(lifetime)
    }

    /// When an environment created at `created` is due for recycling.
    pub fn retire_at(&self, created: Instant) -> Option<Instant> {
        let lifetime = self.policy.sample_max_lifetime(&mut rand::rng())?;
        created.checked_add(lifetime)
    }

    pub fn count_cold_start(&self) {
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self, reason: ReclaimReason) {
        let counter = match reason {
            ReclaimReason::Idle => &self.idle,
            ReclaimReason::MaxLifetime => &self.max_lifetime,
            ReclaimReason::Random => &self.random,
            ReclaimReason::Admin => &self.admin,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> PlatformStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PlatformStats {
            cold_starts: get(&self.cold_starts),
            reclaims: ReclaimCounts {
                idle: get(&self.idle),
                max_lifetime: get(&self.max_lifetime),
                random: get(&self.random),
                admin: get(&self.admin),
            },
            time_scale: self.policy.time_scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const MIN: Duration = Duration::from_secs(60);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn defaults_are_valid_and_aws_like() {
        let p = ReclaimPolicy::default();
        p.validate().expect("defaults are valid");
        assert_eq!(
            p.idle_lifetime,
            Some(LifetimeRange::new(10 * MIN, 27 * MIN))
        );
        let max = p.max_lifetime.expect("max lifetime on by default");
        assert!(max.min < secs(7200) && max.max > secs(7200));
        assert_eq!(p.random_per_hour, 0.0);
        assert_eq!(p.time_scale, 1.0);
        ReclaimPolicy::never().validate().expect("never is valid");
        assert_eq!(ReclaimPolicy::never().reaper_period(), None);
    }

    #[test]
    fn samples_stay_within_bounds_and_cover_the_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let range = LifetimeRange::new(10 * MIN, 27 * MIN);
        let samples: Vec<_> = (0..2000).map(|_| range.sample(&mut rng)).collect();
        assert!(samples.iter().all(|d| (10 * MIN..=27 * MIN).contains(d)));
        // Uniform: both ends of the range are reached.
        assert!(samples.iter().any(|d| *d < 11 * MIN));
        assert!(samples.iter().any(|d| *d > 26 * MIN));
        let fixed = LifetimeRange::fixed(secs(5));
        assert!((0..100).all(|_| fixed.sample(&mut rng) == secs(5)));
    }

    #[test]
    fn time_scale_divides_durations_and_multiplies_the_rate() {
        let mut rng = StdRng::seed_from_u64(1);
        let policy = ReclaimPolicy {
            idle_lifetime: Some(LifetimeRange::fixed(MIN)),
            max_lifetime: Some(LifetimeRange::new(60 * MIN, 120 * MIN)),
            random_per_hour: 2.0,
            time_scale: 60.0,
        };
        assert_eq!(policy.to_real(MIN), secs(1));
        assert_eq!(policy.sample_idle_lifetime(&mut rng), Some(secs(1)));
        for _ in 0..100 {
            let max = policy.sample_max_lifetime(&mut rng).expect("max lifetime");
            assert!((secs(60)..=secs(120)).contains(&max), "{max:?}");
        }
        // 2 per simulated hour at 60x: 2 per real minute.
        let rate = policy.random_rate_per_real_second();
        assert!((rate - 2.0 / 60.0).abs() < 1e-12, "{rate}");
        let unscaled = ReclaimPolicy {
            time_scale: 1.0,
            ..policy.clone()
        };
        assert_eq!(unscaled.sample_idle_lifetime(&mut rng), Some(MIN));
        // Absurdly slow time saturates instead of panicking.
        let glacial = ReclaimPolicy {
            time_scale: 1e-300,
            ..policy
        };
        assert_eq!(glacial.to_real(MIN), Duration::MAX);
        assert!(Instant::now().checked_add(glacial.to_real(MIN)).is_none());
    }

    #[test]
    fn random_probability_is_poisson() {
        let policy = ReclaimPolicy {
            random_per_hour: 3600.0,
            ..ReclaimPolicy::never()
        };
        // One per second: P(at least one in 1 s) = 1 - 1/e.
        let p = policy.random_probability(secs(1));
        assert!((p - (1.0 - (-1.0f64).exp())).abs() < 1e-12, "{p}");
        // Small intervals: about rate * dt.
        let p = policy.random_probability(Duration::from_millis(1));
        assert!((p - 0.001).abs() < 1e-6, "{p}");
        // Never above 1, zero when off.
        assert!(policy.random_probability(secs(1_000_000)) <= 1.0);
        assert_eq!(ReclaimPolicy::never().random_probability(secs(10)), 0.0);
    }

    #[test]
    fn reaper_period_follows_the_scaled_durations() {
        assert_eq!(ReclaimPolicy::default().reaper_period(), Some(secs(1)));
        let fast = ReclaimPolicy {
            idle_lifetime: Some(LifetimeRange::fixed(MIN)),
            time_scale: 60.0,
            ..ReclaimPolicy::never()
        };
        assert_eq!(fast.reaper_period(), Some(Duration::from_millis(250)));
        let faster = ReclaimPolicy {
            time_scale: 600_000.0,
            ..fast
        };
        assert_eq!(faster.reaper_period(), Some(MIN_REAPER_PERIOD));
        let random = ReclaimPolicy {
            random_per_hour: 3600.0 * 10.0,
            ..ReclaimPolicy::never()
        };
        assert_eq!(random.reaper_period(), Some(Duration::from_millis(25)));
    }

    #[test]
    fn validation_rejects_nonsense() {
        let base = ReclaimPolicy::default();
        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let p = ReclaimPolicy {
                time_scale: scale,
                ..base.clone()
            };
            assert!(
                matches!(p.validate(), Err(ReclaimPolicyError::TimeScale(_))),
                "{scale}"
            );
        }
        for rate in [-0.5, f64::NAN, f64::INFINITY] {
            let p = ReclaimPolicy {
                random_per_hour: rate,
                ..base.clone()
            };
            assert!(matches!(
                p.validate(),
                Err(ReclaimPolicyError::RandomRate(_))
            ));
        }
        let inverted = ReclaimPolicy {
            idle_lifetime: Some(LifetimeRange::new(secs(10), secs(5))),
            ..base.clone()
        };
        assert!(matches!(
            inverted.validate(),
            Err(ReclaimPolicyError::InvertedRange {
                setting: "idle_lifetime",
                ..
            })
        ));
        let zero = ReclaimPolicy {
            max_lifetime: Some(LifetimeRange::new(Duration::ZERO, secs(5))),
            ..base
        };
        assert!(matches!(
            zero.validate(),
            Err(ReclaimPolicyError::ZeroLifetime {
                setting: "max_lifetime"
            })
        ));
    }

    #[test]
    fn lifetimes_parse_from_text() {
        assert_eq!(
            "15m".parse::<LifetimeRange>().ok(),
            Some(LifetimeRange::fixed(15 * MIN))
        );
        assert_eq!(
            "10m..27m".parse::<LifetimeRange>().ok(),
            Some(LifetimeRange::new(10 * MIN, 27 * MIN))
        );
        assert_eq!(
            "1h 50m .. 2h 10m".parse::<LifetimeRange>().ok(),
            Some(LifetimeRange::new(110 * MIN, 130 * MIN))
        );
        assert!("soon".parse::<LifetimeRange>().is_err());
        assert!("1m..".parse::<LifetimeRange>().is_err());
        let range = LifetimeRange::new(10 * MIN, 27 * MIN);
        assert_eq!(range.to_string().parse::<LifetimeRange>().ok(), Some(range));
    }

    #[test]
    fn policy_reads_tables_strings_and_never() {
        let p: ReclaimPolicy = toml::from_str(
            "idle_lifetime = { min = \"1m\", max = \"2m\" }\nmax_lifetime = \"never\"\ntime_scale = 60.0\n",
        )
        .expect("parse");
        assert_eq!(p.idle_lifetime, Some(LifetimeRange::new(MIN, 2 * MIN)));
        assert_eq!(p.max_lifetime, None);
        assert_eq!(p.time_scale, 60.0);
        assert_eq!(p.random_per_hour, 0.0);

        let p: ReclaimPolicy = toml::from_str("idle_lifetime = \"15m\"").expect("parse");
        assert_eq!(p.idle_lifetime, Some(LifetimeRange::fixed(15 * MIN)));
        assert_eq!(p.max_lifetime, ReclaimPolicy::default().max_lifetime);

        assert!(toml::from_str::<ReclaimPolicy>("idle_lifetime = { min = \"1m\" }").is_err());
        assert!(
            toml::from_str::<ReclaimPolicy>(
                "idle_lifetime = { min = \"1m\", max = \"2m\", mean = \"1m\" }"
            )
            .is_err()
        );
        assert!(toml::from_str::<ReclaimPolicy>("idle_lifetime = \"later\"").is_err());
        assert!(toml::from_str::<ReclaimPolicy>("reclaim_everything = true").is_err());

        // JSON round trip, `None` included.
        let p = ReclaimPolicy {
            max_lifetime: None,
            ..ReclaimPolicy::default()
        };
        let json = serde_json::to_string(&p).expect("serialize");
        let back: ReclaimPolicy = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, p);
        let p: ReclaimPolicy =
            serde_json::from_str(r#"{"idle_lifetime": null}"#).expect("null is never");
        assert_eq!(p.idle_lifetime, None);
    }

    #[test]
    fn counters_count_by_reason() {
        let r = Reclaimer::new(ReclaimPolicy::default());
        r.count_cold_start();
        r.count_cold_start();
        r.count(ReclaimReason::Idle);
        r.count(ReclaimReason::Admin);
        r.count(ReclaimReason::Admin);
        let stats = r.stats();
        assert_eq!(stats.cold_starts, 2);
        assert_eq!(
            stats.reclaims,
            ReclaimCounts {
                idle: 1,
                max_lifetime: 0,
                random: 0,
                admin: 2
            }
        );
        assert_eq!(
            serde_json::to_value(&stats).expect("json"),
            serde_json::json!({
                "cold_starts": 2,
                "reclaims": {"idle": 1, "max_lifetime": 0, "random": 0, "admin": 2},
                "time_scale": 1.0
            })
        );
        let policy = ReclaimPolicy::never();
        let r = Reclaimer::new(policy);
        assert_eq!(r.idle_deadline(Instant::now()), None);
        assert_eq!(r.retire_at(Instant::now()), None);
    }
}

//! The cost model: what a replayed trace would cost on AWS, as InfiniCache
//! (Lambda), as an ElastiCache node, and served from S3 alone.
//!
//! Everything here is pure arithmetic on recorded numbers, so it is unit
//! tested with hand-computed figures:
//!
//! * **InfiniCache** is what AWS Lambda would charge for the local
//!   platform's billing records: each invocation's *raw* duration rounded up
//!   to the billing tick (at least one tick), times the function's memory,
//!   at a price per GB-second, plus a price per request. Both ticks are
//!   recomputed from the raw durations, so one run reports the 1 ms tick
//!   AWS bills by today and the 100 ms tick the paper was billed by. The
//!   bill is split by purpose: serving, warm-up and backup (the platform
//!   does not know why a function was invoked; [`classify`] tells from the
//!   records' timing, and the proxy's own ledger, which does know, checks
//!   it). x86 and arm64 prices both.
//! * **ElastiCache**: a node (or several of the largest) with at least as
//!   much memory as the working set, for the trace's duration, at an hourly
//!   price; and the paper's node (cache.r5.24xlarge, $10.368/h).
//! * **S3 only**: every GET served from S3 (a price per 1,000 GETs and per
//!   GB transferred out; 0 within a region) and every PUT stored there.
//!
//! A replay is scaled ([`Scaling`]): object sizes are divided by a size
//! scale so a trace of gigabyte objects fits one machine, and function
//! memory with them. Each replayed function therefore stands for one with
//! `size_scale` times its memory: GB-seconds are multiplied by the size
//! scale, invocation counts and durations are kept. Time is scaled too, but
//! it does not enter the bill: the proxy's warm-up and backup intervals are
//! divided by the time scale, so as many of them happen per simulated hour
//! as would per real hour, and each invocation's duration is what it really
//! took.
//!
//! Prices are AWS's public on-demand prices for us-east-1 (Lambda, S3,
//! ElastiCache r5 nodes); every one of them is a setting.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The paper's figures for its 50-hour production trace (FAST'20, §5):
/// ElastiCache (cache.r5.24xlarge) cost $518.40, InfiniCache $16.51 to
/// $20.52.
pub const PAPER_HOURS: f64 = 50.0;
pub const PAPER_ELASTICACHE: f64 = 518.40;
pub const PAPER_INFINICACHE: (f64, f64) = (16.51, 20.52);

/// The billing ticks every report shows (milliseconds): AWS today and the
/// 100 ms tick the paper was billed by.
pub const TICKS_MS: [f64; 2] = [1.0, 100.0];

/// Why a function was invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Serve,
    Warmup,
    Backup,
}

impl Purpose {
    pub const ALL: [Purpose; 3] = [Purpose::Serve, Purpose::Warmup, Purpose::Backup];

    /// The name the proxy's ledger uses.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Serve => "serve",
            Purpose::Warmup => "warmup",
            Purpose::Backup => "backup",
        }
    }
}

/// CPU architecture of the functions (it sets the GB-second price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86, Arch::Arm64];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::Arm64 => "arm64",
        }
    }
}

/// An ElastiCache node class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeClass {
    pub name: String,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// On-demand price per hour (USD).
    pub hourly: f64,
}

impl NodeClass {
    pub fn new(name: &str, memory_gib: f64, hourly: f64) -> Self {
        NodeClass {
            name: name.to_string(),
            memory_gib,
            hourly,
        }
    }
}

/// The r5 node classes of the ElastiCache price list (us-east-1, on
/// demand; memory as the node-type table lists it, prices per hour).
pub fn r5_nodes() -> Vec<NodeClass> {
    vec![
        NodeClass::new("cache.r5.large", 13.07, 0.216),
        NodeClass::new("cache.r5.xlarge", 26.32, 0.432),
        NodeClass::new("cache.r5.2xlarge", 52.82, 0.864),
        NodeClass::new("cache.r5.4xlarge", 105.81, 1.728),
        NodeClass::new("cache.r5.12xlarge", 317.77, 5.184),
        NodeClass::new("cache.r5.24xlarge", 635.61, 10.368),
    ]
}

/// Every price the model uses (USD).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prices {
    /// Lambda, per GB-second, x86 and arm64.
    pub lambda_gb_second_x86: f64,
    pub lambda_gb_second_arm64: f64,
    /// Lambda, per request (invocation).
    pub lambda_request: f64,
    /// The ElastiCache node the paper compared with.
    pub elasticache_node: NodeClass,
    /// Node classes to pick the smallest one holding the working set from.
    pub elasticache_classes: Vec<NodeClass>,
    /// S3, per 1,000 GET and per 1,000 PUT requests.
    pub s3_get_per_1000: f64,
    pub s3_put_per_1000: f64,
    /// S3, per GB transferred out (0 within a region).
    pub s3_transfer_per_gb: f64,
}

impl Default for Prices {
    /// AWS us-east-1: Lambda $0.0000166667/GB-s (x86), $0.0000133334/GB-s
    /// (arm64), $0.20 per million requests; ElastiCache cache.r5.24xlarge
    /// at $10.368/h (the paper's node, "600 GB"); S3 Standard $0.0004 per
    /// 1,000 GETs, $0.005 per 1,000 PUTs, $0.09/GB out to the internet.
    fn default() -> Self {
        let classes = r5_nodes();
        let node = classes
            .iter()
            .find(|c| c.name == "cache.r5.24xlarge")
            .cloned()
            .unwrap_or_else(|| NodeClass::new("cache.r5.24xlarge", 635.61, 10.368));
        Prices {
            lambda_gb_second_x86: 0.000_016_666_7,
            lambda_gb_second_arm64: 0.000_013_333_4,
            lambda_request: 0.20 / 1_000_000.0,
            elasticache_node: node,
            elasticache_classes: classes,
            s3_get_per_1000: 0.0004,
            s3_put_per_1000: 0.005,
            s3_transfer_per_gb: 0.09,
        }
    }
}

impl Prices {
    pub fn gb_second(&self, arch: Arch) -> f64 {
        match arch {
            Arch::X86 => self.lambda_gb_second_x86,
            Arch::Arm64 => self.lambda_gb_second_arm64,
        }
    }
}

/// One invocation as the platform billed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    pub function: String,
    pub environment_id: u64,
    /// When the event was handed to the function (ms since the epoch).
    pub start_ms: u64,
    /// Raw duration (ms).
    pub duration_ms: f64,
    /// Configured memory (MB).
    pub memory_mb: u32,
}

impl Invocation {
    /// Reads one record of the platform's `GET /admin/billing`; `None` if
    /// a field is missing.
    pub fn from_record(record: &Value) -> Option<Invocation> {
        Some(Invocation {
            function: record["function"].as_str()?.to_string(),
            environment_id: record["environment_id"].as_u64().unwrap_or(0),
            start_ms: record["start_unix_ms"].as_u64()?,
            duration_ms: record["duration_ms"].as_f64()?,
            memory_mb: u32::try_from(record["memory_mb"].as_u64()?).ok()?,
        })
    }

    pub fn end_ms(&self) -> f64 {
        self.start_ms as f64 + self.duration_ms
    }
}

/// `duration_ms` rounded up to whole ticks, at least one tick (ms).
pub fn billed_ms(duration_ms: f64, tick_ms: f64) -> f64 {
    if tick_ms.is_nan() || tick_ms <= 0.0 {
        return duration_ms.max(0.0);
    }
    // A duration a hair over a whole tick from float noise is that tick.
    let ticks = ((duration_ms.max(0.0) / tick_ms) - 1e-9).ceil().max(1.0);
    ticks * tick_ms
}

/// How [`classify`] tells the purposes apart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassifyRules {
    /// Invocations shorter than this that overlap no other are warm-ups
    /// (a warm-up returns at once; a serving node stays at least its idle
    /// timeout). Half the node idle timeout.
    pub warmup_below_ms: f64,
    /// An invocation that starts at most this long before a backup
    /// invocation of the same function and is still running when the
    /// backup starts was started for that backup (the proxy invokes an idle
    /// primary first, then the backup while the primary is busy).
    pub primary_lead_ms: f64,
}

impl Default for ClassifyRules {
    fn default() -> Self {
        ClassifyRules {
            warmup_below_ms: 50.0,
            primary_lead_ms: 250.0,
        }
    }
}

/// Tells each invocation's purpose from the records' timing.
///
/// * **backup**: an invocation that starts while another invocation of the
///   same function (on another environment) is running: the provider only
///   starts a second environment for a busy function, and the proxy only
///   makes it busy on purpose for a backup. The primary invocation it
///   overlaps is a backup one too if it began at most
///   `primary_lead_ms` earlier (it was started for the backup).
/// * **warm-up**: otherwise, shorter than `warmup_below_ms`;
/// * **serve**: the rest.
pub fn classify(records: &[Invocation], rules: ClassifyRules) -> Vec<Purpose> {
    let mut purposes = vec![Purpose::Serve; records.len()];
    let mut by_function: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        by_function
            .entry(record.function.as_str())
            .or_default()
            .push(i);
    }
    for indices in by_function.values_mut() {
        indices.sort_by(|&a, &b| {
            records[a].start_ms.cmp(&records[b].start_ms).then(
                records[a]
                    .duration_ms
                    .total_cmp(&records[b].duration_ms)
                    .reverse(),
            )
        });
        let mut backup = vec![false; indices.len()];
        let longest = indices
            .iter()
            .map(|&i| records[i].duration_ms)
            .fold(0.0, f64::max);
        for (pos, &i) in indices.iter().enumerate() {
            let start = records[i].start_ms as f64;
            // Earlier invocations still running when this one starts (none
            // that started more than the longest duration ago can be).
            for (earlier_pos, &j) in indices[..pos].iter().enumerate().rev() {
                let earlier = &records[j];
                if earlier.start_ms as f64 + longest < start {
                    break;
                }
                if earlier.environment_id == records[i].environment_id
                    || backup[earlier_pos]
                    || earlier.end_ms() <= start
                {
                    continue;
                }
                backup[pos] = true;
                if start - earlier.start_ms as f64 <= rules.primary_lead_ms {
                    backup[earlier_pos] = true;
                }
                break;
            }
        }
        for (pos, &i) in indices.iter().enumerate() {
            purposes[i] = if backup[pos] {
                Purpose::Backup
            } else if records[i].duration_ms < rules.warmup_below_ms {
                Purpose::Warmup
            } else {
                Purpose::Serve
            };
        }
    }
    purposes
}

/// Billed usage of one purpose, as replayed (not yet scaled).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub invocations: u64,
    /// Sum of raw durations (ms).
    pub raw_ms: f64,
    /// Billed ms at each of [`TICKS_MS`].
    pub billed_ms: [f64; 2],
    /// Billed GB-seconds (billed seconds times memory in GB) at each tick.
    pub gb_seconds: [f64; 2],
}

impl Usage {
    pub fn add(&mut self, duration_ms: f64, memory_mb: u32) {
        self.invocations += 1;
        self.raw_ms += duration_ms.max(0.0);
        for (t, tick) in TICKS_MS.iter().enumerate() {
            let billed = billed_ms(duration_ms, *tick);
            self.billed_ms[t] += billed;
            self.gb_seconds[t] += billed / 1000.0 * f64::from(memory_mb) / 1024.0;
        }
    }
}

/// Usage by purpose from billing records and their purposes.
pub fn usage(records: &[Invocation], purposes: &[Purpose]) -> BTreeMap<Purpose, Usage> {
    let mut usage: BTreeMap<Purpose, Usage> = Purpose::ALL
        .iter()
        .map(|&p| (p, Usage::default()))
        .collect();
    for (record, purpose) in records.iter().zip(purposes) {
        usage
            .entry(*purpose)
            .or_default()
            .add(record.duration_ms, record.memory_mb);
    }
    usage
}

/// One purpose's totals as the proxy's ledger reports them: it knows why
/// it invoked each function, so counts and raw durations are exact by
/// purpose (billed durations are at the tick the proxy ran with).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LedgerTotals {
    pub invocations: u64,
    pub raw_ms: f64,
}

/// Reads the ledger's `billing` object (`GET /status`, or a difference of
/// two) by purpose.
pub fn ledger_totals(ledger: &Value) -> BTreeMap<Purpose, LedgerTotals> {
    Purpose::ALL
        .iter()
        .map(|&p| {
            let entry = &ledger[p.name()];
            (
                p,
                LedgerTotals {
                    invocations: entry["invocations"].as_u64().unwrap_or(0),
                    raw_ms: entry["duration_ms"].as_f64().unwrap_or(0.0),
                },
            )
        })
        .collect()
}

/// Splits the records' billed totals by purpose with the ledger's exact
/// counts and raw durations.
///
/// The records give every invocation's raw duration, so the raw and billed
/// totals at each tick are exact; the ledger knows why each invocation was
/// made, so it splits the raw time (scaled to the records' raw total: the
/// proxy and the platform time an invocation from slightly different
/// points). What remains to split is the rounding the ticks add. [`classify`]
/// gives each purpose's *shape* (a 1 ms warm-up bills a whole 100 ms tick)
/// but may put an invocation under the wrong purpose, so each purpose is
/// estimated as its raw time plus the ledger's count times the classified
/// mean rounding per invocation (half a tick when nothing was classified
/// there), at least one tick per invocation, and the records' exact
/// rounding is shared out in proportion to how far each estimate exceeds
/// what the purpose was already given. Ticks are taken finest first, each
/// starting from the previous one's split, so a purpose never bills less
/// than its raw time nor less at a coarser tick. Memory per billed second
/// comes from the classified records (all of them when a purpose has none).
pub fn calibrate(
    classified: &BTreeMap<Purpose, Usage>,
    ledger: &BTreeMap<Purpose, LedgerTotals>,
) -> BTreeMap<Purpose, Usage> {
    let all = classified.values().fold(Usage::default(), |mut sum, u| {
        sum.invocations += u.invocations;
        sum.raw_ms += u.raw_ms;
        for t in 0..TICKS_MS.len() {
            sum.billed_ms[t] += u.billed_ms[t];
            sum.gb_seconds[t] += u.gb_seconds[t];
        }
        sum
    });
    // GB per billed second.
    let memory_gb =
        |u: &Usage| (u.billed_ms[0] > 0.0).then(|| u.gb_seconds[0] / (u.billed_ms[0] / 1000.0));
    let default_memory = memory_gb(&all).unwrap_or(0.0);
    let totals = |p: Purpose| ledger.get(&p).copied().unwrap_or_default();
    let ledger_raw: f64 = Purpose::ALL.iter().map(|&p| totals(p).raw_ms).sum();
    let raw_scale = if ledger_raw > 0.0 {
        all.raw_ms / ledger_raw
    } else {
        0.0
    };
    let mut out: BTreeMap<Purpose, Usage> = Purpose::ALL
        .iter()
        .map(|&p| {
            let l = totals(p);
            (
                p,
                Usage {
                    invocations: l.invocations,
                    raw_ms: l.raw_ms * raw_scale,
                    ..Usage::default()
                },
            )
        })
        .collect();
    // What each purpose has been given so far, and its sum.
    let mut given: BTreeMap<Purpose, f64> = out.iter().map(|(&p, u)| (p, u.raw_ms)).collect();
    let mut given_total = all.raw_ms;
    for (t, tick) in TICKS_MS.iter().enumerate() {
        let wants: Vec<(Purpose, f64)> = Purpose::ALL
            .iter()
            .map(|&p| {
                let n = totals(p).invocations as f64;
                let pad = match classified.get(&p) {
                    Some(u) if u.invocations > 0 => {
                        (u.billed_ms[t] - u.raw_ms) / u.invocations as f64
                    }
                    _ => tick / 2.0,
                };
                let raw = out.get(&p).map_or(0.0, |u| u.raw_ms);
                let estimate = (raw + n * pad).max(n * tick);
                let so_far = given.get(&p).copied().unwrap_or(0.0);
                (p, (estimate - so_far).max(0.0))
            })
            .collect();
        let extra = (all.billed_ms[t] - given_total).max(0.0);
        let want_sum: f64 = wants.iter().map(|(_, w)| w).sum();
        let count_sum: f64 = Purpose::ALL
            .iter()
            .map(|&p| totals(p).invocations as f64)
            .sum();
        for (p, want) in wants {
            // With no estimate exceeding what was given, share by count.
            let share = if want_sum > 0.0 {
                want / want_sum
            } else if count_sum > 0.0 {
                totals(p).invocations as f64 / count_sum
            } else {
                0.0
            };
            let memory = classified
                .get(&p)
                .and_then(memory_gb)
                .unwrap_or(default_memory);
            if let (Some(u), Some(g)) = (out.get_mut(&p), given.get_mut(&p)) {
                *g += extra * share;
                u.billed_ms[t] = *g;
                u.gb_seconds[t] = u.billed_ms[t] / 1000.0 * memory;
            }
        }
        given_total += extra;
    }
    out
}

/// How the replay was scaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scaling {
    /// Object sizes were divided by this; GB-seconds are multiplied by it.
    pub size_scale: f64,
    /// Simulated seconds per real second (informational: see the module
    /// documentation).
    pub time_scale: f64,
    /// Milliseconds added to every serving invocation: the deployment's
    /// node idle timeout minus the (time-scaled) one the replay ran with
    /// (see [`with_serve_tail`]).
    pub serve_tail_ms: f64,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            size_scale: 1.0,
            time_scale: 1.0,
            serve_tail_ms: 0.0,
        }
    }
}

/// Adds `tail_ms` to every serving invocation of `usage`.
///
/// A serving node returns after an idle timeout. A replay at scaled time
/// scales that timeout down too (as every other interval), so invocations
/// start and end as they would with the requests at their real spacing;
/// but each then idles for less real time than it would on AWS. This adds
/// the difference back: `tail_ms` of raw time per serving invocation, and
/// per tick the mean extra billed time the tail adds to the records
/// classified as serving (rounding included: 12 ms + 90 ms bills 200 ms at
/// a 100 ms tick, 88 ms more), times the number of serving invocations.
pub fn add_serve_tail(
    usage: &mut BTreeMap<Purpose, Usage>,
    records: &[Invocation],
    purposes: &[Purpose],
    tail_ms: f64,
) {
    let tail = tail_ms.max(0.0);
    if tail == 0.0 {
        return;
    }
    let serving: Vec<&Invocation> = records
        .iter()
        .zip(purposes)
        .filter(|(_, p)| **p == Purpose::Serve)
        .map(|(r, _)| r)
        .collect();
    let Some(serve) = usage.get_mut(&Purpose::Serve) else {
        return;
    };
    let n = serve.invocations as f64;
    let memory_gb = if serve.billed_ms[0] > 0.0 {
        serve.gb_seconds[0] / (serve.billed_ms[0] / 1000.0)
    } else if !serving.is_empty() {
        serving
            .iter()
            .map(|r| f64::from(r.memory_mb) / 1024.0)
            .sum::<f64>()
            / serving.len() as f64
    } else {
        0.0
    };
    serve.raw_ms += n * tail;
    for (t, tick) in TICKS_MS.iter().enumerate() {
        let extra = if serving.is_empty() {
            tail
        } else {
            serving
                .iter()
                .map(|r| billed_ms(r.duration_ms + tail, *tick) - billed_ms(r.duration_ms, *tick))
                .sum::<f64>()
                / serving.len() as f64
        };
        serve.billed_ms[t] += n * extra;
        serve.gb_seconds[t] += n * extra / 1000.0 * memory_gb;
    }
}

/// The workload's totals, at full (unscaled) size.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Workload {
    /// Simulated hours the trace covers.
    pub hours: f64,
    pub gets: u64,
    pub puts: u64,
    /// Bytes all GETs returned.
    pub bytes_served: u64,
    /// Bytes of all distinct objects.
    pub working_set_bytes: u64,
}

/// Lambda cost of one (architecture, tick) pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LambdaCost {
    pub arch: Option<Arch>,
    pub tick_ms: f64,
    /// GB-second charges by purpose (scaled).
    pub serve: f64,
    pub warmup: f64,
    pub backup: f64,
    /// Request charges, every purpose.
    pub requests: f64,
    pub total: f64,
}

impl LambdaCost {
    pub fn parts_sum(&self) -> f64 {
        self.serve + self.warmup + self.backup + self.requests
    }
}

/// ElastiCache for the trace's duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElastiCacheCost {
    pub node: NodeClass,
    pub nodes: u64,
    pub total: f64,
}

/// S3 serving every GET.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct S3Cost {
    pub gets: f64,
    pub puts: f64,
    pub transfer: f64,
    pub total: f64,
}

/// The cost report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub workload: Workload,
    pub scaling: Scaling,
    /// Usage by purpose as replayed (before the size scale).
    pub usage: BTreeMap<Purpose, Usage>,
    /// One line per architecture and tick.
    pub lambda: Vec<LambdaCost>,
    /// The paper's node.
    pub elasticache_paper: ElastiCacheCost,
    /// The smallest class holding the working set (or several of the
    /// largest).
    pub elasticache_fit: Option<ElastiCacheCost>,
    pub s3: S3Cost,
}

/// ElastiCache nodes of the smallest class with at least `bytes` of
/// memory, or as many of the largest class as it takes.
pub fn elasticache_fit(classes: &[NodeClass], bytes: u64, hours: f64) -> Option<ElastiCacheCost> {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let mut sorted: Vec<&NodeClass> = classes.iter().filter(|c| c.memory_gib > 0.0).collect();
    sorted.sort_by(|a, b| a.memory_gib.total_cmp(&b.memory_gib));
    let (node, nodes) = match sorted.iter().find(|c| c.memory_gib >= gib) {
        Some(node) => (*node, 1),
        None => {
            let largest = sorted.last()?;
            (*largest, (gib / largest.memory_gib).ceil().max(1.0) as u64)
        }
    };
    Some(ElastiCacheCost {
        node: node.clone(),
        nodes,
        total: node.hourly * nodes as f64 * hours,
    })
}

/// Computes the report.
pub fn report(
    usage: BTreeMap<Purpose, Usage>,
    workload: &Workload,
    scaling: Scaling,
    prices: &Prices,
) -> CostReport {
    let size_scale = if scaling.size_scale > 0.0 {
        scaling.size_scale
    } else {
        1.0
    };
    let invocations: u64 = usage.values().map(|u| u.invocations).sum();
    let mut lambda = Vec::new();
    for arch in Arch::ALL {
        for (t, tick) in TICKS_MS.iter().enumerate() {
            let gb = |purpose: Purpose| {
                usage.get(&purpose).map_or(0.0, |u| u.gb_seconds[t]) * size_scale
            };
            let price = prices.gb_second(arch);
            let mut line = LambdaCost {
                arch: Some(arch),
                tick_ms: *tick,
                serve: gb(Purpose::Serve) * price,
                warmup: gb(Purpose::Warmup) * price,
                backup: gb(Purpose::Backup) * price,
                requests: invocations as f64 * prices.lambda_request,
                total: 0.0,
            };
            line.total = line.parts_sum();
            lambda.push(line);
        }
    }
    let paper_node = prices.elasticache_node.clone();
    let elasticache_paper = ElastiCacheCost {
        total: paper_node.hourly * workload.hours,
        node: paper_node,
        nodes: 1,
    };
    let gets = workload.gets as f64 / 1000.0 * prices.s3_get_per_1000;
    let puts = workload.puts as f64 / 1000.0 * prices.s3_put_per_1000;
    let transfer = workload.bytes_served as f64 / 1e9 * prices.s3_transfer_per_gb;
    CostReport {
        workload: workload.clone(),
        scaling,
        usage,
        lambda,
        elasticache_fit: elasticache_fit(
            &prices.elasticache_classes,
            workload.working_set_bytes,
            workload.hours,
        ),
        elasticache_paper,
        s3: S3Cost {
            gets,
            puts,
            transfer,
            total: gets + puts + transfer,
        },
    }
}

impl CostReport {
    /// The Lambda line of an architecture and tick.
    pub fn lambda(&self, arch: Arch, tick_ms: f64) -> Option<&LambdaCost> {
        self.lambda
            .iter()
            .find(|l| l.arch == Some(arch) && l.tick_ms == tick_ms)
    }

    /// The report as a table, with the paper's figures and the ratios.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let w = &self.workload;
        let _ = writeln!(
            out,
            "cost for {:.1} h: {} GETs, {} PUTs, {:.2} GB served, working set {:.2} GB (full size)",
            w.hours,
            w.gets,
            w.puts,
            w.bytes_served as f64 / 1e9,
            w.working_set_bytes as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "replayed usage by purpose (before scaling):\n{:<8} {:>11} {:>14} {:>14} {:>14} {:>13} {:>13}",
            "purpose",
            "invocations",
            "raw s",
            "billed s 1ms",
            "billed s 100ms",
            "GB-s 1ms",
            "GB-s 100ms"
        );
        for (purpose, u) in &self.usage {
            let _ = writeln!(
                out,
                "{:<8} {:>11} {:>14.3} {:>14.3} {:>14.3} {:>13.4} {:>13.4}",
                purpose.name(),
                u.invocations,
                u.raw_ms / 1000.0,
                u.billed_ms[0] / 1000.0,
                u.billed_ms[1] / 1000.0,
                u.gb_seconds[0],
                u.gb_seconds[1]
            );
        }
        let _ = writeln!(
            out,
            "scaling: sizes / {s}: every GB-second counts {s} times (each function stands for one with {s}x its memory); \
             time x{t}: warm-up, backup and node idle intervals divided by it, so invocations happen as often per \
             simulated hour as they would per hour; durations are real, plus {tail:.0} ms per serving invocation (the \
             idle time the scaled idle timeout cut off); invocation counts as replayed",
            s = self.scaling.size_scale,
            t = self.scaling.time_scale,
            tail = self.scaling.serve_tail_ms
        );
        let _ = writeln!(
            out,
            "\n{:<34} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "system", "serve $", "warm-up $", "backup $", "requests $", "total $"
        );
        for line in &self.lambda {
            let _ = writeln!(
                out,
                "{:<34} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
                format!(
                    "InfiniCache {} {} ms tick",
                    line.arch.map_or("", Arch::name),
                    line.tick_ms
                ),
                line.serve,
                line.warmup,
                line.backup,
                line.requests,
                line.total
            );
        }
        let e = &self.elasticache_paper;
        let _ = writeln!(
            out,
            "{:<34} {:>54.2}",
            format!("ElastiCache {} (${}/h)", e.node.name, e.node.hourly),
            e.total
        );
        if let Some(fit) = &self.elasticache_fit {
            let _ = writeln!(
                out,
                "{:<34} {:>54.2}",
                format!("ElastiCache fit: {} x {}", fit.nodes, fit.node.name),
                fit.total
            );
        }
        let s3 = &self.s3;
        let _ = writeln!(
            out,
            "{:<34} {:>54.2}  (GETs ${:.2}, PUTs ${:.2}, transfer ${:.2})",
            "S3 only", s3.total, s3.gets, s3.puts, s3.transfer
        );
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
        let _ = writeln!(out, "\nratios (ElastiCache {} / InfiniCache):", e.node.name);
        for line in &self.lambda {
            let _ = writeln!(
                out,
                "  {} {} ms tick: {:.1}x",
                line.arch.map_or("", Arch::name),
                line.tick_ms,
                ratio(e.total, line.total)
            );
        }
        let (lo, hi) = PAPER_INFINICACHE;
        let _ = writeln!(
            out,
            "paper ({PAPER_HOURS} h production trace, 100 ms tick): ElastiCache ${PAPER_ELASTICACHE:.2} vs InfiniCache ${lo:.2}-${hi:.2}: {:.1}x-{:.1}x",
            ratio(PAPER_ELASTICACHE, hi),
            ratio(PAPER_ELASTICACHE, lo)
        );
        if w.hours > 0.0 {
            let per_50 = PAPER_HOURS / w.hours;
            let _ = writeln!(
                out,
                "this run per {PAPER_HOURS} h: ElastiCache ${:.2}, InfiniCache x86 100 ms ${:.2}, x86 1 ms ${:.2}",
                e.total * per_50,
                self.lambda(Arch::X86, 100.0).map_or(0.0, |l| l.total) * per_50,
                self.lambda(Arch::X86, 1.0).map_or(0.0, |l| l.total) * per_50
            );
        }
        out
    }

    /// The Lambda lines as CSV.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "system,detail,tick_ms,serve_usd,warmup_usd,backup_usd,requests_usd,total_usd\n",
        );
        for l in &self.lambda {
            let _ = writeln!(
                out,
                "infinicache,{},{},{:.6},{:.6},{:.6},{:.6},{:.6}",
                l.arch.map_or("", Arch::name),
                l.tick_ms,
                l.serve,
                l.warmup,
                l.backup,
                l.requests,
                l.total
            );
        }
        let e = &self.elasticache_paper;
        let _ = writeln!(out, "elasticache,{},,,,,,{:.6}", e.node.name, e.total);
        if let Some(fit) = &self.elasticache_fit {
            let _ = writeln!(
                out,
                "elasticache-fit,{} x {},,,,,,{:.6}",
                fit.nodes, fit.node.name, fit.total
            );
        }
        let _ = writeln!(out, "s3-only,,,,,,,{:.6}", self.s3.total);
        let (lo, hi) = PAPER_INFINICACHE;
        let _ = writeln!(
            out,
            "paper-elasticache,{PAPER_HOURS} h,,,,,,{PAPER_ELASTICACHE:.2}"
        );
        let _ = writeln!(out, "paper-infinicache-low,{PAPER_HOURS} h,100,,,,,{lo:.2}");
        let _ = writeln!(
            out,
            "paper-infinicache-high,{PAPER_HOURS} h,100,,,,,{hi:.2}"
        );
        out
    }
}

/// A bound on serving under time compression: if every chunk request were
/// its own invocation (as it mostly is at an uncompressed request rate),
/// each lasting at least the node's idle timeout. GB-seconds, scaled.
pub fn uncoalesced_serve_gb_seconds(
    chunk_requests: u64,
    idle_timeout_ms: f64,
    tick_ms: f64,
    memory_mb: u32,
    size_scale: f64,
) -> f64 {
    chunk_requests as f64 * billed_ms(idle_timeout_ms, tick_ms) / 1000.0 * f64::from(memory_mb)
        / 1024.0
        * size_scale
}

/// How well [`classify`] agrees with the proxy's ledger (which knows each
/// invocation's purpose): (purpose, classified count, ledger count,
/// classified raw seconds, ledger raw seconds).
pub fn ledger_check(
    usage: &BTreeMap<Purpose, Usage>,
    ledger: &Value,
) -> Vec<(Purpose, u64, u64, f64, f64)> {
    Purpose::ALL
        .iter()
        .map(|&p| {
            let u = usage.get(&p).cloned().unwrap_or_default();
            let entry = &ledger[p.name()];
            (
                p,
                u.invocations,
                entry["invocations"].as_u64().unwrap_or(0),
                u.raw_ms / 1000.0,
                entry["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(function: &str, env: u64, start_ms: u64, duration_ms: f64) -> Invocation {
        Invocation {
            function: function.into(),
            environment_id: env,
            start_ms,
            duration_ms,
            memory_mb: 1024,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn durations_round_up_to_whole_ticks() {
        assert_eq!(billed_ms(0.0, 1.0), 1.0);
        assert_eq!(billed_ms(0.2, 1.0), 1.0);
        assert_eq!(billed_ms(30.4, 1.0), 31.0);
        assert_eq!(billed_ms(30.4, 100.0), 100.0);
        assert_eq!(billed_ms(100.0, 100.0), 100.0);
        assert_eq!(billed_ms(100.5, 100.0), 200.0);
        assert_eq!(billed_ms(250.0, 100.0), 300.0);
    }

    #[test]
    fn purposes_follow_from_timing() {
        let records = vec![
            // f0: a warm-up, then a serve, then a backup round whose
            // primary was started for it (40 ms earlier).
            inv("f0", 1, 0, 2.0),
            inv("f0", 1, 1_000, 150.0),
            inv("f0", 1, 5_000, 900.0),
            inv("f0", 2, 5_040, 700.0),
            // f1: serving for a while; a backup lands on it later (the
            // primary was already serving: it stays serve).
            inv("f1", 3, 0, 10_000.0),
            inv("f1", 4, 6_000, 500.0),
            // f2: back-to-back invocations of one environment never overlap
            // as backups do.
            inv("f2", 5, 0, 120.0),
            inv("f2", 5, 120, 3.0),
        ];
        let purposes = classify(&records, ClassifyRules::default());
        use Purpose::*;
        assert_eq!(
            purposes,
            vec![Warmup, Serve, Backup, Backup, Serve, Backup, Serve, Warmup]
        );
    }

    #[test]
    fn usage_recomputes_both_ticks_from_raw_durations() {
        // Two invocations at 1024 MB (1 GB) and one at 512 MB.
        let records = vec![
            inv("f", 1, 0, 30.4),
            inv("f", 1, 100, 130.0),
            Invocation {
                memory_mb: 512,
                ..inv("g", 2, 0, 1.0)
            },
        ];
        let purposes = [Purpose::Serve, Purpose::Serve, Purpose::Warmup];
        let u = usage(&records, &purposes);
        let serve = &u[&Purpose::Serve];
        assert_eq!(serve.invocations, 2);
        assert!(close(serve.raw_ms, 160.4));
        // 1 ms: 31 + 130 = 161 ms; 100 ms: 100 + 200 = 300 ms.
        assert_eq!(serve.billed_ms, [161.0, 300.0]);
        assert!(close(serve.gb_seconds[0], 0.161));
        assert!(close(serve.gb_seconds[1], 0.3));
        let warmup = &u[&Purpose::Warmup];
        // 1 ms at 0.5 GB and 100 ms at 0.5 GB.
        assert!(close(warmup.gb_seconds[0], 0.0005));
        assert!(close(warmup.gb_seconds[1], 0.05));
        assert_eq!(u[&Purpose::Backup], Usage::default());
    }

    #[test]
    fn the_report_prices_scales_and_compares() {
        // 1,000,000 warm-ups of 1 ms at 1 GB: 1,000 GB-s at 1 ms, 100,000
        // GB-s at 100 ms; 10 serve GB-s at both ticks (10 s at 1 GB).
        let mut u: BTreeMap<Purpose, Usage> = BTreeMap::new();
        u.insert(
            Purpose::Warmup,
            Usage {
                invocations: 1_000_000,
                raw_ms: 500_000.0,
                billed_ms: [1e6, 1e8],
                gb_seconds: [1_000.0, 100_000.0],
            },
        );
        u.insert(
            Purpose::Serve,
            Usage {
                invocations: 0,
                raw_ms: 10_000.0,
                billed_ms: [10_000.0, 10_000.0],
                gb_seconds: [10.0, 10.0],
            },
        );
        let workload = Workload {
            hours: 50.0,
            gets: 2_000_000,
            puts: 1_000,
            bytes_served: 1_000_000_000_000,
            working_set_bytes: 100 * (1 << 30),
        };
        let scaling = Scaling {
            size_scale: 2.0,
            time_scale: 100.0,
            serve_tail_ms: 0.0,
        };
        let r = report(u, &workload, scaling, &Prices::default());
        let x86_1 = r.lambda(Arch::X86, 1.0).unwrap();
        // (1,000 + 10) GB-s x 2 x $0.0000166667; 1M requests x $0.2/M.
        assert!(close(x86_1.warmup, 2_000.0 * 0.000_016_666_7));
        assert!(close(x86_1.serve, 20.0 * 0.000_016_666_7));
        assert!(close(x86_1.requests, 0.2));
        assert_eq!(x86_1.backup, 0.0);
        assert!(close(x86_1.total, x86_1.parts_sum()));
        let x86_100 = r.lambda(Arch::X86, 100.0).unwrap();
        assert!(close(x86_100.warmup, 200_000.0 * 0.000_016_666_7)); // $3.33
        assert!(x86_100.total >= x86_1.total);
        let arm_100 = r.lambda(Arch::Arm64, 100.0).unwrap();
        assert!(close(arm_100.warmup, 200_000.0 * 0.000_013_333_4));
        // ElastiCache: the paper's node for 50 h is the paper's $518.40.
        assert!(close(r.elasticache_paper.total, PAPER_ELASTICACHE));
        // 100 GiB fits cache.r5.4xlarge (105.81 GiB) at $1.728/h.
        let fit = r.elasticache_fit.as_ref().unwrap();
        assert_eq!((fit.node.name.as_str(), fit.nodes), ("cache.r5.4xlarge", 1));
        assert!(close(fit.total, 1.728 * 50.0));
        // S3: 2M GETs x $0.0004/1000 = $0.80; 1,000 PUTs = $0.005; 1 TB out
        // at $0.09/GB = $90.
        assert!(close(r.s3.gets, 0.8));
        assert!(close(r.s3.puts, 0.005));
        assert!(close(r.s3.transfer, 90.0));
        assert!(close(r.s3.total, 90.805));
        let table = r.table();
        assert!(
            table.contains("$518.40 vs InfiniCache $16.51-$20.52"),
            "{table}"
        );
        assert!(table.contains("InfiniCache x86 100 ms tick"), "{table}");
        assert_eq!(r.csv().lines().count(), 1 + 4 + 2 + 1 + 3);
    }

    #[test]
    fn a_working_set_beyond_the_largest_node_takes_several() {
        let classes = r5_nodes();
        let fit = elasticache_fit(&classes, 1_500 * (1 << 30), 10.0).unwrap();
        assert_eq!(
            (fit.node.name.as_str(), fit.nodes),
            ("cache.r5.24xlarge", 3)
        );
        assert!(close(fit.total, 3.0 * 10.368 * 10.0));
        let small = elasticache_fit(&classes, 1, 1.0).unwrap();
        assert_eq!(small.node.name, "cache.r5.large");
        assert!(elasticache_fit(&[], 1, 1.0).is_none());
    }

    #[test]
    fn records_read_from_the_platform_json() {
        let record = serde_json::json!({
            "function": "infinicache-node-3", "environment_id": 7, "request_id": "r",
            "start_unix_ms": 1000, "duration": "30ms 400us", "duration_ms": 30.4,
            "billed_duration": "31ms", "billed_duration_ms": 31, "memory_mb": 128,
            "cold_start": false, "init_duration": null, "outcome": "Success"
        });
        let inv = Invocation::from_record(&record).unwrap();
        assert_eq!(
            (inv.environment_id, inv.start_ms, inv.memory_mb),
            (7, 1000, 128)
        );
        assert!(close(inv.duration_ms, 30.4));
        assert!(Invocation::from_record(&serde_json::json!({"function": "f"})).is_none());
    }

    #[test]
    fn the_uncoalesced_bound_bills_an_idle_timeout_per_request() {
        // 1,000 requests x 100 ms x 0.125 GB x 200 = 2,500 GB-s.
        assert!(close(
            uncoalesced_serve_gb_seconds(1_000, 100.0, 1.0, 128, 200.0),
            2_500.0
        ));
        // 100.5 ms at a 100 ms tick bills 200 ms.
        assert!(close(
            uncoalesced_serve_gb_seconds(10, 100.5, 100.0, 1024, 1.0),
            2.0
        ));
    }

    #[test]
    fn calibration_never_bills_a_purpose_below_its_raw_time() {
        // The proxy timed its invocations longer than the platform did (it
        // counts the dial-in), so its raw split must be scaled down to the
        // records' before the rounding is shared out.
        let records = vec![inv("f", 1, 0, 40.0), inv("f", 1, 1000, 0.3)];
        let classified = usage(&records, &[Purpose::Serve, Purpose::Serve]);
        let ledger: BTreeMap<Purpose, LedgerTotals> = [
            (
                Purpose::Serve,
                LedgerTotals {
                    invocations: 1,
                    raw_ms: 60.0,
                },
            ),
            (
                Purpose::Warmup,
                LedgerTotals {
                    invocations: 1,
                    raw_ms: 0.5,
                },
            ),
        ]
        .into();
        let u = calibrate(&classified, &ledger);
        let raw: f64 = u.values().map(|u| u.raw_ms).sum();
        assert!(close(raw, 40.3));
        for (t, total) in [41.0, 200.0].into_iter().enumerate() {
            let billed: f64 = u.values().map(|u| u.billed_ms[t]).sum();
            assert!(close(billed, total), "tick {t}: {billed}");
        }
        for usage in u.values() {
            assert!(usage.billed_ms[1] >= usage.billed_ms[0]);
            assert!(usage.billed_ms[0] >= usage.raw_ms);
        }
    }

    #[test]
    fn calibration_takes_the_ledger_split_and_the_records_total() {
        // Records: 50 and 100 ms classified serve, two 0.5 ms warm-ups, all
        // at 1 GB. At 1 ms they bill 50 + 100 + 1 + 1 = 152 ms, at 100 ms
        // 100 + 100 + 100 + 100 = 400 ms.
        let records = vec![
            inv("f", 1, 0, 50.0),
            inv("f", 1, 1000, 100.0),
            inv("f", 1, 2000, 0.5),
            inv("f", 1, 3000, 0.5),
        ];
        let purposes = [
            Purpose::Serve,
            Purpose::Serve,
            Purpose::Warmup,
            Purpose::Warmup,
        ];
        let classified = usage(&records, &purposes);
        // The ledger knows the 50 ms one was a backup.
        let ledger: BTreeMap<Purpose, LedgerTotals> = [
            (
                Purpose::Serve,
                LedgerTotals {
                    invocations: 1,
                    raw_ms: 100.0,
                },
            ),
            (
                Purpose::Warmup,
                LedgerTotals {
                    invocations: 2,
                    raw_ms: 1.0,
                },
            ),
            (
                Purpose::Backup,
                LedgerTotals {
                    invocations: 1,
                    raw_ms: 50.0,
                },
            ),
        ]
        .into();
        let u = calibrate(&classified, &ledger);
        assert_eq!(u[&Purpose::Backup].invocations, 1);
        assert!(close(u[&Purpose::Warmup].raw_ms, 1.0));
        // 1 ms: raw 100 (serve), 1 (warm-up), 50 (backup) as the ledger
        // says (it agrees with the records' 151). Classified rounding per
        // invocation: 0 (serve), 0.5 (warm-up); backup has none classified:
        // half a tick. Estimates exceed raw by 0, 1 and 0.5; the records'
        // rounding of 152 - 151 = 1 ms is shared out in that proportion.
        let billed_1 = [100.0, 1.0 + 2.0 / 3.0, 50.0 + 1.0 / 3.0];
        assert!(close(u[&Purpose::Serve].billed_ms[0], billed_1[0]));
        assert!(close(u[&Purpose::Warmup].billed_ms[0], billed_1[1]));
        assert!(close(u[&Purpose::Backup].billed_ms[0], billed_1[2]));
        // 100 ms: rounding 25 (serve), 99.5 (warm-up), 50 (backup, none
        // classified): estimates 125, 200, 100, which exceed the 1 ms split
        // by 25, 198.33 and 49.67; the records add 400 - 152 = 248 ms.
        let wants = [
            125.0 - billed_1[0],
            200.0 - billed_1[1],
            100.0 - billed_1[2],
        ];
        let sum: f64 = wants.iter().sum();
        let billed_100: Vec<f64> = (0..3)
            .map(|i| billed_1[i] + 248.0 * wants[i] / sum)
            .collect();
        assert!(close(u[&Purpose::Serve].billed_ms[1], billed_100[0]));
        assert!(close(u[&Purpose::Warmup].billed_ms[1], billed_100[1]));
        assert!(close(u[&Purpose::Backup].billed_ms[1], billed_100[2]));
        // At 1 GB, GB-seconds are billed seconds; parts add up to the total.
        assert!(close(
            u[&Purpose::Backup].gb_seconds[1],
            billed_100[2] / 1000.0
        ));
        let total: f64 = u.values().map(|u| u.billed_ms[1]).sum();
        assert!(close(total, 400.0));
        for usage in u.values() {
            assert!(usage.billed_ms[1] >= usage.billed_ms[0]);
            assert!(usage.billed_ms[0] >= usage.raw_ms);
        }
        let parsed =
            ledger_totals(&serde_json::json!({"backup": {"invocations": 4, "duration_ms": 12.5}}));
        assert_eq!(
            parsed[&Purpose::Backup],
            LedgerTotals {
                invocations: 4,
                raw_ms: 12.5
            }
        );
        assert_eq!(parsed[&Purpose::Serve], LedgerTotals::default());
    }

    #[test]
    fn serving_invocations_get_the_idle_tail_back() {
        // Two serving invocations classified (12 and 150 ms at 1 GB), the
        // ledger says there were three.
        let records = vec![
            inv("f", 1, 0, 12.0),
            inv("f", 1, 100, 150.0),
            inv("f", 1, 900, 2.0),
        ];
        let purposes = [Purpose::Serve, Purpose::Serve, Purpose::Warmup];
        let mut u: BTreeMap<Purpose, Usage> = BTreeMap::new();
        u.insert(
            Purpose::Serve,
            Usage {
                invocations: 3,
                raw_ms: 300.0,
                billed_ms: [300.0, 500.0],
                gb_seconds: [0.3, 0.5],
            },
        );
        add_serve_tail(&mut u, &records, &purposes, 90.0);
        let serve = &u[&Purpose::Serve];
        assert!(close(serve.raw_ms, 570.0));
        // 1 ms: +90 each. 100 ms: 12 -> 102 bills 200 (+100), 150 -> 240
        // bills 300 (+100): +100 each.
        assert!(close(serve.billed_ms[0], 300.0 + 3.0 * 90.0));
        assert!(close(serve.billed_ms[1], 500.0 + 3.0 * 100.0));
        assert!(close(serve.gb_seconds[1], 0.8));
        // Nothing else changes; no tail, no change.
        let before = u.clone();
        add_serve_tail(&mut u, &records, &purposes, 0.0);
        assert_eq!(u, before);
    }

    #[test]
    fn the_ledger_check_pairs_counts() {
        let mut u = BTreeMap::new();
        let mut serve = Usage::default();
        serve.add(200.0, 1024);
        u.insert(Purpose::Serve, serve);
        let ledger = serde_json::json!({"serve": {"invocations": 1, "duration_ms": 200.0}, "warmup": {"invocations": 3}});
        let check = ledger_check(&u, &ledger);
        assert_eq!(check[0].0, Purpose::Serve);
        assert_eq!((check[0].1, check[0].2), (1, 1));
        assert!(close(check[0].3, 0.2) && close(check[0].4, 0.2));
        assert_eq!((check[1].1, check[1].2), (0, 3));
    }
}

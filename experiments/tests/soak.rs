//! The soak tool end to end, shrunk to seconds: 20 clients on 5 shared
//! connections against a real cache (proxy, local platform, node
//! processes, directory object store, warm-ups and backups) whose
//! environments are reclaimed by the platform's policy on a clock 600
//! times faster and by the tool every half second, serving or not. Every
//! answer must be right, no call may fail, and the report's figures must
//! add up.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use infinicache_experiments::soak::options::{
    CacheSettings, Mix, ReclaimTarget, SizeDistribution, Sizes, Target,
};
use infinicache_experiments::soak::{self, Progress, Settings, report};

fn tiny() -> Settings {
    Settings {
        clients: 20,
        connections: 5,
        keys_per_client: 4,
        duration: Duration::from_secs(4),
        mix: Mix {
            put: 40,
            get: 45,
            delete: 15,
        },
        sizes: Sizes {
            min: 1024,
            max: 64 * 1024,
            distribution: SizeDistribution::LogUniform,
        },
        data_shards: 4,
        parity_shards: 2,
        op_timeout: Duration::from_secs(60),
        reclaim_every: Duration::from_millis(500),
        reclaim_target: ReclaimTarget::Any,
        final_check: true,
        allow_misses: false,
        secret: None,
        target: Target::Start(CacheSettings {
            pool_size: 8,
            node_memory_mb: 256,
            // Idle environments go after 1-2.7 s, every one is recycled
            // after about 12 s, idle ones are also reclaimed at random;
            // warm-up every 100 ms, backup every 500 ms.
            time_scale: 600.0,
            random_reclaims_per_hour: 2.0,
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::from_secs(300),
            cos: "dir".into(),
            extra_args: Vec::new(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_reclaims_answers_everything_right_and_adds_up() {
    let settings = tiny();
    let report = soak::run(&settings, Progress::Off, Arc::new(AtomicBool::new(false)))
        .await
        .expect("the run takes place");
    let table = report::table(&report);
    eprintln!("{table}");

    // No failed call, no wrong answer: the run passes.
    assert_eq!(report.errors(), 0, "{table}");
    assert_eq!(report.wrong(), 0, "{table}");
    assert!(report.passed(), "{table}");
    assert!(report.error_samples.is_empty() && report.wrong_samples.is_empty());
    assert!(!report.stopped_early);

    // Every operation kind ran, and the rows add up to the total.
    let row = |op: &str| report.op(op).unwrap_or_else(|| panic!("no {op} row"));
    let (put, get, delete) = (row("PUT"), row("GET"), row("DELETE"));
    let total = report.total().expect("a total row");
    assert!(put.ops > 0 && get.ops > 0 && delete.ops > 0, "{table}");
    assert_eq!(total.ops, put.ops + get.ops + delete.ops);
    assert_eq!(total.errors, 0);
    assert_eq!(total.bytes, put.bytes + get.bytes);
    assert_eq!(delete.bytes, 0);
    let seconds = report.seconds;
    assert!(seconds >= 4.0, "the run lasted its duration: {seconds}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(total.ops_per_sec, total.ops as f64 / seconds));
    assert!(close(total.mb_per_sec, total.bytes as f64 / 1e6 / seconds));
    for r in [put, get, delete, total] {
        assert!(r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms * 1.001);
    }

    // Every GET and DELETE answered was judged; every byte a GET returned
    // was compared and matched what was written.
    let v = &report.verification;
    assert_eq!(v.gets_checked, get.ops);
    assert_eq!(v.deletes_checked, delete.ops);
    assert_eq!(v.values_matched + v.absent_as_expected, v.gets_checked);
    assert_eq!(v.bytes_matched, get.bytes);
    assert!(v.values_matched > 0, "{table}");

    // The final check read every key once.
    let check = report.final_check.as_ref().expect("a final check");
    assert_eq!(check.keys, 80);
    assert_eq!(check.errors, 0);
    assert_eq!(check.tally.gets_checked, 80);
    assert_eq!(
        check.tally.values_matched + check.tally.absent_as_expected,
        80
    );

    // Reclaims happened, from the tool and counted by the platform.
    let tool = report.reclaimer.as_ref().expect("the tool reclaimed");
    assert!(tool.reclaimed > 0, "{table}");
    assert!(
        report.platform["reclaims_admin"] >= tool.reclaimed,
        "{table}"
    );
    assert!(report.platform["cold_starts"] > 0);

    // The proxy's memory was read, and the timeline is consistent.
    let memory = &report.proxy_memory;
    let peak = memory.peak_bytes.expect("the proxy's peak memory");
    assert!(peak > 0 && peak >= memory.end_bytes.unwrap_or(0));
    assert!(peak >= memory.peak_sampled_bytes.unwrap_or(0));
    assert!(!report.timeline.is_empty());
    let last = report.timeline.last().expect("samples");
    assert!(last.ops() <= total.ops && last.errors == 0);
    assert!(
        report
            .timeline
            .windows(2)
            .all(|w| w[0].seconds <= w[1].seconds && w[0].ops() <= w[1].ops())
    );

    // The files are written and say the same.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = report::write_results(&report, dir.path()).expect("results written");
    assert_eq!(files.len(), 3);
    let csv = std::fs::read_to_string(dir.path().join("soak.csv")).expect("soak.csv");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&format!("all,{},0,", total.ops)))
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("soak.json")).expect("soak.json"),
    )
    .expect("soak.json is JSON");
    assert_eq!(json["verification"]["bytes_matched"], v.bytes_matched);
    assert_eq!(json["run_id"], report.run_id);
    let timeline = std::fs::read_to_string(dir.path().join("timeline.csv")).expect("timeline");
    assert_eq!(timeline.lines().count(), report.timeline.len() + 1);
}

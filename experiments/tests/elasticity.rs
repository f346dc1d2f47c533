//! The elasticity experiment end to end, shrunk to seconds: a real cache with
//! the directory object store, two-minute buckets, a window that grows while
//! objects are written, buckets that expire, a whole-pool reclaim and cold
//! objects read back; every output is written.

use std::time::Duration;

use infinicache_experiments::elasticity::{self, Phase, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_grows_and_shrinks_the_window_and_recovers_from_the_cos() {
    let settings = Settings {
        grow_hours: 9.0 / 60.0,
        steady_hours: 2.0 / 60.0,
        shrink_hours: 8.0 / 60.0,
        time_scale: 60.0,
        pool_size: 15,
        data_shards: 2,
        parity_shards: 1,
        node_memory_mb: 128,
        // 1 MB of chunks per function: 8 objects of 64 KiB a minute (about
        // 0.8 MB stored) fill a 3-function step within two minutes.
        node_capacity_mb: 1,
        objects_per_minute: 8,
        object_size: 64 * 1024,
        hot_objects: 8,
        keep_objects: 12,
        bucket_length: Duration::from_secs(120),
        active_buckets: 1,
        available_buckets: 2,
        grow_threshold: 0.5,
        warmup_interval: Duration::from_secs(60),
        backup_interval: Duration::ZERO,
        cos_write_mode: "async".into(),
        reclaim_args: Vec::new(),
        concurrency: 4,
        settle: Duration::from_secs(2),
    };
    let report = elasticity::run(&settings, |line| eprintln!("{line}"))
        .await
        .expect("valid settings");
    let table = elasticity::table(&report);
    eprintln!("{table}");

    // Never wrong bytes, never a live object lost, never a deleted one back.
    let t = &report.tally;
    assert_eq!(t.corrupt, 0, "{table}");
    assert_eq!(t.missing, 0, "{table}");
    assert_eq!(t.resurrected, 0, "{table}");
    assert_eq!(
        t.hits + t.corrupt + t.missing + t.get_errors + t.resurrected,
        t.gets
    );
    assert_eq!(t.puts, 72, "8 objects a minute for 9 minutes");
    assert!(report.objects_kept > 0 && report.objects_kept <= 12);

    // The window grew past one step, buckets expired, and it shrank again.
    let step = report.step as u64;
    assert_eq!(step, 3);
    let peak = report.peak_functions();
    assert!(peak > step, "grew at least once: {table}");
    assert!(
        report.growth_levels().iter().all(|level| level % step == 0),
        "functions come in k+r steps: {:?}",
        report.growth_levels()
    );
    assert!(report.buckets_expired() >= 1, "{table}");
    let shrunk = report.phase_end(Phase::Shrink).expect("shrink samples");
    assert!(shrunk.functions < peak, "functions fell: {table}");
    assert!(
        shrunk.memory_used_bytes < report.peak_memory_bytes(),
        "memory fell: {table}"
    );
    assert_eq!(shrunk.objects, report.objects_kept, "{table}");

    // Both recoveries read every kept object back from the COS.
    assert_eq!(report.recoveries.len(), 2);
    for recovery in &report.recoveries {
        assert_eq!(recovery.objects_read, report.objects_kept, "{table}");
        assert!(recovery.client_mb_s() > 0.0, "{table}");
    }
    let reclaimed = report.recovery(Phase::Reclaim).expect("reclaim recovery");
    assert!(reclaimed.environments_reclaimed > 0, "{table}");
    assert!(reclaimed.chunks_recovered > 0, "{table}");
    assert!(reclaimed.repair_mb_s() > 0.0, "{table}");
    let cold = report.recovery(Phase::Cold).expect("cold recovery");
    assert!(cold.cold_before > 0, "kept objects expired: {table}");

    // Cumulative billing never goes down.
    let totals: Vec<f64> = report.samples.iter().map(|s| s.gb_total()).collect();
    assert!(totals.windows(2).all(|w| w[1] >= w[0] - 1e-9), "{totals:?}");
    assert!(report.gb_seconds("serve") > 0.0);

    // Every output is written; the charts are well-formed XML.
    let dir = tempfile::tempdir().expect("temp dir");
    let files = elasticity::write_results(&report, dir.path()).expect("write results");
    assert_eq!(files.len(), 7);
    let csv = std::fs::read_to_string(dir.path().join("elasticity.csv")).expect("csv");
    assert_eq!(csv.lines().count(), report.samples.len() + 1);
    for phase in ["grow", "steady", "reclaim", "shrink", "cold"] {
        assert!(csv.contains(&format!(",{phase},")), "no {phase} sample");
    }
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
    {
        let svg = std::fs::read_to_string(file).expect("svg");
        for token in xmlparser::Tokenizer::from(svg.as_str()) {
            token.unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        }
    }
}

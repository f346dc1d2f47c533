//! The availability experiment end to end, shrunk to seconds: a real cache,
//! environments reclaimed at random, backups on, and every output written.

use std::time::Duration;

use infinicache_experiments::availability::{self, Settings};
use infinicache_experiments::chart::{Chart, write_svg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_under_random_reclaims_reports_every_figure() {
    let settings = Settings {
        hours: 0.1,
        time_scale: 60.0,
        pool_size: 6,
        data_shards: 4,
        parity_shards: 2,
        objects: 10,
        object_size: 10_000,
        sweep_minutes: 2,
        warmup_interval: Duration::from_secs(60),
        backup_interval: Duration::from_secs(60),
        // About one reclaim per environment every two simulated minutes.
        reclaim_args: vec!["--random-reclaims-per-hour".into(), "30".into()],
        concurrency: 4,
    };
    let mut reported = 0;
    let run = availability::run(&settings, "stress", |_| reported += 1).await;

    assert_eq!(reported, 1, "one (partial) hour");
    let hour = &run.hours[0];
    assert_eq!(
        hour.reads, 30,
        "10 objects read every 2 of 6 simulated minutes"
    );
    assert_eq!(
        hour.hits + hour.misses + hour.errors + hour.corrupt,
        hour.reads
    );
    assert_eq!(run.corrupt(), 0, "never wrong bytes");
    assert!(
        hour.reclaims.values().sum::<u64>() > 0,
        "the policy reclaimed environments: {hour:?}"
    );
    assert!(
        hour.invocations.get("backup").copied().unwrap_or(0) > 0,
        "backups ran: {hour:?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let csv = availability::csv(std::slice::from_ref(&run));
    assert_eq!(csv.lines().count(), 2);
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|line| line.starts_with("stress,1,30,"))
    );
    let chart = availability::chart(std::slice::from_ref(&run));
    assert!(chart.to_svg().contains("stress"));
    write_svg(dir.path().join("availability.svg"), &chart).expect("write chart");
    assert!(availability::table(&[run]).contains("overall availability"));
}

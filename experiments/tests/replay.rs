//! Trace replay end to end: the reader on a hand-written fixture in the IBM
//! format (good and malformed rows), and a tiny synthetic trace replayed
//! against a real cache (the debug proxy, platform and node binaries),
//! checked against what the cache holds afterwards and for a consistent
//! cost report. No timing is asserted.

use std::path::PathBuf;
use std::time::Duration;

use infinicache_experiments::chart::Chart;
use infinicache_experiments::cost::{Arch, Purpose, TICKS_MS};
use infinicache_experiments::replay::{self, ProxyTarget, Settings};
use infinicache_experiments::trace::synthetic::{self, SyntheticSpec};
use infinicache_experiments::trace::{Method, Properties, TraceErrorKind, TraceReader};
use infinicache_tests::harness::TestCache;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ibm_trace_sample.csv")
}

#[test]
fn the_reader_parses_the_fixture_and_names_each_malformed_row() {
    let rows: Vec<_> = TraceReader::open(fixture())
        .expect("the header is valid")
        .collect();
    assert_eq!(rows.len(), 13, "one result per row after the header");

    let good: Vec<_> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        good.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 8, 12, 14]
    );
    let first = good[0];
    assert_eq!(first.uri, "/v2/library/ubuntu/blobs/sha256:5ba4f30e5bea");
    assert_eq!(
        (first.method.clone(), first.status, first.size),
        (Method::Get, 200, 48_324_352)
    );
    assert_eq!(first.timestamp_ms, 1_497_916_800_127);
    assert_eq!(first.duration, Some(0.412));
    assert_eq!(first.host, "dal09-registry-1");
    // A quoted user agent with commas and parentheses.
    assert_eq!(
        good[1].user_agent,
        "docker/17.03.1-ce go/go1.7.5 UpstreamClient(Docker-Client/17.03.1-ce (linux), build c6d412e)"
    );
    assert_eq!(good[2].method, Method::Head);
    assert_eq!((good[3].method.clone(), good[3].status), (Method::Put, 201));
    assert_eq!(good[4].status, 404);
    // Epoch seconds and an explicit +00:00 offset.
    assert_eq!(good[5].timestamp_ms, 1_497_916_805_500);
    assert_eq!(good[6].timestamp_ms, 1_497_916_808_125);
    assert_eq!(good[6].user_agent, "registry-mirror \"edge\" v2.6");
    // The same blob read again 41 minutes later.
    assert_eq!(good[7].uri, first.uri);

    let errors: Vec<(u64, Option<&str>, TraceErrorKind)> = rows
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| (e.line, e.column.as_deref(), e.kind))
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                7,
                Some("http.response.written"),
                TraceErrorKind::NegativeSize
            ),
            (9, Some("timestamp"), TraceErrorKind::BadTimestamp),
            (
                10,
                Some("http.response.written"),
                TraceErrorKind::MissingColumn
            ),
            (11, Some("http.request.duration"), TraceErrorKind::BadNumber),
            (13, Some("http.response.status"), TraceErrorKind::BadNumber),
        ]
    );
    for err in rows.iter().filter_map(|r| r.as_ref().err()) {
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("line {}, column ", err.line)),
            "{text}"
        );
    }

    let properties = Properties::measure(good.iter().copied());
    assert_eq!(properties.requests, 6, "GETs, the 404 included");
    assert_eq!(properties.objects, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_synthetic_trace_replays_with_consistent_figures() {
    // Six simulated minutes of 30 objects at x60 (6 s), sizes / 1000.
    let spec = SyntheticSpec {
        hours: 0.1,
        objects: 30,
        seed: 3,
        ..SyntheticSpec::default()
    };
    let requests = synthetic::generate(&spec).expect("valid spec");
    let gets = requests.len() as u64;
    let settings = Settings {
        time_scale: 60.0,
        size_scale: 1000.0,
        concurrency: 4,
        pool_size: 6,
        data_shards: 4,
        parity_shards: 2,
        node_memory_mb: 64,
        node_reserved_mb: 16,
        warmup_interval: Duration::from_secs(60),
        backup_interval: Duration::from_secs(120),
        hours: Some(spec.hours),
        ..Settings::default()
    };
    let args = replay::proxy_args(&settings);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = TestCache::start(&args).await;
    let target = ProxyTarget {
        client: cache.client_addr.clone(),
        admin: Some(cache.admin_addr),
        platform: Some(cache.platform_addr),
    };
    let mut hours_seen = 0;
    let report = replay::run_against(
        &settings,
        &target,
        requests.clone().into_iter().map(Ok),
        |_| hours_seen += 1,
    )
    .await
    .expect("the replay runs");

    // Every GET is a hit or a miss; nothing read wrong bytes.
    assert_eq!(report.gets, gets);
    assert_eq!(report.hits + report.misses, report.gets);
    assert_eq!(report.corrupt, 0);
    assert!(
        report.puts >= report.misses - report.errors,
        "a PUT after every miss"
    );
    assert_eq!(report.hours.iter().map(|h| h.gets).sum::<u64>(), gets);
    assert!(hours_seen >= 1);
    assert_eq!(report.trace.malformed, 0);

    // What the cache holds now is exactly what was PUT for each key, at
    // its replayed size (or nothing, if it was lost or evicted).
    let client = cache.client(4, 2).await;
    let mut present = 0;
    for request in &requests {
        let size = settings.scaled(request.size);
        if let Some(bytes) = client.get(request.uri.as_str()).await.expect("GET") {
            assert!(
                replay::is_payload(&request.uri, size, &bytes),
                "{}: wrong bytes",
                request.uri
            );
            present += 1;
        }
    }
    assert!(present > 0, "some objects are cached");

    // The cost report adds up, and the coarser tick never bills less.
    let cost = &report.cost;
    assert!(
        report.usage_source.contains("billing records"),
        "{}",
        report.usage_source
    );
    let invocations: u64 = cost.usage.values().map(|u| u.invocations).sum();
    assert!(invocations > 0, "the platform billed invocations");
    assert!(cost.usage[&Purpose::Serve].invocations > 0);
    for usage in cost.usage.values() {
        assert!(usage.billed_ms[1] >= usage.billed_ms[0]);
        assert!(usage.billed_ms[0] >= usage.raw_ms);
    }
    for arch in Arch::ALL {
        let fine = cost.lambda(arch, TICKS_MS[0]).expect("1 ms line");
        let coarse = cost.lambda(arch, TICKS_MS[1]).expect("100 ms line");
        for line in [fine, coarse] {
            assert!((line.total - line.parts_sum()).abs() <= 1e-9 * line.total.max(1.0));
            assert!(line.total > 0.0);
        }
        assert!(coarse.total >= fine.total);
        assert!(
            coarse.warmup >= fine.warmup
                && coarse.serve >= fine.serve
                && coarse.backup >= fine.backup
        );
    }
    assert!(cost.s3.total >= 0.0);
    assert!((cost.s3.total - (cost.s3.gets + cost.s3.puts + cost.s3.transfer)).abs() < 1e-9);
    assert!((cost.elasticache_paper.total - 10.368 * spec.hours).abs() < 1e-9);

    // Every output is written.
    let dir = tempfile::tempdir().expect("temp dir");
    let files = replay::write_results(&report, dir.path()).expect("write results");
    assert!(files.iter().all(|f| f.is_file()));
    let text = replay::table(&report);
    assert!(
        text.contains("ElastiCache $518.40 vs InfiniCache $16.51-$20.52"),
        "{text}"
    );
    assert!(replay::cost_chart(&report).to_svg().contains("total"));
    cache.stop().await;
}

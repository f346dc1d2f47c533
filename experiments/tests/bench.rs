//! The benchmark tool end to end, shrunk to a few operations per cell: it
//! starts its own cache (native protocol and RESP frontend), a second one
//! with TLS on its client listener (native-tls) and redis-server, measures
//! every cell on all four targets, verifies every GET, and writes the
//! table, the CSV and the charts. No timing is asserted (the
//! machines running tests are shared and slow).

use infinicache_experiments::bench::servers::find_executable;
use infinicache_experiments::bench::{
    self, CellLength, Op, Progress, Settings, TargetKind, report,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_cells_on_every_target_are_measured_verified_and_written() {
    assert!(
        find_executable(std::path::Path::new("redis-server")).is_some(),
        "redis-server is needed (make redis)"
    );
    // Every target, the opt-in native-tls included.
    let targets = TargetKind::EVERY.to_vec();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        targets: targets.clone(),
        ops: vec![Op::Get, Op::Put],
        sizes: vec![1 << 10, 64 << 10],
        concurrency: vec![1, 2],
        keys: 8,
        length: CellLength::Ops(12),
        data_shards: 4,
        parity_shards: 2,
        pool_size: 6,
        out: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let report = bench::run(&settings, &Progress::hidden())
        .await
        .expect("the benchmark runs");

    assert_eq!(report.cells.len(), targets.len() * 2 * 2 * 2);
    for cell in &report.cells {
        assert_eq!(cell.ops, 12, "every operation counted: {cell:?}");
        assert_eq!(
            (cell.errors, cell.mismatches),
            (0, 0),
            "no failures: {:?}",
            cell.messages
        );
        assert!(cell.quantile(0.5) > std::time::Duration::ZERO);
        assert!(cell.mb_per_sec() > 0.0);
    }
    assert_eq!(report.failures(), 0, "{:?}", report.setup_errors);

    let files = report::write_all(&report, dir.path()).expect("write results");
    let csv = std::fs::read_to_string(dir.path().join("bench.csv")).expect("bench.csv");
    assert_eq!(csv.lines().count(), 1 + report.cells.len());
    for target in &targets {
        assert!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{target},get,65536,64KiB,2,12,0,0,"))),
            "{target} in {csv}"
        );
    }
    for name in [
        "latency-get-c1",
        "latency-put-c2",
        "throughput-get-1KiB",
        "throughput-put-64KiB",
    ] {
        let path = dir.path().join(format!("{name}.svg"));
        assert!(files.contains(&path), "{name}.svg written");
        let svg = std::fs::read_to_string(&path).expect("svg");
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        for target in &targets {
            assert!(svg.contains(target.name()), "{target} in {name}");
        }
    }
    let table = report::table(&report);
    assert!(table.contains("native     GET     1KiB"), "{table}");
    assert!(table.contains("native-tls GET     1KiB"), "{table}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("cache (TLS): ") && n.contains("--tls-cert")),
        "{:?}",
        report.notes
    );
    let comparison = report::comparison(&report);
    assert!(comparison.contains("Against redis-server"), "{comparison}");
    assert!(comparison.contains("TLS against plain TCP"), "{comparison}");
}

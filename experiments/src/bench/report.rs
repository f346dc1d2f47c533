//! Results as a table (stdout), CSV and charts.
//!
//! * `bench.csv`: one line per cell (target, op, size, concurrency, ops,
//!   errors, ops/s, MB/s, latency mean and percentiles, load average);
//! * `latency-<op>-c<conc>.svg`: p50 and p99 latency by object size, one
//!   pair of bars per target (log axis);
//! * `throughput-<op>-<size>.svg`: MB/s by concurrency, one bar per target;
//! * a `.png` next to every SVG when `rsvg-convert` is installed.
//!
//! The comparison ([`comparison`]) puts each target next to redis-server
//! for the same cell and checks the acceptance targets: for objects of
//! 1 MiB and more, native GET throughput at least Redis's; for 1 KiB,
//! native GET and PUT p50 within 3x of Redis's. When the run measured both
//! native and native-tls, it also puts them side by side: what TLS costs
//! ([`tls_overhead`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chart::{BarChart, write_svg};

use super::measure::{CellResult, Report};
use super::options::{Op, TargetKind, size_label};

/// Writing into a `String` cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// A latency for people: `359µs`, `1.05ms`, `12.3ms`, `1.24s`.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.1}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A rate with a sensible number of digits.
fn fmt_rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_load(load: Option<f64>) -> String {
    load.map_or("-".into(), |l| format!("{l:.2}"))
}

/// The width of the table's target column for `targets`: the longest
/// name, and at least 7 (so tables without native-tls look as they always
/// did).
pub fn target_width(targets: impl IntoIterator<Item = TargetKind>) -> usize {
    targets
        .into_iter()
        .map(|t| t.name().len())
        .max()
        .unwrap_or(0)
        .max(7)
}

/// The table's header line, with a target column `width` wide.
pub fn header(width: usize) -> String {
    format!(
        "{:<width$} {:<4} {:>7} {:>4} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>4} {:>4} {:>5}",
        "target",
        "op",
        "size",
        "conc",
        "ops",
        "ops/s",
        "MB/s",
        "mean",
        "p50",
        "p90",
        "p99",
        "max",
        "err",
        "bad",
        "load"
    )
}

/// One cell as a table line, with a target column `width` wide.
pub fn row(c: &CellResult, width: usize) -> String {
    format!(
        "{:<width$} {:<4} {:>7} {:>4} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>4} {:>4} {:>5}",
        c.target.name(),
        c.op.label(),
        size_label(c.size),
        c.concurrency,
        c.ops,
        fmt_rate(c.ops_per_sec()),
        fmt_rate(c.mb_per_sec()),
        fmt_duration(c.mean()),
        fmt_duration(c.quantile(0.5)),
        fmt_duration(c.quantile(0.9)),
        fmt_duration(c.quantile(0.99)),
        fmt_duration(c.max()),
        c.errors,
        c.mismatches,
        fmt_load(c.load),
    )
}

/// The whole run as a table, with its notes and failures.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for note in &report.notes {
        w!(out, "# {note}\n");
    }
    let width = target_width(report.cells.iter().map(|c| c.target));
    w!(out, "{}\n", header(width));
    for cell in &report.cells {
        w!(out, "{}\n", row(cell, width));
    }
    w!(
        out,
        "latency: per successful operation, client call only; MB/s: 10^6 bytes of values per \
         second of the measured phase; err: failed operations, bad: GETs with wrong or missing \
         data (both warm-up included); load: 1-minute load average at the cell's start\n"
    );
    if !report.setup_errors.is_empty() {
        w!(
            out,
            "{} key(s) failed to fill or clean up:\n",
            report.setup_failures
        );
        for message in &report.setup_errors {
            w!(out, "  {message}\n");
        }
    }
    out
}

/// One line per cell.
pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "target,op,size_bytes,size,concurrency,ops,errors,mismatches,wall_s,ops_per_s,mb_per_s,\
         mean_us,p50_us,p90_us,p99_us,p999_us,max_us,load1\n",
    );
    let us = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
    for c in &report.cells {
        w!(
            out,
            "{},{},{},{},{},{},{},{},{:.3},{:.2},{:.3},{},{},{},{},{},{},{}\n",
            c.target,
            c.op,
            c.size,
            size_label(c.size),
            c.concurrency,
            c.ops,
            c.errors,
            c.mismatches,
            c.wall.as_secs_f64(),
            c.ops_per_sec(),
            c.mb_per_sec(),
            us(c.mean()),
            us(c.quantile(0.5)),
            us(c.quantile(0.9)),
            us(c.quantile(0.99)),
            us(c.quantile(0.999)),
            us(c.max()),
            c.load.map_or(String::new(), |l| format!("{l:.2}")),
        );
    }
    out
}

fn distinct<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The charts of a run, with their file names (without extension).
pub fn charts(report: &Report) -> Vec<(String, BarChart)> {
    let cells = &report.cells;
    let targets = distinct(cells.iter().map(|c| c.target));
    let ops = distinct(cells.iter().map(|c| c.op));
    let sizes = distinct(cells.iter().map(|c| c.size));
    let concs = distinct(cells.iter().map(|c| c.concurrency));
    let mut out = Vec::new();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for &op in &ops {
        for &conc in &concs {
            let mut chart = BarChart::new(
                format!("{} latency by object size, concurrency {conc}", op.label()),
                "object size",
                "latency (ms, log)",
            )
            .categories(sizes.iter().map(|&s| size_label(s)))
            .y_log(true);
            for &target in &targets {
                for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
                    let values = sizes.iter().map(|&size| {
                        report
                            .cell(target, op, size, conc)
                            .filter(|c| c.ops > 0)
                            .map_or(f64::NAN, |c| ms(c.quantile(q)))
                    });
                    chart = chart.series(format!("{target} {name}"), values);
                }
            }
            out.push((format!("latency-{op}-c{conc}"), chart));
        }
    }
    for &op in &ops {
        for &size in &sizes {
            let mut chart = BarChart::new(
                format!(
                    "{} throughput by concurrency, {} objects",
                    op.label(),
                    size_label(size)
                ),
                "concurrent operations",
                "throughput (MB/s)",
            )
            .categories(concs.iter().map(|c| format!("{c}")));
            for &target in &targets {
                let values = concs.iter().map(|&conc| {
                    report
                        .cell(target, op, size, conc)
                        .map_or(f64::NAN, CellResult::mb_per_sec)
                });
                chart = chart.series(target.name(), values);
            }
            out.push((format!("throughput-{op}-{}", size_label(size)), chart));
        }
    }
    out
}

/// Writes `svg` as a PNG next to it if `rsvg-convert` is installed;
/// returns the PNG's path, or `None` without the converter or on failure.
pub fn svg_to_png(svg: &Path) -> Option<PathBuf> {
    let converter = super::servers::find_executable(Path::new("rsvg-convert"))?;
    let png = svg.with_extension("png");
    let status = std::process::Command::new(converter)
        .arg("--background-color=white")
        .arg("-o")
        .arg(&png)
        .arg(svg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then_some(png)
}

/// Writes `bench.csv`, the charts (SVG, and PNG when possible) and
/// `bench.txt` (the table and the comparison) into `dir`; returns the
/// files written.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let mut written = Vec::new();
    let csv_path = dir.join("bench.csv");
    std::fs::write(&csv_path, csv(report))
        .map_err(|err| format!("cannot write {}: {err}", csv_path.display()))?;
    written.push(csv_path);
    let txt_path = dir.join("bench.txt");
    std::fs::write(
        &txt_path,
        format!("{}\n{}", table(report), comparison(report)),
    )
    .map_err(|err| format!("cannot write {}: {err}", txt_path.display()))?;
    written.push(txt_path);
    for (name, chart) in charts(report) {
        let path = dir.join(format!("{name}.svg"));
        write_svg(&path, &chart)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        if let Some(png) = svg_to_png(&path) {
            written.push(png);
        }
        written.push(path);
    }
    Ok(written)
}

/// `a / b`, or NaN.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 && a.is_finite() {
        a / b
    } else {
        f64::NAN
    }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "-".into()
    }
}

/// Each target next to redis-server, cell by cell, and the acceptance
/// targets ([`against_redis`]); then native-tls next to native
/// ([`tls_overhead`]). Empty when the run had neither redis cells nor both
/// native and native-tls cells.
pub fn comparison(report: &Report) -> String {
    let redis = against_redis(report);
    let tls = tls_overhead(report);
    match (redis.is_empty(), tls.is_empty()) {
        (_, true) => redis,
        (true, false) => tls,
        (false, false) => format!("{redis}\n{tls}"),
    }
}

/// native-tls next to native, cell by cell: what TLS costs. Empty unless
/// the run measured both.
pub fn tls_overhead(report: &Report) -> String {
    let mut out = String::new();
    let has = |kind| report.cells.iter().any(|c| c.target == kind);
    if !has(TargetKind::Native) || !has(TargetKind::NativeTls) {
        return out;
    }
    w!(
        out,
        "TLS against plain TCP (ratios: native-tls / native; throughput below 1x and p50 above \
         1x are what TLS costs)\n"
    );
    w!(
        out,
        "{:<4} {:>7} {:>4} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}\n",
        "op",
        "size",
        "conc",
        "MB/s",
        "tls",
        "thr",
        "p50",
        "tls",
        "p50",
        "p99",
        "tls",
        "p99",
        "load"
    );
    for plain in report
        .cells
        .iter()
        .filter(|c| c.target == TargetKind::Native)
    {
        let Some(tls) = report.cell(
            TargetKind::NativeTls,
            plain.op,
            plain.size,
            plain.concurrency,
        ) else {
            continue;
        };
        let secs = |c: &CellResult, q| c.quantile(q).as_secs_f64();
        w!(
            out,
            "{:<4} {:>7} {:>4} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}\n",
            plain.op.label(),
            size_label(plain.size),
            plain.concurrency,
            fmt_rate(plain.mb_per_sec()),
            fmt_rate(tls.mb_per_sec()),
            fmt_ratio(ratio(tls.mb_per_sec(), plain.mb_per_sec())),
            fmt_duration(plain.quantile(0.5)),
            fmt_duration(tls.quantile(0.5)),
            fmt_ratio(ratio(secs(tls, 0.5), secs(plain, 0.5))),
            fmt_duration(plain.quantile(0.99)),
            fmt_duration(tls.quantile(0.99)),
            fmt_ratio(ratio(secs(tls, 0.99), secs(plain, 0.99))),
            fmt_load(tls.load),
        );
    }
    out
}

/// Each target next to redis-server, cell by cell, and the acceptance
/// targets. Empty when the run had no redis cells.
pub fn against_redis(report: &Report) -> String {
    let mut out = String::new();
    if !report.cells.iter().any(|c| c.target == TargetKind::Redis) {
        return out;
    }
    let others: Vec<TargetKind> = distinct(report.cells.iter().map(|c| c.target))
        .into_iter()
        .filter(|&t| t != TargetKind::Redis)
        .collect();
    let width = target_width(others.iter().copied());
    w!(
        out,
        "Against redis-server (ratios: target / redis; throughput above 1x and p50 below 1x \
         favour the target)\n"
    );
    w!(
        out,
        "{:<4} {:>7} {:>4} {:<width$} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}\n",
        "op",
        "size",
        "conc",
        "target",
        "MB/s",
        "redis",
        "thr",
        "p50",
        "redis",
        "p50",
        "p99",
        "redis",
        "load"
    );
    let mut checks = Vec::new();
    for redis in report
        .cells
        .iter()
        .filter(|c| c.target == TargetKind::Redis)
    {
        for &target in &others {
            let Some(c) = report.cell(target, redis.op, redis.size, redis.concurrency) else {
                continue;
            };
            let thr = ratio(c.mb_per_sec(), redis.mb_per_sec());
            let p50 = ratio(
                c.quantile(0.5).as_secs_f64(),
                redis.quantile(0.5).as_secs_f64(),
            );
            w!(
                out,
                "{:<4} {:>7} {:>4} {:<width$} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}\n",
                redis.op.label(),
                size_label(redis.size),
                redis.concurrency,
                target.name(),
                fmt_rate(c.mb_per_sec()),
                fmt_rate(redis.mb_per_sec()),
                fmt_ratio(thr),
                fmt_duration(c.quantile(0.5)),
                fmt_duration(redis.quantile(0.5)),
                fmt_ratio(p50),
                fmt_duration(c.quantile(0.99)),
                fmt_duration(redis.quantile(0.99)),
                fmt_load(c.load),
            );
            if target != TargetKind::Native {
                continue;
            }
            let cell = format!(
                "{} {} c={}",
                redis.op.label(),
                size_label(redis.size),
                redis.concurrency
            );
            if redis.op == Op::Get && redis.size >= 1 << 20 {
                checks.push((
                    format!("native {cell}: throughput >= redis"),
                    thr >= 1.0,
                    fmt_ratio(thr),
                ));
            }
            if redis.size <= 1 << 10 {
                checks.push((
                    format!("native {cell}: p50 <= 3x redis"),
                    p50 <= 3.0,
                    fmt_ratio(p50),
                ));
            }
        }
    }
    if !checks.is_empty() {
        w!(out, "Acceptance targets:\n");
        for (what, met, value) in checks {
            let verdict = if met { "met" } else { "MISSED" };
            w!(out, "  {verdict:<6} {what} ({value})\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Chart;
    use hdrhistogram::Histogram;

    fn cell(target: TargetKind, op: Op, size: usize, conc: usize, micros: u64) -> CellResult {
        let mut latency = Histogram::new_with_bounds(1, 1 << 42, 3).expect("histogram");
        for i in 0..100 {
            latency.record(micros * 1000 + i).expect("record");
        }
        CellResult {
            target,
            op,
            size,
            concurrency: conc,
            ops: 100,
            errors: 0,
            mismatches: 0,
            wall: Duration::from_micros(micros * 100),
            latency,
            load: Some(1.5),
            messages: Vec::new(),
        }
    }

    fn sample() -> Report {
        let mut cells = Vec::new();
        for (target, base) in [(TargetKind::Native, 400), (TargetKind::Redis, 100)] {
            for size in [1024, 1 << 20] {
                for conc in [1, 16] {
                    for op in [Op::Get, Op::Put] {
                        let scale = if size > 1024 { 10 } else { 1 };
                        cells.push(cell(target, op, size, conc, base * scale));
                    }
                }
            }
        }
        Report {
            cells,
            notes: vec!["test run".into()],
            ..Report::default()
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_micros(359)), "359µs");
        assert_eq!(fmt_duration(Duration::from_micros(1_050)), "1.05ms");
        assert_eq!(fmt_duration(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_240)), "1.24s");
    }

    #[test]
    fn table_csv_and_charts_cover_every_cell() {
        let report = sample();
        let table = table(&report);
        assert!(table.starts_with("# test run\n"));
        assert_eq!(table.lines().filter(|l| l.starts_with("native")).count(), 8);
        let csv = csv(&report);
        assert_eq!(csv.lines().count(), 17);
        assert!(
            csv.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("native,get,1024,1KiB,1,100,0,0,"))
        );
        let charts = charts(&report);
        let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency-get-c1",
                "latency-get-c16",
                "latency-put-c1",
                "latency-put-c16",
                "throughput-get-1KiB",
                "throughput-get-1MiB",
                "throughput-put-1KiB",
                "throughput-put-1MiB",
            ]
        );
        let svg = charts[0].1.to_svg();
        assert!(svg.contains("native p50") && svg.contains("redis p99"));
    }

    /// native (400 µs), native-tls (500 µs) and, with `redis`, redis
    /// (100 µs): every op, 1 KiB and 1 MiB, concurrency 1 and 16.
    fn sample_tls(redis: bool) -> Report {
        let mut targets = vec![(TargetKind::Native, 400), (TargetKind::NativeTls, 500)];
        if redis {
            targets.push((TargetKind::Redis, 100));
        }
        let mut cells = Vec::new();
        for (target, base) in targets {
            for size in [1024, 1 << 20] {
                for conc in [1, 16] {
                    for op in [Op::Get, Op::Put] {
                        cells.push(cell(target, op, size, conc, base));
                    }
                }
            }
        }
        Report {
            cells,
            ..Report::default()
        }
    }

    #[test]
    fn native_tls_is_reported_like_the_others() {
        let report = sample_tls(true);
        let table = table(&report);
        // The target column widens for the longer name, and every row of
        // the table lines up with the header.
        assert_eq!(target_width(TargetKind::ALL), 7);
        assert_eq!(target_width(TargetKind::EVERY), 10);
        assert!(table.contains("native-tls GET     1KiB"), "{table}");
        assert!(table.contains("native     GET     1KiB"), "{table}");
        let widths: Vec<usize> = table
            .lines()
            .filter(|l| {
                l.starts_with("target") || l.starts_with("native") || l.starts_with("redis")
            })
            .map(|l| l.chars().count())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
        assert_eq!(
            table
                .lines()
                .filter(|l| l.starts_with("native-tls "))
                .count(),
            8
        );
        let csv = csv(&report);
        assert!(
            csv.lines()
                .any(|l| l.starts_with("native-tls,put,1048576,1MiB,16,100,0,0,")),
            "{csv}"
        );
        let charts = charts(&report);
        let svg = charts[0].1.to_svg();
        assert!(svg.contains("native-tls p50") && svg.contains("native-tls p99"));
        let throughput = &charts
            .iter()
            .find(|(n, _)| n == "throughput-get-1MiB")
            .expect("throughput chart")
            .1;
        assert!(throughput.to_svg().contains("native-tls"));

        let text = comparison(&report);
        // Against redis: native-tls is a row like native, without checks.
        assert!(text.contains("Against redis-server"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("GET     1KiB    1 native-tls")),
            "{text}"
        );
        assert!(!text.contains("native-tls GET"), "{text}");
        // native-tls against native: 0.80x the throughput, 1.25x the p50.
        assert!(text.contains("TLS against plain TCP"), "{text}");
        let tls = tls_overhead(&report);
        assert_eq!(tls.lines().count(), 2 + 8, "{tls}");
        let row = tls
            .lines()
            .find(|l| l.starts_with("PUT     1MiB   16"))
            .expect("PUT 1MiB c=16 row");
        assert!(row.contains("0.80x") && row.contains("1.25x"), "{row}");
    }

    #[test]
    fn tls_overhead_needs_both_native_targets() {
        // Without redis, the comparison is the TLS section alone.
        let text = comparison(&sample_tls(false));
        assert!(text.starts_with("TLS against plain TCP"), "{text}");
        assert!(!text.contains("redis"), "{text}");
        // Without native-tls, there is no TLS section.
        assert!(tls_overhead(&sample()).is_empty());
        assert!(!comparison(&sample()).contains("TLS"));
        let only_tls = Report {
            cells: sample_tls(false)
                .cells
                .into_iter()
                .filter(|c| c.target == TargetKind::NativeTls)
                .collect(),
            ..Report::default()
        };
        assert!(comparison(&only_tls).is_empty());
    }

    #[test]
    fn comparison_checks_the_targets() {
        let text = comparison(&sample());
        // Native is 4x slower than redis here: every check is missed.
        assert!(
            text.contains("MISSED native GET 1MiB c=1: throughput >= redis (0.25x)"),
            "{text}"
        );
        assert!(
            text.contains("MISSED native GET 1KiB c=16: p50 <= 3x redis (4.00x)"),
            "{text}"
        );
        assert!(!text.contains(" met "));
        assert!(comparison(&Report::default()).is_empty());
    }
}

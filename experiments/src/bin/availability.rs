//! `availability`: how much cached data survives reclaims, with and without
//! delta-sync backup. See `infinicache_experiments::availability`.
//!
//! ```text
//! cargo build --release -p infinicache-proxy -p infinicache-node
//! cargo run --release -p infinicache-experiments --bin availability -- --out results/availability
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infinicache_experiments::availability::{self, Settings};
use infinicache_experiments::chart::write_svg;

/// Availability of cached objects per simulated hour while the local
/// platform reclaims environments; runs with and without backup.
#[derive(Debug, Parser)]
#[command(name = "availability")]
struct Args {
    /// Simulated hours per run.
    #[arg(long, default_value_t = 4.0)]
    hours: f64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 120.0)]
    time_scale: f64,
    /// Cache nodes.
    #[arg(long, default_value_t = 24)]
    pool_size: usize,
    #[arg(long, default_value_t = 10)]
    data_shards: usize,
    #[arg(long, default_value_t = 2)]
    parity_shards: usize,
    /// Objects written at the start.
    #[arg(long, default_value_t = 200)]
    objects: usize,
    /// Bytes per object.
    #[arg(long, default_value_t = 100 * 1024)]
    object_size: usize,
    /// Read every object once every this many simulated minutes.
    #[arg(long, default_value_t = 10)]
    sweep_minutes: usize,
    /// Simulated warm-up interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    warmup: Duration,
    /// Simulated backup interval of the run with backup.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    backup: Duration,
    /// Random reclaims per environment per simulated hour (stress).
    #[arg(long, default_value_t = 0.0)]
    random_reclaims_per_hour: f64,
    /// Override the idle lifetime (e.g. "10m..27m").
    #[arg(long)]
    idle_lifetime: Option<String>,
    /// Override the maximum lifetime (e.g. "1h50m..2h10m").
    #[arg(long)]
    max_lifetime: Option<String>,
    /// Which runs: both, backup, no-backup.
    #[arg(long, default_value = "both")]
    runs: String,
    /// Directory for availability.csv and availability.svg.
    #[arg(long, default_value = "target/experiments/availability")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    infinicache_experiments::init_logging();
    let args = Args::parse();
    let mut reclaim_args = vec![
        "--random-reclaims-per-hour".to_string(),
        args.random_reclaims_per_hour.to_string(),
    ];
    if let Some(lifetime) = &args.idle_lifetime {
        reclaim_args.extend(["--idle-lifetime".into(), lifetime.clone()]);
    }
    if let Some(lifetime) = &args.max_lifetime {
        reclaim_args.extend(["--max-lifetime".into(), lifetime.clone()]);
    }
    let base = Settings {
        hours: args.hours,
        time_scale: args.time_scale,
        pool_size: args.pool_size,
        data_shards: args.data_shards,
        parity_shards: args.parity_shards,
        objects: args.objects,
        object_size: args.object_size,
        sweep_minutes: args.sweep_minutes,
        warmup_interval: args.warmup,
        backup_interval: args.backup,
        reclaim_args,
        ..Settings::default()
    };
    let plans: Vec<(&str, Duration)> = match args.runs.as_str() {
        "both" => vec![("no-backup", Duration::ZERO), ("backup", args.backup)],
        "backup" => vec![("backup", args.backup)],
        "no-backup" => vec![("no-backup", Duration::ZERO)],
        other => {
            eprintln!("availability: --runs must be both, backup or no-backup, not {other:?}");
            return ExitCode::from(2);
        }
    };
    if args.hours <= 0.0 || args.time_scale <= 0.0 || args.objects == 0 {
        eprintln!("availability: --hours, --time-scale and --objects must be positive");
        return ExitCode::from(2);
    }

    let mut runs = Vec::new();
    for (label, backup) in plans {
        let settings = Settings {
            backup_interval: backup,
            ..base.clone()
        };
        eprintln!(
            "{label}: {} simulated hours at x{} ({:.0} s), {} nodes RS({}+{}), {} objects of {} bytes",
            settings.hours,
            settings.time_scale,
            settings.hours * 3600.0 / settings.time_scale,
            settings.pool_size,
            settings.data_shards,
            settings.parity_shards,
            settings.objects,
            settings.object_size
        );
        let run = availability::run(&settings, label, |hour| {
            eprintln!(
                "  {label} hour {}: {:.3}% ({} reads, {} repaired, {} failovers)",
                hour.hour,
                hour.availability(),
                hour.reads,
                hour.chunks_repaired,
                hour.failovers
            );
        })
        .await;
        runs.push(run);
    }

    print!("{}", availability::table(&runs));
    if let Err(err) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("availability.csv"), availability::csv(&runs)))
        .and_then(|()| {
            write_svg(
                args.out.join("availability.svg"),
                &availability::chart(&runs),
            )
        })
    {
        eprintln!(
            "availability: cannot write results to {}: {err}",
            args.out.display()
        );
        return ExitCode::FAILURE;
    }
    println!("results: {}", args.out.display());
    if runs.iter().any(|run| run.corrupt() > 0) {
        eprintln!("availability: some reads returned wrong bytes");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

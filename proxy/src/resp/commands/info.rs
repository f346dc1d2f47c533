//! `INFO [section ...]`: the server, its clients, memory, statistics and
//! keyspace, in Redis's `name:value` format, so monitoring tools that read
//! Redis's INFO read this too.
//!
//! Memory is the cache's memory: the chunk bytes held in function memory
//! (from the metadata) and the functions in use, not the proxy process's.

use super::{Args, Command, CommandError};
use crate::cluster::metadata::unix_millis;
use crate::resp::frame::Frame;
use crate::resp::{Frontend, REDIS_VERSION, Stats};

/// The sections, in the order they are shown.
const SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "keyspace"];

pub struct Info {
    /// Lowercase section names; empty: the default ones.
    sections: Vec<String>,
}

impl Info {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let sections = args
            .rest()
            .iter()
            .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
            .collect();
        Ok(Command::Info(Info { sections }))
    }

    /// Whether section `name` was asked for.
    fn wants(&self, name: &str) -> bool {
        self.sections.is_empty()
            || self.sections.iter().any(|asked| {
                asked == name || matches!(asked.as_str(), "all" | "default" | "everything")
            })
    }

    pub fn apply(self, frontend: &Frontend) -> Frame {
        let mut text = String::new();
        for &section in SECTIONS {
            if !self.wants(section) {
                continue;
            }
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let mut title = section.to_string();
            title[..1].make_ascii_uppercase();
            text.push_str(&format!("# {title}\r\n"));
            for (name, value) in lines(frontend, section) {
                text.push_str(&format!("{name}:{value}\r\n"));
            }
        }
        Frame::Verbatim {
            format: *b"txt",
            text: text.into(),
        }
    }
}

/// The `name:value` lines of one section.
fn lines(frontend: &Frontend, section: &str) -> Vec<(&'static str, String)> {
    let stats = &frontend.stats;
    let cluster = frontend.cluster();
    match section {
        "server" => {
            let uptime = frontend.uptime_secs();
            vec![
                ("redis_version", REDIS_VERSION.to_string()),
                ("infinicache_version", env!("CARGO_PKG_VERSION").to_string()),
                ("redis_mode", "standalone".to_string()),
                (
                    "os",
                    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
                ),
                ("arch_bits", (usize::BITS).to_string()),
                ("process_id", std::process::id().to_string()),
                ("tcp_port", frontend.port().to_string()),
                ("uptime_in_seconds", uptime.to_string()),
                ("uptime_in_days", (uptime / 86_400).to_string()),
            ]
        }
        "clients" => vec![(
            "connected_clients",
            Stats::get(&stats.connected_clients).to_string(),
        )],
        "memory" => {
            let window = cluster.window_status();
            let capacity = cluster.config().node_capacity() * cluster.config().pool_size as u64;
            vec![
                ("used_memory", window.memory_used_bytes.to_string()),
                ("used_memory_human", human(window.memory_used_bytes)),
                ("maxmemory", capacity.to_string()),
                ("maxmemory_human", human(capacity)),
                ("infinicache_functions_in_use", window.functions.to_string()),
                (
                    "infinicache_functions_free",
                    window.free_functions.to_string(),
                ),
                ("infinicache_cold_objects", window.cold_objects.to_string()),
            ]
        }
        "stats" => vec![
            (
                "total_connections_received",
                Stats::get(&stats.connections_received).to_string(),
            ),
            (
                "total_commands_processed",
                Stats::get(&stats.commands_processed).to_string(),
            ),
            (
                "keyspace_hits",
                Stats::get(&stats.keyspace_hits).to_string(),
            ),
            (
                "keyspace_misses",
                Stats::get(&stats.keyspace_misses).to_string(),
            ),
        ],
        "keyspace" => {
            let now = unix_millis();
            let (keys, expires) = {
                let meta = cluster.meta();
                (meta.live_len(now), meta.expiring_len(now))
            };
            // As Redis: an empty database is not listed.
            if keys == 0 {
                Vec::new()
            } else {
                vec![("db0", format!("keys={keys},expires={expires},avg_ttl=0"))]
            }
        }
        _ => Vec::new(),
    }
}

/// Bytes as Redis's `*_human` fields show them (`1.50M`).
fn human(bytes: u64) -> String {
    const UNITS: &[(&str, f64)] = &[("G", 1073741824.0), ("M", 1048576.0), ("K", 1024.0)];
    let value = bytes as f64;
    for &(unit, size) in UNITS {
        if value >= size {
            return format!("{:.2}{unit}", value / size);
        }
    }
    format!("{bytes}B")
}

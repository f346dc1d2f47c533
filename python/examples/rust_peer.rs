//! The Rust side of `python/benches/bench.py`: the same sequential PUT and
//! GET loops through the Rust client, against the same proxy, so the Python
//! binding's overhead can be read off one run.
//!
//! ```text
//! cargo run --release -p infinicache-python --example rust_peer -- ADDR SIZE:OPS...
//! ```
//!
//! Prints one JSON object per (op, size) on stdout:
//! `{"op":"put","size":1024,"ops":2000,"mean_us":...,"p50_us":...,"p99_us":...,"mib_s":...}`.

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: rust_peer ADDR SIZE:OPS...")?;
    let client = infinicache::Client::builder().proxy(addr).connect().await?;
    for spec in args {
        let (size, ops) = spec.split_once(':').ok_or("SIZE:OPS expected")?;
        let (size, ops): (usize, usize) = (size.parse()?, ops.parse()?);
        let value =
            bytes::Bytes::from((0..size).map(|i| (i * 131 % 251) as u8).collect::<Vec<_>>());
        let key = format!("rust-peer-{size}");
        // Warm-up: connections, node invocations, allocator.
        for _ in 0..3 {
            client.put(key.as_str(), value.clone()).await?;
            client.get(key.as_str()).await?;
        }
        let mut puts = Vec::with_capacity(ops);
        let started = Instant::now();
        for _ in 0..ops {
            let t = Instant::now();
            client.put(key.as_str(), value.clone()).await?;
            puts.push(t.elapsed());
        }
        report("put", size, &mut puts, started.elapsed());
        let mut gets = Vec::with_capacity(ops);
        let started = Instant::now();
        for _ in 0..ops {
            let t = Instant::now();
            let got = client.get(key.as_str()).await?.ok_or("object vanished")?;
            assert_eq!(got.len(), size);
            gets.push(t.elapsed());
        }
        report("get", size, &mut gets, started.elapsed());
    }
    Ok(())
}

fn report(op: &str, size: usize, samples: &mut [Duration], wall: Duration) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = samples.len();
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
    let p50 = us(samples[n / 2]);
    let p99 = us(samples[(n * 99 / 100).min(n - 1)]);
    let mib_s = (size * n) as f64 / (1 << 20) as f64 / wall.as_secs_f64();
    println!(
        "{{\"op\":\"{op}\",\"size\":{size},\"ops\":{n},\"mean_us\":{mean:.1},\"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"mib_s\":{mib_s:.1}}}"
    );
}

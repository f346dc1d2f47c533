//! Throughput of the object codec on a 10 MiB object.
//!
//! `cargo bench -p infinicache --bench codec`
//!
//! * `encode/*`: split + parity + CRCs (what a PUT costs the client).
//! * `decode/*`: all data chunks present (verify + copy, no shard math).
//! * `decode_reconstruct/*`: the first `r` data chunks missing, the worst
//!   case for a GET (verify + copy + rebuild `r` data shards).
//! * `raw/*`: the shard math alone, for comparison: the blocked
//!   `ReedSolomonCoder`, the same coder unblocked, the library called
//!   directly, and the CRC32C pass every chunk body goes through.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use infinicache::codec::{Chunk, CodecParams, ErasureCoder, ObjectCodec, ReedSolomonCoder};
use rand::{Rng, SeedableRng, rngs::StdRng};

const OBJECT_LEN: usize = 10 << 20;
const CONFIGS: [(usize, usize); 2] = [(10, 2), (4, 2)];

fn object() -> Bytes {
    let mut data = vec![0u8; OBJECT_LEN];
    StdRng::seed_from_u64(42).fill(&mut data[..]);
    Bytes::from(data)
}

fn params(k: usize, r: usize) -> CodecParams {
    CodecParams::new(k, r).expect("benchmark parameters are valid")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .throughput(Throughput::Bytes(OBJECT_LEN as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
}

fn bench_encode(c: &mut Criterion) {
    let obj = object();
    let mut group = c.benchmark_group("encode");
    configure(&mut group);
    for (k, r) in CONFIGS {
        let codec = ObjectCodec::new(params(k, r));
        group.bench_function(format!("{k}+{r}"), |b| {
            b.iter(|| codec.encode(black_box(&obj), 1).expect("encode"))
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let obj = object();
    let mut group = c.benchmark_group("decode");
    configure(&mut group);
    for (k, r) in CONFIGS {
        let codec = ObjectCodec::new(params(k, r));
        let chunks = codec.encode(&obj, 1).expect("encode");
        let data_only: Vec<Chunk> = chunks[..k].to_vec();
        assert_eq!(codec.decode(&data_only).expect("decode"), obj);
        group.bench_function(format!("{k}+{r}"), |b| {
            b.iter(|| codec.decode(black_box(&data_only)).expect("decode"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode_reconstruct");
    configure(&mut group);
    for (k, r) in CONFIGS {
        let codec = ObjectCodec::new(params(k, r));
        let chunks = codec.encode(&obj, 1).expect("encode");
        // Data chunks 0..r lost: r data shards must be rebuilt from parity.
        let survivors: Vec<Chunk> = chunks[r..].to_vec();
        assert_eq!(codec.decode(&survivors).expect("decode"), obj);
        group.bench_function(format!("{k}+{r}"), |b| {
            b.iter(|| codec.decode(black_box(&survivors)).expect("decode"))
        });
    }
    group.finish();
}

fn bench_raw(c: &mut Criterion) {
    let obj = object();
    let (k, r) = (10, 2);
    let shard_len = OBJECT_LEN / k;
    let data: Vec<&[u8]> = obj.chunks_exact(shard_len).collect();
    let mut parity = vec![vec![0u8; shard_len]; r];

    let mut group = c.benchmark_group("raw");
    configure(&mut group);
    for (name, block_len) in [
        ("rs_coder_blocked/10+2", ReedSolomonCoder::DEFAULT_BLOCK_LEN),
        ("rs_coder_unblocked/10+2", usize::MAX),
    ] {
        let coder = ReedSolomonCoder::with_block_len(params(k, r), block_len);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
                coder
                    .encode_parity(black_box(&data), &mut out)
                    .expect("encode");
            })
        });
    }
    let rs = reed_solomon_erasure::galois_8::ReedSolomon::new(k, r).expect("valid");
    group.bench_function("library_encode_sep/10+2", |b| {
        b.iter(|| {
            let mut out: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            rs.encode_sep(black_box(&data), &mut out).expect("encode");
        })
    });
    group.bench_function("crc32c", |b| b.iter(|| crc32c::crc32c(black_box(&obj))));
    group.bench_function("memcpy", |b| b.iter(|| black_box(obj.to_vec())));
    group.finish();
}

criterion_group!(benches, bench_encode, bench_decode, bench_raw);
criterion_main!(benches);

//! The fuzz inputs kept in the repository, run on stable by plain `cargo
//! test`: every seed under `fuzz/corpus/<target>/` and every crash input
//! under `fuzz/regressions/<target>/` goes through the same check as its
//! fuzz target (`infinicache_fuzz`), so a decoder that regresses on any of
//! them fails here without nightly or cargo-fuzz.
//!
//! The binary seeds of `native_frames` are written by the protocol's own
//! encoders: `INFINICACHE_BLESS=1 cargo test -p infinicache-tests --test
//! fuzz_regressions` rewrites them after a protocol change.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use infinicache::codec::{Chunk, CodecParams};
use infinicache::protocol::{
    ChunkId, ClientHello, ClientReply, ClientRequest, Encode, ErrorCode, ErrorReply, Hello, Key,
    NodeHello, NodeReply, NodeRequest, PROTOCOL_VERSION, PutChunk, Welcome,
};
use infinicache_fuzz::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none if it does not exist).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `data` through the target's check; the panic message, if it fails.
fn run(target: &Target, data: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| (target.check)(data)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[test]
fn every_committed_input_passes_its_check() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for target in TARGETS {
        for kind in ["corpus", "regressions"] {
            for path in inputs(kind, target.name) {
                let data = std::fs::read(&path).expect("read a fuzz input");
                if let Err(message) = run(target, &data) {
                    failures.push(format!("{}: {message}", path.display()));
                }
                ran += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing inputs:\n{}",
        failures.join("\n")
    );
    assert!(ran >= 4 * TARGETS.len(), "only {ran} inputs found");
}

#[test]
fn every_target_has_seeds_and_every_directory_a_target() {
    for target in TARGETS {
        assert!(
            !inputs("corpus", target.name).is_empty(),
            "no seed corpus for {}",
            target.name
        );
    }
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if !path.is_dir() {
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(
                TARGETS.iter().any(|t| t.name == name),
                "{} belongs to no fuzz target",
                path.display()
            );
        }
    }
}

/// The encoders' seeds pass the check, and match the committed files (or,
/// with `INFINICACHE_BLESS=1`, replace them).
#[test]
fn native_seeds_are_the_encoders_output() {
    let target = TARGETS
        .iter()
        .find(|t| t.name == "native_frames")
        .expect("the native_frames target");
    let dir = fuzz_dir().join("corpus").join(target.name);
    let bless = std::env::var_os("INFINICACHE_BLESS").is_some();
    for (name, seed) in native_seeds() {
        run(target, &seed).unwrap_or_else(|message| panic!("seed {name}: {message}"));
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).expect("create the corpus directory");
            std::fs::write(&path, &seed).expect("write a seed");
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == seed,
                "{} is stale: rerun with INFINICACHE_BLESS=1",
                path.display()
            );
        }
    }
}

/// One seed file: a cut seed byte, then the frames.
fn seed(cut_seed: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![cut_seed];
    frames.iter().for_each(|frame| out.extend_from_slice(frame));
    out
}

fn frame(message: &impl Encode, request_id: u64) -> Vec<u8> {
    message.encode(request_id).to_bytes().to_vec()
}

fn key(text: &str) -> Key {
    Key::try_from(text).expect("a valid key")
}

/// Valid conversations of each kind of connection, and the malformed
/// frames a peer could send.
fn native_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let params = CodecParams::new(2, 1).expect("valid parameters");
    let chunks: Vec<Chunk> = (0..3)
        .map(|index| Chunk::new(params, index, 5, 0, Bytes::from_static(b"abc")))
        .collect();
    let error = ErrorReply::new(ErrorCode::Unauthorized, "wrong secret");
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        max_frame_len: 1 << 20,
        default_params: CodecParams::DEFAULT,
        server: "infinicache-proxy".into(),
    };
    let client_hello = Hello::Client(ClientHello {
        name: "cli".into(),
        secret: Some(Bytes::from_static(b"s3cret")),
    });
    let get = frame(&ClientRequest::Get { key: key("k") }, 2);

    let client_requests: Vec<Vec<u8>> = chunks
        .iter()
        .map(|chunk| {
            let put = PutChunk {
                key: key("object"),
                put_id: 7,
                chunk: chunk.clone(),
            };
            frame(&ClientRequest::Put(put), 1)
        })
        .chain([
            get.clone(),
            frame(&ClientRequest::Delete { key: key("k") }, 3),
            frame(&ClientRequest::Exists { key: key("k") }, 4),
            frame(&ClientRequest::Cancel { target: 2 }, 0),
        ])
        .collect();
    let client_replies = vec![
        frame(&ClientReply::Stored { version: 9 }, 1),
        frame(
            &ClientReply::Object {
                version: 9,
                object_len: 5,
                params,
            },
            2,
        ),
        frame(&ClientReply::Chunk(chunks[0].clone()), 2),
        frame(
            &ClientReply::ChunkFailed {
                index: 1,
                error: ErrorReply::new(ErrorCode::Unavailable, "node 3 is gone"),
            },
            2,
        ),
        frame(&ClientReply::NotFound, 3),
        frame(&ClientReply::Deleted { existed: true }, 4),
        frame(&ClientReply::Exists { exists: false }, 5),
        frame(&ClientReply::Error(error.clone()), 6),
    ];
    let node_requests = vec![
        frame(
            &NodeRequest::Store {
                key: key("object"),
                chunk: Chunk::new(params, 2, 5, 9, Bytes::from_static(b"abc")),
            },
            1,
        ),
        frame(
            &NodeRequest::Fetch {
                key: key("object"),
                version: 9,
                index: 2,
            },
            2,
        ),
        frame(
            &NodeRequest::Drop {
                key: key("object"),
                version: 9,
                index: 2,
            },
            3,
        ),
        frame(&NodeRequest::Ping, 4),
        frame(&NodeRequest::List, 5),
        frame(&NodeRequest::Stay, 0),
        frame(&NodeRequest::ByeAck, 0),
    ];
    let node_replies = vec![
        frame(&NodeReply::Stored { used: 131 }, 1),
        frame(&NodeReply::Chunk(chunks[1].clone()), 2),
        frame(&NodeReply::Missing, 3),
        frame(
            &NodeReply::Dropped {
                used: 0,
                existed: true,
            },
            4,
        ),
        frame(&NodeReply::Pong { used: 0, chunks: 0 }, 5),
        frame(
            &NodeReply::Inventory(vec![
                ChunkId {
                    key: key("a"),
                    version: 1,
                    index: 0,
                },
                ChunkId {
                    key: key("b"),
                    version: 2,
                    index: 255,
                },
            ]),
            6,
        ),
        frame(&NodeReply::Error(error.clone()), 7),
        frame(&NodeReply::Bye, 0),
    ];
    let node_hello = Hello::Node(NodeHello {
        node_id: 3,
        token: Bytes::from_static(b"0123456789abcdef0123456789abcdef"),
        instance_id: 42,
        capacity: 1 << 30,
        used: 0,
        chunks: 0,
    });

    // Malformed frames, each made from a valid one.
    let mut truncated = get.clone();
    truncated.pop();
    let mut trailing = get.clone();
    trailing.push(0xaa);
    trailing[3] += 1; // the length prefix counts the extra byte
    let mut unknown_kind = get.clone();
    unknown_kind[4] = 0x99;
    // The chunk's index byte (the header's fourth, before a 3-byte body),
    // changed under its CRC.
    let mut bad_chunk_crc = client_requests[0].clone();
    let index_byte = bad_chunk_crc.len() - 3 - 32 + 3;
    bad_chunk_crc[index_byte] ^= 0x01;
    let mut bad_magic = frame(&client_hello, 0);
    bad_magic[14] = b'X';
    let frame_too_short = vec![0, 0, 0, 3, 1, 0, 0];
    let frame_too_large = vec![0xff, 0xff, 0xff, 0xff, 1, 0];

    vec![
        (
            "handshake-client",
            seed(
                0,
                &[
                    frame(&client_hello, 0),
                    frame(&welcome, 0),
                    frame(&error, 0),
                ],
            ),
        ),
        (
            "handshake-node",
            seed(3, &[frame(&node_hello, 0), frame(&welcome, 0)]),
        ),
        ("client-requests", seed(17, &client_requests)),
        ("client-replies", seed(5, &client_replies)),
        ("node-requests", seed(29, &node_requests)),
        ("node-replies", seed(0, &node_replies)),
        ("truncated", seed(7, &[get.clone(), truncated])),
        ("trailing-bytes", seed(1, &[trailing])),
        ("unknown-kind", seed(2, &[unknown_kind])),
        ("bad-chunk-header", seed(4, &[bad_chunk_crc])),
        ("bad-magic", seed(6, &[bad_magic])),
        ("frame-too-short", seed(8, &[get.clone(), frame_too_short])),
        ("frame-too-large", seed(9, &[frame_too_large])),
    ]
}

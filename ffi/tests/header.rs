//! Fails when `include/infinicache.h` no longer matches what cbindgen
//! generates from `ffi/src` with `ffi/cbindgen.toml`.
//!
//! Regenerate the header with
//! `INFINICACHE_BLESS=1 cargo test -p infinicache-ffi --test header`.

use std::path::{Path, PathBuf};

fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("read ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed to generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen wrote UTF-8")
}

fn header_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/infinicache.h")
}

#[test]
fn header_is_up_to_date() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("INFINICACHE_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &generated).expect("write include/infinicache.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/infinicache.h is stale (or missing): it differs from what cbindgen generates \
         from ffi/src. Regenerate it with\n\n    \
         INFINICACHE_BLESS=1 cargo test -p infinicache-ffi --test header\n\nand commit it."
    );
}

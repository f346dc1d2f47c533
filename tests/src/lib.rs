//! Shared helpers for the end-to-end tests and benchmarks.

pub mod certs;
pub mod harness;
pub mod linearizability;
pub mod ministack;
pub mod raw;
pub mod redis_cli;

use std::path::PathBuf;

/// Path of a binary of this workspace, built into the same target directory
/// as the running test (`target/<profile>/<name>`; the test itself runs from
/// `target/<profile>/deps/`).
///
/// Panics with a hint if the binary has not been built: `cargo test` only
/// builds the binaries of the package under test, not the others'.
pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("cannot locate the running test executable");
    let mut dir = exe
        .parent()
        .expect("test executable has no parent directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// An aws-sdk-lambda client for a local endpoint (plain HTTP, static test
/// credentials, region us-east-1).
pub fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

//! `infinicache-proxy deploy` against a third-party Lambda API: the real
//! proxy binary deploys the real (debug) node binary to ministack, an AWS
//! emulator that implements CreateFunction/GetFunction/Update*/Delete with
//! Lambda's states, `CodeSha256` and errors.
//!
//! Needs the binaries built (`cargo build --workspace --bins`) and ministack
//! installed (`make test` installs it into `.venv`; `MINISTACK_BIN` points
//! at another one).

use std::net::TcpListener;

use aws_sdk_lambda::Client;
use infinicache_proxy::deploy::Package;
use infinicache_proxy::deploy::spec::Architecture;
use infinicache_tests::ministack::{Ministack, PREFIX, ROLE, deploy};
use infinicache_tests::{lambda_client, target_bin};

const POOL: usize = 6;

/// The deploy flags every run of the lifecycle test shares.
fn deploy_args<'a>(ministack: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--pool-size",
        "6",
        "--role",
        ROLE,
        "--endpoint-url",
        ministack,
    ];
    args.extend_from_slice(extra);
    args
}

/// Our functions as ministack lists them, by name.
async fn list(client: &Client) -> Vec<aws_sdk_lambda::types::FunctionConfiguration> {
    let mut functions: Vec<_> = client
        .list_functions()
        .send()
        .await
        .expect("ListFunctions")
        .functions
        .unwrap_or_default()
        .into_iter()
        .filter(|function| {
            function
                .function_name()
                .is_some_and(|name| name.starts_with(PREFIX))
        })
        .collect();
    functions.sort_by_key(|function| function.function_name().map(str::to_string));
    functions
}

fn names() -> Vec<String> {
    (0..POOL).map(|i| format!("{PREFIX}-{i}")).collect()
}

/// Create, redeploy (a no-op), change the memory, delete, delete again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_is_idempotent_from_create_to_delete() {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint();
    let client = lambda_client(&endpoint);

    // (a) Six functions created from the debug node binary (the default:
    // next to the proxy binary).
    let node = target_bin("infinicache-node");
    let created = deploy(&deploy_args(&endpoint, &["--memory-mb", "512"])).await;
    let stdout = created.success();
    assert!(
        stdout.contains("deployed 6 functions: 6 created, 0 updated, 0 unchanged"),
        "{stdout}"
    );
    let expected: Vec<String> = names().iter().map(|n| format!("{n}: created")).collect();
    assert_eq!(
        created.outcomes(),
        expected,
        "one line per function, in order"
    );

    let functions = list(&client).await;
    let listed: Vec<_> = functions
        .iter()
        .filter_map(|function| function.function_name())
        .collect();
    assert_eq!(listed, names());
    // Lambda's CodeSha256 of the upload is the package's own digest: that is
    // what lets the next deploy recognise unchanged code.
    let package = Package::from_file(&node, Architecture::X86_64).expect("package the node");
    for function in &functions {
        assert_eq!(
            function.runtime().map(|r| r.as_str()),
            Some("provided.al2023")
        );
        assert_eq!(function.handler(), Some("bootstrap"));
        assert_eq!(function.memory_size(), Some(512));
        assert_eq!(function.timeout(), Some(900));
        assert_eq!(function.role(), Some(ROLE));
        assert_eq!(function.code_sha256(), Some(package.code_sha256()));
        let env = function
            .environment()
            .and_then(|env| env.variables())
            .expect("environment");
        assert_eq!(
            env.get("INFINICACHE_RESERVED_MB").map(String::as_str),
            Some("32")
        );
    }
    let modified = last_modified(&client).await;

    // (b) The same deploy again changes nothing.
    let again = deploy(&deploy_args(&endpoint, &["--memory-mb", "512"])).await;
    let stdout = again.success();
    assert!(
        stdout.contains("deployed 6 functions: 0 created, 0 updated, 6 unchanged"),
        "{stdout}"
    );
    assert!(
        again
            .outcomes()
            .iter()
            .all(|line| line.ends_with(": unchanged"))
    );
    assert_eq!(
        last_modified(&client).await,
        modified,
        "nothing was touched"
    );

    // (c) Another memory size: a configuration update of every function.
    let resized = deploy(&deploy_args(&endpoint, &["--memory-mb", "1024"])).await;
    let stdout = resized.success();
    assert!(
        stdout.contains("deployed 6 functions: 0 created, 6 updated, 0 unchanged"),
        "{stdout}"
    );
    let outcomes = resized.outcomes();
    assert_eq!(outcomes.len(), POOL);
    for line in &outcomes {
        assert!(line.contains(": updated configuration (memory)"), "{line}");
    }
    for function in list(&client).await {
        assert_eq!(function.memory_size(), Some(1024));
        assert_eq!(function.code_sha256(), Some(package.code_sha256()));
    }

    // (d) Delete them all; deleting again finds nothing and is fine.
    let deleted = deploy(&["--pool-size", "6", "--endpoint-url", &endpoint, "--delete"]).await;
    let stdout = deleted.success();
    assert!(
        stdout.contains("deleted 6 functions: 6 deleted, 0 absent"),
        "{stdout}"
    );
    assert!(list(&client).await.is_empty(), "functions are gone");
    let again = deploy(&["--pool-size", "6", "--endpoint-url", &endpoint, "--delete"]).await;
    let stdout = again.success();
    assert!(
        stdout.contains("deleted 6 functions: 0 deleted, 6 absent"),
        "{stdout}"
    );
}

/// Each function's LastModified, in name order.
async fn last_modified(client: &Client) -> Vec<Option<String>> {
    let mut modified = Vec::new();
    for name in names() {
        let output = client
            .get_function()
            .function_name(&name)
            .send()
            .await
            .expect("GetFunction");
        modified.push(
            output
                .configuration()
                .and_then(|config| config.last_modified())
                .map(str::to_string),
        );
    }
    modified
}

/// Mistakes are reported before any API call, with a non-zero exit.
#[tokio::test]
async fn bad_invocations_fail_clearly() {
    // Nothing listens there: a run that got as far as calling the API would
    // fail differently (and slower).
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };

    let missing = deploy(&[
        "--role",
        ROLE,
        "--endpoint-url",
        &closed,
        "--node-binary",
        "/nonexistent/infinicache-node",
    ])
    .await;
    assert!(!missing.output.status.success());
    let stderr = missing.stderr();
    assert!(
        stderr.contains("cannot read the node binary /nonexistent/infinicache-node"),
        "{stderr}"
    );
    assert!(stderr.contains("--node-binary"), "{stderr}");
    assert!(missing.outcomes().is_empty(), "{}", missing.stdout());

    let no_role = deploy(&["--endpoint-url", &closed]).await;
    assert_eq!(no_role.output.status.code(), Some(2), "a usage error");
    let stderr = no_role.stderr();
    assert!(stderr.contains("--role <ARN>"), "{stderr}");
    assert!(no_role.stdout().is_empty(), "{}", no_role.stdout());

    // Not the node binary, and not even an executable for Lambda.
    let script = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(script.path(), "#!/bin/sh\necho hello\n").expect("write");
    let wrong = deploy(&[
        "--role",
        ROLE,
        "--endpoint-url",
        &closed,
        "--node-binary",
        script.path().to_str().expect("utf-8 path"),
    ])
    .await;
    assert!(!wrong.output.status.success());
    let stderr = wrong.stderr();
    assert!(
        stderr.contains("is not a Linux x86_64 executable: not an ELF file"),
        "{stderr}"
    );
}

/// Serving still takes flags only: a subcommand and serve flags do not mix.
#[tokio::test]
async fn deploy_does_not_take_serve_flags() {
    // Were it accepted, it would still reach nothing: a closed port and
    // test credentials.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let mixed = tokio::process::Command::new(target_bin("infinicache-proxy"))
        .args(["--client-listen", "127.0.0.1:0", "deploy", "--delete"])
        .args(["--endpoint-url", &closed])
        .env_remove("INFINICACHE_CONFIG")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true)
        .output()
        .await
        .expect("infinicache-proxy runs");
    assert_eq!(mixed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert!(stderr.contains("deploy"), "{stderr}");
}

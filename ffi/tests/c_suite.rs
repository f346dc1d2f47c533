//! Builds the C tests, the example and a C++ header check with the system
//! compilers against `libinfinicache` and runs them against a live proxy.
//!
//! Needs the library and the proxy/node binaries in the same target
//! directory and profile as this test:
//! `cargo build --workspace --bins --lib` (or `cargo build --workspace`).
//!
//! The ignored `bench` test compares put/get latency through the C API with
//! the Rust client against one proxy:
//! `cargo build --release --workspace && cargo test --release -p infinicache-ffi --test c_suite -- --ignored bench --nocapture`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `target/<profile>`, where this test's binary lives (in `deps/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("locate the test executable");
    let mut dir = exe
        .parent()
        .expect("test executable has a parent")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ffi/ has a parent")
        .to_path_buf()
}

fn require(path: &Path, what: &str) {
    assert!(
        path.is_file(),
        "{what} not found at {}: build it first with `cargo build --workspace --bins --lib` \
         (same profile as the tests)",
        path.display()
    );
}

/// Runs a command, panicking with its output if it fails.
fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

struct Programs {
    test: PathBuf,
    bench: PathBuf,
    example: PathBuf,
    example_static: PathBuf,
}

/// Compiles the C programs once per test binary.
fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let target = target_dir();
        require(&target.join("libinfinicache.so"), "libinfinicache.so");
        require(&target.join("libinfinicache.a"), "libinfinicache.a");
        let root = repo_root();
        let include = root.join("include");
        let out = target.join("ffi-c-tests");
        std::fs::create_dir_all(&out).expect("create the C build directory");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let shared = |source: &str, name: &str| {
            let exe = out.join(name);
            run(Command::new(&cc)
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
                .arg(&include)
                .arg(root.join(source))
                .arg("-o")
                .arg(&exe)
                .arg("-L")
                .arg(&target)
                .arg("-linfinicache")
                .arg(format!("-Wl,-rpath,{}", target.display())));
            exe
        };
        let test = shared("ffi/tests/c/test_infinicache.c", "test_infinicache");
        let bench = shared("ffi/tests/c/bench.c", "bench");
        let example = shared("ffi/examples/example.c", "example");

        // The same example linked statically against libinfinicache.a.
        let example_static = out.join("example_static");
        run(Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&include)
            .arg(root.join("ffi/examples/example.c"))
            .arg("-o")
            .arg(&example_static)
            .arg(target.join("libinfinicache.a"))
            .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"]));

        // The header compiles as C++ (extern "C", no C-only constructs).
        let header_check = out.join("header_check");
        run(Command::new(&cxx)
            .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&include)
            .arg(root.join("ffi/tests/c/header_check.cpp"))
            .arg("-o")
            .arg(&header_check)
            .arg("-L")
            .arg(&target)
            .arg("-linfinicache")
            .arg(format!("-Wl,-rpath,{}", target.display())));
        run(&mut Command::new(&header_check));
        Programs {
            test,
            bench,
            example,
            example_static,
        }
    })
}

/// A live proxy with its local platform and nodes; SIGTERM on drop.
struct Proxy {
    child: Child,
    addr: String,
    /// Its data directory (the directory object store lives there).
    _data_dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts a proxy with the suite's settings plus `extra_args`.
    fn start(extra_args: &[&str]) -> Proxy {
        let bin = target_dir().join("infinicache-proxy");
        require(&bin, "infinicache-proxy");
        // A fresh data directory: one left by an earlier run would be
        // recovered by the proxy.
        let data_dir = tempfile::tempdir().expect("create a data directory");
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir.path())
            .args([
                "--client-listen",
                "127.0.0.1:0",
                "--node-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--resp-listen",
                "127.0.0.1:0",
            ])
            .args(["--warmup-interval", "0s", "--pool-size", "6"])
            .args(["--data-shards", "4", "--parity-shards", "2"])
            .args(extra_args)
            .env(
                "INFINICACHE_LOG",
                std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start infinicache-proxy");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Read the ready line, then keep draining so the proxy never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("infinicache-proxy ready")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let mut proxy = Proxy {
            child,
            addr: String::new(),
            _data_dir: data_dir,
        };
        let ready = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("infinicache-proxy did not print its ready line within 30 s");
        proxy.addr = ready
            .split_whitespace()
            .find_map(|field| field.strip_prefix("client="))
            .unwrap_or_else(|| panic!("no client= in {ready:?}"))
            .to_string();
        proxy
    }

    /// SIGTERM, then wait (SIGKILL after 10 s).
    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn c_test_suite_passes() {
    let programs = programs();
    let proxy = Proxy::start(&[]);
    let output = Command::new(&programs.test)
        .arg(&proxy.addr)
        .output()
        .expect("run test_infinicache");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the C tests failed ({})",
        output.status
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.ends_with(" passed, 0 failed")),
        "no summary line in the C tests' output"
    );
}

/// A proxy started with `--secret` refuses C clients without it (NULL or
/// empty `options.secret`) or with another one, with
/// `INFINICACHE_UNAUTHORIZED`, and serves those that give it.
#[test]
fn secret_is_required_and_accepted() {
    const SECRET: &str = "c binding's secret: \u{e9}t\u{e9}";
    let programs = programs();
    let proxy = Proxy::start(&["--secret", SECRET]);
    let output = Command::new(&programs.test)
        .args(["--secret", SECRET, &proxy.addr])
        .output()
        .expect("run test_infinicache --secret");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the C secret tests failed ({})",
        output.status
    );
    assert!(
        stdout.lines().any(|line| line == "3 passed, 0 failed"),
        "no summary line of the 3 secret tests in the C tests' output"
    );
}

/// The files `test-certs DIR` writes: a CA and a server certificate it
/// signed for `localhost` and `127.0.0.1`.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Generates a fresh CA and server certificate into `dir` with the
/// `test-certs` binary of the tests crate.
fn test_certs(dir: &Path) -> Certs {
    let bin = target_dir().join("test-certs");
    require(&bin, "test-certs");
    let output = run(Command::new(bin).arg(dir));
    let line = String::from_utf8_lossy(&output.stdout);
    let paths: Vec<PathBuf> = line.split_whitespace().map(PathBuf::from).collect();
    let [ca, cert, key] = <[PathBuf; 3]>::try_from(paths)
        .unwrap_or_else(|paths| panic!("test-certs printed {paths:?}, not three paths"));
    Certs { ca, cert, key }
}

/// A proxy started with `--tls-cert`/`--tls-key` serves C clients that
/// trust its CA (`options.tls_ca_file`), and refuses plain clients and
/// clients trusting another CA with `INFINICACHE_UNAVAILABLE`; an unusable
/// CA file is `INFINICACHE_INVALID_ARGUMENT`.
#[test]
fn tls_is_required_and_verified() {
    let programs = programs();
    let dir = tempfile::tempdir().expect("create a certificate directory");
    let certs = test_certs(&dir.path().join("proxy"));
    let other = test_certs(&dir.path().join("other"));
    let cert = certs.cert.to_str().expect("UTF-8 path");
    let key = certs.key.to_str().expect("UTF-8 path");
    let proxy = Proxy::start(&["--tls-cert", cert, "--tls-key", key]);
    let output = Command::new(&programs.test)
        .arg("--tls")
        .arg(&certs.ca)
        .arg(&other.ca)
        .arg(&proxy.addr)
        .output()
        .expect("run test_infinicache --tls");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the C TLS tests failed ({})",
        output.status
    );
    assert!(
        stdout.lines().any(|line| line == "5 passed, 0 failed"),
        "no summary line of the 5 TLS tests in the C tests' output"
    );
}

#[test]
fn example_runs_shared_and_static() {
    let programs = programs();
    let proxy = Proxy::start(&[]);
    for example in [&programs.example, &programs.example_static] {
        let output = run(Command::new(example).arg(&proxy.addr));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello, lambda\n");
    }
}

#[test]
fn stopped_proxy_is_unavailable_quickly() {
    let programs = programs();
    let mut proxy = Proxy::start(&[]);
    let mut child = Command::new(&programs.test)
        .args(["--stopped-proxy", &proxy.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run test_infinicache --stopped-proxy");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read from the C test");
    assert_eq!(line, "connected\n", "the C test did not connect");
    proxy.stop();
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"go\n")
        .expect("tell the C test to go on");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read the summary");
    let status = child.wait().expect("wait for the C test");
    assert!(status.success(), "after the proxy stopped: {rest}");
}

/// Mean put and get latency of the Rust client, in microseconds, measured
/// like tests/c/bench.c does (blocking on each operation from one thread).
fn rust_latency(addr: &str, size: usize, iterations: u32) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt
        .block_on(
            infinicache::Client::builder()
                .proxy(addr)
                .data_shards(4)
                .parity_shards(2)
                .connect(),
        )
        .expect("connect");
    let data = bytes::Bytes::from((0..size).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    let key = format!("bench/rust/{size}");
    for _ in 0..3 {
        rt.block_on(client.put(key.as_str(), data.clone()))
            .expect("put");
    }
    let (mut put, mut get) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let t0 = Instant::now();
        // The C API copies the caller's buffer; copy here too.
        let value = bytes::Bytes::copy_from_slice(&data);
        rt.block_on(client.put(key.as_str(), value)).expect("put");
        let t1 = Instant::now();
        let got = rt.block_on(client.get(key.as_str())).expect("get");
        let t2 = Instant::now();
        assert_eq!(got.map(|v| v.len()), Some(size));
        put += t1 - t0;
        get += t2 - t1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(iterations);
    (per(put), per(get))
}

#[test]
#[ignore = "benchmark: run with --ignored bench --nocapture, preferably --release"]
fn bench() {
    let programs = programs();
    let proxy = Proxy::start(&[]);
    for (size, iterations) in [(1024usize, 2000u32), (10 << 20, 50)] {
        let (rust_put, rust_get) = rust_latency(&proxy.addr, size, iterations);
        let output = run(Command::new(&programs.bench).args([
            proxy.addr.as_str(),
            &size.to_string(),
            &iterations.to_string(),
        ]));
        let line = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let field = |name: &str| -> f64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        };
        let (c_put, c_get) = (field("put_us="), field("get_us="));
        println!(
            "size {size:>8} B, {iterations} iterations: put rust {rust_put:9.1} us  c {c_put:9.1} us  \
             (c/rust {:.3}); get rust {rust_get:9.1} us  c {c_get:9.1} us  (c/rust {:.3})",
            c_put / rust_put,
            c_get / rust_get
        );
    }
}

//! Writes a test CA (`ca.pem`) and a server certificate it signed for
//! `localhost` and `127.0.0.1` (`server.pem`, `server.key`) into a
//! directory: the TLS tests of the language bindings start a proxy with
//! them.
//!
//! Usage: `test-certs DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use infinicache_tests::certs::TestCerts;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: test-certs DIR");
        return ExitCode::from(2);
    };
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("test-certs: cannot create {}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    match TestCerts::generate(&dir) {
        Ok(certs) => {
            println!(
                "{} {} {}",
                certs.ca.display(),
                certs.cert.display(),
                certs.key.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("test-certs: {err}");
            ExitCode::FAILURE
        }
    }
}

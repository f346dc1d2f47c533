//! Certificates for the TLS tests, made on the fly: a private CA and a
//! server certificate it signed for `localhost` and `127.0.0.1`, the names
//! the tests reach the proxy by. The language bindings' tests get the same
//! files from the `test-certs` binary.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// PEM files of a test CA and a server certificate signed by it.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (for `localhost` and `127.0.0.1`).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl TestCerts {
    /// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
    pub fn generate(dir: &Path) -> std::io::Result<TestCerts> {
        Self::try_generate(dir).map_err(std::io::Error::other)?
    }

    fn try_generate(dir: &Path) -> Result<std::io::Result<TestCerts>, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: two test CAs must not look like the same
        // issuer to a verifier.
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("infinicache test CA {:016x}", rand::random::<u64>()),
        );
        let ca = ca_params.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "infinicache test proxy");
        let cert = params.signed_by(&key, &ca, &ca_key)?;

        let certs = TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        let written = std::fs::write(&certs.ca, ca.pem())
            .and_then(|()| std::fs::write(&certs.cert, cert.pem()))
            .and_then(|()| std::fs::write(&certs.key, key.serialize_pem()));
        Ok(written.map(|()| certs))
    }
}

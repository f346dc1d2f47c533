//! The deployment package: the node binary as `bootstrap` in a zip.
//!
//! An OS-only Lambda runtime (`provided.al2023`) runs the executable named
//! `bootstrap` at the root of the package, so the package holds exactly that
//! one entry, marked executable (Unix mode 0755 in the external attributes;
//! Lambda extracts the zip keeping those bits, and a `bootstrap` without them
//! fails every cold start with "permission denied").
//!
//! The zip is deterministic: fixed timestamp (1980-01-01, the zip epoch),
//! fixed "made by" system, fixed compression method and level, no extra
//! fields. The same binary therefore always gives the same bytes, hence the
//! same `CodeSha256` as Lambda computes it, and a redeploy of an unchanged
//! binary is recognised as a no-op instead of re-uploading and restarting
//! every node (which would lose the chunks they hold).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use super::spec::Architecture;

/// The one entry of the package: the name an OS-only runtime executes.
pub const ENTRY: &str = "bootstrap";

/// Unix mode of the entry: a regular file, rwxr-xr-x.
pub const ENTRY_MODE: u32 = 0o100_755;

/// Deflate level. Part of what makes the package deterministic: changing it
/// changes every `CodeSha256` and so redeploys every function once.
const COMPRESSION_LEVEL: i64 = 6;

/// The largest package Lambda accepts uploaded directly (`ZipFile`) rather
/// than through S3.
pub const DIRECT_UPLOAD_LIMIT: usize = 50 * 1024 * 1024;

/// Why the package could not be built.
#[derive(Debug, Error)]
pub enum PackageError {
    #[error(
        "cannot read the node binary {path}: {source} (build it with `cargo build --release -p infinicache-node` or pass --node-binary)"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the node binary {path} is not a Linux {architecture} executable: {reason}")]
    NotExecutable {
        path: PathBuf,
        architecture: Architecture,
        reason: String,
    },
    #[error("cannot build the deployment package: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// A deployment package and its Lambda `CodeSha256`.
#[derive(Clone)]
pub struct Package {
    zip: Vec<u8>,
    code_sha256: String,
}

impl std::fmt::Debug for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("zip_len", &self.zip.len())
            .field("code_sha256", &self.code_sha256)
            .finish()
    }
}

impl Package {
    /// Packages `binary` as the `bootstrap` entry of a deterministic zip.
    pub fn from_binary(binary: &[u8]) -> Result<Package, PackageError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(COMPRESSION_LEVEL))
            .last_modified_time(DateTime::default())
            // The "made by" system decides how readers interpret the external
            // attributes; fix it so packages built on any OS are identical.
            .system(System::Unix)
            .external_attributes(ENTRY_MODE << 16)
            .large_file(false);
        let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(binary.len() / 2)));
        writer.start_file(ENTRY, options)?;
        writer
            .write_all(binary)
            .map_err(zip::result::ZipError::Io)?;
        let zip = writer.finish()?.into_inner();
        let code_sha256 = code_sha256(&zip);
        Ok(Package { zip, code_sha256 })
    }

    /// Reads the node binary at `path`, checks that it can run on Lambda
    /// with `architecture`, and packages it.
    pub fn from_file(path: &Path, architecture: Architecture) -> Result<Package, PackageError> {
        let binary = std::fs::read(path).map_err(|source| PackageError::Read {
            path: path.to_owned(),
            source,
        })?;
        check_executable(&binary, architecture).map_err(|reason| PackageError::NotExecutable {
            path: path.to_owned(),
            architecture,
            reason,
        })?;
        Package::from_binary(&binary)
    }

    /// The zip file.
    pub fn zip(&self) -> &[u8] {
        &self.zip
    }

    /// SHA-256 of the zip, base64: what Lambda reports as `CodeSha256`.
    pub fn code_sha256(&self) -> &str {
        &self.code_sha256
    }
}

/// SHA-256 of `bytes` in base64 (standard alphabet, padded), the encoding
/// of Lambda's `CodeSha256`.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// Checks that `binary` is a 64-bit little-endian ELF executable for
/// `architecture`: catches deploying a binary built for the wrong machine
/// (a macOS build, an x86_64 build to arm64) before any function is touched,
/// instead of as a crash at the first cold start.
pub fn check_executable(binary: &[u8], architecture: Architecture) -> Result<(), String> {
    /// `e_machine` values of the ELF header.
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    let Some(header) = binary.get(..20) else {
        return Err(format!("only {} bytes long", binary.len()));
    };
    if header[..4] != *b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let machine = u16::from_le_bytes([header[18], header[19]]);
    let expected = match architecture {
        Architecture::X86_64 => EM_X86_64,
        Architecture::Arm64 => EM_AARCH64,
    };
    if machine != expected {
        let found = match machine {
            EM_X86_64 => "x86_64".to_string(),
            EM_AARCH64 => "arm64".to_string(),
            other => format!("ELF machine {other}"),
        };
        return Err(format!(
            "built for {found} (pass --architecture to match it)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample_binary() -> Vec<u8> {
        // Compressible and not: a header-like prefix, text, pseudo-random bytes.
        let mut data = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        data.extend(b"infinicache node ".repeat(1000));
        let mut state = 0x9e37_79b9_u32;
        data.extend((0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        }));
        data
    }

    #[test]
    fn the_same_binary_gives_the_same_package() {
        let binary = sample_binary();
        let first = Package::from_binary(&binary).expect("package");
        let second = Package::from_binary(&binary).expect("package");
        assert_eq!(first.zip(), second.zip());
        assert_eq!(first.code_sha256(), second.code_sha256());
        assert_eq!(first.code_sha256(), code_sha256(first.zip()));

        let mut other = binary.clone();
        other.push(0);
        let changed = Package::from_binary(&other).expect("package");
        assert_ne!(changed.code_sha256(), first.code_sha256());
    }

    #[test]
    fn the_package_holds_only_an_executable_bootstrap() {
        let binary = sample_binary();
        let package = Package::from_binary(&binary).expect("package");
        let mut archive = zip::ZipArchive::new(Cursor::new(package.zip())).expect("valid zip");
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).expect("entry");
        assert_eq!(entry.name().expect("entry name"), ENTRY);
        assert_eq!(entry.unix_mode(), Some(ENTRY_MODE));
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        assert!(entry.compressed_size() < entry.size());
        assert_eq!(entry.last_modified(), Some(DateTime::default()));
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).expect("inflate");
        assert_eq!(contents, binary);
    }

    #[test]
    fn the_external_attributes_are_unix_0755() {
        // Read the central directory entry directly, as Lambda's extractor
        // does: "version made by" high byte 3 (Unix), external attributes
        // holding the mode in their upper 16 bits.
        let package = Package::from_binary(b"#!/bin/sh\n").expect("package");
        let zip = package.zip();
        let central = zip
            .windows(4)
            .position(|window| window == b"PK\x01\x02")
            .expect("central directory entry");
        let entry = &zip[central..];
        assert_eq!(entry[5], 3, "made by Unix");
        let external = u32::from_le_bytes([entry[38], entry[39], entry[40], entry[41]]);
        assert_eq!(external >> 16, 0o100_755);
    }

    #[test]
    fn code_sha256_is_base64_of_the_digest() {
        // SHA-256("") in base64, as Lambda would report it for empty code.
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn executables_for_the_wrong_machine_are_refused() {
        let x86 = sample_binary();
        check_executable(&x86, Architecture::X86_64).expect("x86_64 ELF");
        let err = check_executable(&x86, Architecture::Arm64).expect_err("wrong machine");
        assert!(err.contains("x86_64"), "{err}");
        let mut arm = x86.clone();
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        check_executable(&arm, Architecture::Arm64).expect("arm64 ELF");
        assert!(check_executable(b"#!/bin/sh\necho\n....", Architecture::X86_64).is_err());
        assert!(check_executable(b"\x7fELF", Architecture::X86_64).is_err());
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let err = Package::from_file(
            Path::new("/nonexistent/infinicache-node"),
            Architecture::X86_64,
        )
        .expect_err("missing");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/infinicache-node"), "{text}");
        assert!(text.contains("--node-binary"), "{text}");
    }
}

//! Settings of the cloud object store (the `[cos]` table of the proxy's
//! config file).
//!
//! They are a separate type so the store can be configured, validated and
//! tested without the rest of the proxy's [`Config`](crate::Config); the
//! proxy's config embeds them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ConfigError;

/// Which store sits under the functions' memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CosBackend {
    /// No durable layer: objects live only in function memory, as in the
    /// original InfiniCache.
    Off,
    /// Files under a local directory: the embedded default, so the local
    /// platform needs no cloud account to persist objects.
    #[default]
    Dir,
    /// Amazon S3 or an S3-compatible service.
    S3,
}

/// When a PUT is acknowledged relative to its write to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Write-back: acknowledge once the chunks are in function memory and
    /// persist them in the background (bounded by `write_back_buffer_mb`).
    #[default]
    Async,
    /// Write-through: acknowledge only once the store holds the chunks
    /// (`durable` writes: fsynced on the directory backend).
    Sync,
}

/// The `[cos]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CosSettings {
    /// `off`, `dir` or `s3`.
    pub backend: CosBackend,
    /// Root of the directory backend. Unset: `<data_dir>/cos`.
    pub dir: Option<PathBuf>,
    /// S3 bucket (required by the `s3` backend).
    pub bucket: Option<String>,
    /// Prepended to every object key in the bucket, so one bucket can hold
    /// other data (or several caches) too.
    pub prefix: String,
    /// S3 endpoint override, for S3-compatible services and emulators.
    pub endpoint_url: Option<String>,
    /// S3 region. Unset: the AWS configuration chain decides.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of
    /// `bucket.endpoint/key`: what most S3-compatible services need.
    pub path_style: bool,
    /// `async` (write-back) or `sync` (write-through).
    pub write_mode: WriteMode,
    /// Most chunk bytes (MiB) waiting in memory for their write-back before
    /// PUTs have to wait for the store.
    pub write_back_buffer_mb: u64,
}

impl Default for CosSettings {
    fn default() -> Self {
        CosSettings {
            backend: CosBackend::Dir,
            dir: None,
            bucket: None,
            prefix: "infinicache/".into(),
            endpoint_url: None,
            region: None,
            path_style: false,
            write_mode: WriteMode::Async,
            write_back_buffer_mb: 256,
        }
    }
}

/// What the S3 backend needs to reach its bucket, taken from
/// [`CosSettings`] by [`CosSettings::s3`] once the backend is known to be
/// `s3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix: empty, or ending in `/` (one is added if missing).
    pub prefix: String,
    /// Endpoint override (S3-compatible services, emulators).
    pub endpoint_url: Option<String>,
    /// Unset: the AWS configuration chain, else us-east-1.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`).
    pub path_style: bool,
    /// Keys per ListObjectsV2 page. `None`: the service's default (1000);
    /// tests set a small one so pagination runs without thousands of keys.
    pub list_page_size: Option<i32>,
}

impl S3Settings {
    /// Settings for `bucket` with every other field at its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Settings {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint_url: None,
            region: None,
            path_style: false,
            list_page_size: None,
        }
    }
}

impl CosSettings {
    /// Checks the settings (the proxy's `Config::validate` calls this).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_string(),
            })
        };
        if self.write_back_buffer_mb == 0 {
            return invalid("cos.write_back_buffer_mb", "must be positive");
        }
        if self.write_back_buffer_mb > u64::MAX >> 20 {
            return invalid("cos.write_back_buffer_mb", "is too large");
        }
        if self
            .dir
            .as_deref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return invalid("cos.dir", "must not be empty");
        }
        // The prefix becomes part of every S3 key, so it obeys the same
        // rules as the keys (checked without its trailing slash).
        let prefix = self.prefix.strip_suffix('/').unwrap_or(&self.prefix);
        if !prefix.is_empty()
            && let Err(err) = super::check_key(prefix)
        {
            return Err(ConfigError::Invalid {
                setting: "cos.prefix",
                reason: err.to_string(),
            });
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("cos.endpoint_url", "must be an http:// or https:// URL");
        }
        if self.region.as_deref().is_some_and(str::is_empty) {
            return invalid("cos.region", "must not be empty");
        }
        if self.backend == CosBackend::S3 {
            match self.bucket.as_deref() {
                None | Some("") => {
                    return invalid("cos.bucket", "the s3 backend needs a bucket");
                }
                Some(bucket) if bucket.contains('/') || bucket.chars().any(char::is_whitespace) => {
                    return invalid("cos.bucket", "must be a bucket name, without '/' or spaces");
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The directory backend's root: `dir`, or `<data_dir>/cos`.
    pub fn dir_root(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("cos"))
    }

    /// The S3 backend's settings. The prefix gets a trailing `/` if it has
    /// none, so `prefix = "cache"` does not also match `cache2/...`.
    pub fn s3(&self) -> Result<S3Settings, ConfigError> {
        let Some(bucket) = self.bucket.clone().filter(|bucket| !bucket.is_empty()) else {
            return Err(ConfigError::Invalid {
                setting: "cos.bucket",
                reason: "the s3 backend needs a bucket".into(),
            });
        };
        let mut prefix = self.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Settings {
            bucket,
            prefix,
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            list_page_size: None,
        })
    }

    /// The write-back buffer in bytes.
    pub fn write_back_buffer_bytes(&self) -> u64 {
        self.write_back_buffer_mb.saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_settings_defaults_are_valid() {
        let settings = CosSettings::default();
        settings.validate().expect("defaults");
        assert_eq!(settings.backend, CosBackend::Dir);
        assert_eq!(settings.write_mode, WriteMode::Async);
        assert_eq!(settings.write_back_buffer_bytes(), 256 << 20);
        assert_eq!(
            settings.dir_root(Path::new("/var/lib/infinicache")),
            Path::new("/var/lib/infinicache/cos")
        );
    }

    #[test]
    fn cos_settings_parse_from_toml() {
        let settings: CosSettings = toml::from_str(
            "backend = \"s3\"\nbucket = \"b\"\nprefix = \"cache\"\nendpoint_url = \"http://127.0.0.1:9000\"\npath_style = true\nwrite_mode = \"sync\"\n",
        )
        .expect("parse");
        settings.validate().expect("valid");
        assert_eq!(settings.write_mode, WriteMode::Sync);
        let s3 = settings.s3().expect("s3 settings");
        assert_eq!(s3.bucket, "b");
        assert_eq!(s3.prefix, "cache/");
        assert!(s3.path_style);
        assert_eq!(s3.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let off: CosSettings = toml::from_str("backend = \"off\"").expect("parse");
        assert_eq!(off.backend, CosBackend::Off);
        assert!(toml::from_str::<CosSettings>("bucket_name = \"b\"").is_err());
        assert!(toml::from_str::<CosSettings>("backend = \"ftp\"").is_err());
    }

    #[test]
    fn cos_settings_invalid_are_rejected() {
        let s3 = CosSettings {
            backend: CosBackend::S3,
            ..CosSettings::default()
        };
        assert!(s3.validate().is_err(), "s3 without a bucket");
        assert!(s3.s3().is_err());
        for bad in [
            CosSettings {
                write_back_buffer_mb: 0,
                ..CosSettings::default()
            },
            CosSettings {
                prefix: "../escape/".into(),
                ..CosSettings::default()
            },
            CosSettings {
                prefix: "/abs".into(),
                ..CosSettings::default()
            },
            CosSettings {
                endpoint_url: Some("localhost:9000".into()),
                ..CosSettings::default()
            },
            CosSettings {
                bucket: Some("a/b".into()),
                ..s3.clone()
            },
            CosSettings {
                dir: Some(PathBuf::new()),
                ..CosSettings::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} accepted");
        }
        let no_prefix = CosSettings {
            prefix: String::new(),
            bucket: Some("b".into()),
            ..s3
        };
        no_prefix.validate().expect("an empty prefix is fine");
        assert_eq!(no_prefix.s3().expect("s3").prefix, "");
    }
}

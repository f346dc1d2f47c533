//! `infinicache-proxy deploy`: puts the cache nodes on AWS Lambda.
//!
//! The node binary is packaged once ([`package`]) as a deterministic zip, so
//! its SHA-256 equals the `CodeSha256` Lambda reports for a function already
//! running it. Each function `PREFIX-i` is then brought to the desired state
//! ([`spec`]) by [`apply`]: created if missing, its code and/or configuration
//! updated if they differ, left alone otherwise. A second deploy of the same
//! binary with the same settings therefore changes nothing, and does not
//! restart the nodes (which would drop the chunks they hold).
//!
//! Functions are handled concurrently (`--concurrency`, 8 by default) and
//! reported in index order, one line each, then a summary line. A failure of
//! one function does not stop the others; the deploy then ends with an error.

pub mod apply;
pub mod args;
pub mod package;
pub mod spec;

use std::fmt;

use aws_sdk_lambda::config::retry::RetryConfig;
use futures::StreamExt;
use thiserror::Error;

pub use apply::{FunctionError, Outcome};
pub use args::{DeployArgs, DeploySettings};
pub use package::{Package, PackageError};
pub use spec::FunctionSpec;

use crate::config::ConfigError;
use crate::invoker;

/// Attempts per API call. Unlike invocations, every deploy call is safe to
/// retry (a retried CreateFunction that already succeeded is recognised),
/// and creating many functions at once can be throttled.
const MAX_ATTEMPTS: u32 = 5;

/// Why a deploy failed.
#[derive(Debug, Error)]
pub enum DeployError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("packaging the node binary was interrupted: {0}")]
    Interrupted(String),
    /// Some functions failed; each failure was reported as it happened.
    #[error("{failed} of {total} functions failed")]
    Functions { failed: usize, total: usize },
}

impl DeployError {
    /// True for mistakes in the flags or config file (nothing was called).
    pub fn is_usage(&self) -> bool {
        matches!(self, DeployError::Config(_) | DeployError::Invalid { .. })
    }
}

/// What a deploy (or delete) did, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub delete: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub absent: usize,
    pub failed: usize,
}

impl Summary {
    fn record(&mut self, result: &Result<Outcome, FunctionError>) {
        let count = match result {
            Ok(Outcome::Created) => &mut self.created,
            Ok(Outcome::Updated(_)) => &mut self.updated,
            Ok(Outcome::Unchanged) => &mut self.unchanged,
            Ok(Outcome::Deleted) => &mut self.deleted,
            Ok(Outcome::Absent) => &mut self.absent,
            Err(_) => &mut self.failed,
        };
        *count += 1;
    }

    /// Functions handled without error.
    pub fn succeeded(&self) -> usize {
        self.created + self.updated + self.unchanged + self.deleted + self.absent
    }
}

impl fmt::Display for Summary {
    /// `deployed 12 functions: 12 created, 0 updated, 0 unchanged`, or
    /// `deleted 12 functions: 10 deleted, 2 absent`; with failures
    /// `deployed 10 of 12 functions: ..., 2 failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.delete { "deleted" } else { "deployed" };
        if self.failed == 0 {
            write!(f, "{verb} {} functions: ", self.succeeded())?;
        } else {
            write!(
                f,
                "{verb} {} of {} functions: ",
                self.succeeded(),
                self.succeeded() + self.failed
            )?;
        }
        if self.delete {
            write!(f, "{} deleted, {} absent", self.deleted, self.absent)?;
        } else {
            write!(
                f,
                "{} created, {} updated, {} unchanged",
                self.created, self.updated, self.unchanged
            )?;
        }
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        Ok(())
    }
}

/// Runs a deploy (or delete) and prints its progress: one line per function
/// on stdout (`NAME: created`...), failures on stderr, then the summary.
pub async fn run(settings: &DeploySettings) -> Result<Summary, DeployError> {
    let names = settings.function_names();
    // Everything that can be checked locally is, before the first API call.
    let job = if settings.delete {
        Job::Delete
    } else {
        let package = package(settings).await?;
        let specs = names
            .iter()
            .map(|name| settings.function_spec(name, package.code_sha256()))
            .collect::<Result<Vec<_>, _>>()?;
        Job::Deploy { package, specs }
    };
    let client = invoker::aws_client(
        settings.region.as_deref(),
        settings.endpoint_url.as_deref(),
        RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS),
    )
    .await;
    print_header(settings, &names, &job, &client);

    let mut results = futures::stream::iter(0..names.len())
        .map(|index| {
            let (client, job, name) = (&client, &job, &names[index]);
            async move {
                let result = match job {
                    Job::Delete => apply::delete(client, name).await,
                    Job::Deploy { package, specs } => {
                        apply::deploy(client, &specs[index], package, settings.max_wait).await
                    }
                };
                (name, result)
            }
        })
        .buffered(settings.concurrency);

    let mut summary = Summary {
        delete: settings.delete,
        ..Summary::default()
    };
    while let Some((name, result)) = results.next().await {
        match &result {
            Ok(outcome) => println!("{name}: {outcome}"),
            Err(err) => eprintln!("infinicache-proxy deploy: {err}"),
        }
        summary.record(&result);
    }
    println!("{summary}");
    if summary.failed > 0 {
        return Err(DeployError::Functions {
            failed: summary.failed,
            total: summary.failed + summary.succeeded(),
        });
    }
    Ok(summary)
}

/// What to do to every function.
enum Job {
    Delete,
    /// `specs[i]` is function `i`'s desired state.
    Deploy {
        package: Package,
        specs: Vec<FunctionSpec>,
    },
}

/// One line saying what is about to happen, and where.
fn print_header(
    settings: &DeploySettings,
    names: &[String],
    job: &Job,
    client: &aws_sdk_lambda::Client,
) {
    let region = client
        .config()
        .region()
        .map_or_else(|| "?".to_string(), |region| region.to_string());
    let endpoint = settings
        .endpoint_url
        .as_deref()
        .map(|url| format!(" at {url}"))
        .unwrap_or_default();
    let range = match names {
        [only] => only.clone(),
        [first, .., last] => format!("{first} .. {last}"),
        [] => String::new(),
    };
    match job {
        Job::Deploy { package, .. } => println!(
            "deploying {} functions ({range}) to Lambda in {region}{endpoint}: {} packaged, {:.1} MiB, CodeSha256 {}",
            names.len(),
            settings.node_binary.display(),
            mib(package.zip().len()),
            package.code_sha256()
        ),
        Job::Delete => println!(
            "deleting {} functions ({range}) from Lambda in {region}{endpoint}",
            names.len()
        ),
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Reads and packages the node binary (CPU-bound: off the async workers).
async fn package(settings: &DeploySettings) -> Result<Package, DeployError> {
    let path = settings.node_binary.clone();
    let architecture = settings.architecture;
    let package = tokio::task::spawn_blocking(move || Package::from_file(&path, architecture))
        .await
        .map_err(|err| DeployError::Interrupted(err.to_string()))??;
    if package.zip().len() > package::DIRECT_UPLOAD_LIMIT {
        eprintln!(
            "infinicache-proxy deploy: warning: the package is {:.1} MiB; AWS Lambda accepts at most {} MiB uploaded directly (use a release build of the node)",
            mib(package.zip().len()),
            package::DIRECT_UPLOAD_LIMIT / (1024 * 1024)
        );
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec::{Changes, Setting};

    #[test]
    fn summaries_read_as_documented() {
        let mut summary = Summary::default();
        for _ in 0..12 {
            summary.record(&Ok(Outcome::Created));
        }
        assert_eq!(
            summary.to_string(),
            "deployed 12 functions: 12 created, 0 updated, 0 unchanged"
        );

        let mut mixed = Summary::default();
        mixed.record(&Ok(Outcome::Unchanged));
        mixed.record(&Ok(Outcome::Updated(Changes {
            code: false,
            configuration: vec![Setting::Memory],
        })));
        mixed.record(&Err(FunctionError {
            function: "f-2".into(),
            operation: "GetFunction",
            message: "boom".into(),
        }));
        assert_eq!(
            mixed.to_string(),
            "deployed 2 of 3 functions: 0 created, 1 updated, 1 unchanged, 1 failed"
        );

        let mut deleted = Summary {
            delete: true,
            ..Summary::default()
        };
        deleted.record(&Ok(Outcome::Deleted));
        deleted.record(&Ok(Outcome::Absent));
        assert_eq!(
            deleted.to_string(),
            "deleted 2 functions: 1 deleted, 1 absent"
        );
    }
}

//! Invoking cache nodes through the AWS Lambda Invoke API.
//!
//! There is one invoker path for every platform: the proxy always calls
//! `aws-sdk-lambda`'s `Invoke`. On the local platform the SDK simply points
//! at the embedded platform's endpoint; on AWS it uses the default credential
//! chain and region. The SDK's own retries are off: retrying an invocation
//! that may still be running would start a second environment of the node.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use base64::Engine;
use infinicache::protocol::{Invocation, InvocationSummary};
use thiserror::Error;

/// Why an invocation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The Lambda API refused or could not be reached.
    #[error("Lambda API error: {0}")]
    Api(String),
    /// The function ran and reported an error (`X-Amz-Function-Error`).
    #[error("function error ({kind}): {message}")]
    Function { kind: String, message: String },
    /// The function returned something that is not a node's summary.
    #[error("unexpected function response: {0}")]
    BadResponse(String),
}

/// What the provider reports about one invocation: the `REPORT` line of the
/// log tail (`LogType: Tail`), which is how AWS tells a caller the billed
/// duration. Both AWS and the local platform send it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Run time of the handler (milliseconds).
    pub duration_ms: f64,
    /// What was billed (milliseconds, whole ticks).
    pub billed_ms: u64,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Set on a cold start: the environment's initialisation time.
    pub init_ms: Option<f64>,
}

impl Report {
    /// Parses the `REPORT RequestId: ...` line out of a decoded log tail.
    pub fn parse(log: &str) -> Option<Report> {
        let line = log.lines().rev().find(|line| line.starts_with("REPORT "))?;
        let field = |name: &str, unit: &str| -> Option<f64> {
            line.split('\t').find_map(|part| {
                let value = part.trim().strip_prefix(name)?.strip_prefix(':')?;
                value.trim().strip_suffix(unit)?.trim().parse().ok()
            })
        };
        Some(Report {
            duration_ms: field("Duration", "ms")?,
            billed_ms: field("Billed Duration", "ms")? as u64,
            memory_mb: field("Memory Size", "MB")? as u32,
            init_ms: field("Init Duration", "ms"),
        })
    }

    /// Billed GB-seconds, the unit AWS charges by.
    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * f64::from(self.memory_mb) / 1024.0
    }
}

/// The outcome of one invocation and, if the provider sent one, its report.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub result: Result<InvocationSummary, InvokeError>,
    /// `None` when the API call itself failed (nothing was billed) or the
    /// provider sent no log tail.
    pub report: Option<Report>,
}

impl InvokeError {
    /// The execution environment died under the invocation (its runtime
    /// exited: killed, crashed, out of memory): AWS reports this as the
    /// error type `Runtime.ExitError`. Unlike a node that cannot do its job,
    /// this says nothing about the next environment.
    pub fn environment_died(&self) -> bool {
        matches!(self, InvokeError::Function { message, .. } if message.contains("Runtime.ExitError"))
    }
}

/// The region used when neither the caller nor the AWS configuration names
/// one (the proxy's default `region` setting).
pub const FALLBACK_REGION: &str = "us-east-1";

/// A Lambda client for AWS (or an emulator at `endpoint_url`): credentials
/// and, unless `region` is given, the region come from the usual AWS
/// configuration chain (environment, profiles, IMDS...), falling back to
/// [`FALLBACK_REGION`]. HTTPS uses rustls with the ring provider.
///
/// Both the invoker and `infinicache-proxy deploy` build their AWS client
/// here so they reach Lambda the same way; they differ only in `retry`: the
/// invoker must never retry (see the module docs), while deploying should
/// ride out throttling with the SDK's standard retries.
pub async fn aws_client(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    retry: RetryConfig,
) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(retry);
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let mut config = aws_sdk_lambda::config::Builder::from(&sdk);
    if sdk.region().is_none() {
        config = config.region(Region::from_static(FALLBACK_REGION));
    }
    Client::from_conf(config.build())
}

/// Invokes functions through the Lambda API.
#[derive(Debug, Clone)]
pub struct Invoker {
    client: Client,
}

impl Invoker {
    /// An invoker for a Lambda API at `endpoint_url` over plain HTTP with
    /// static credentials: the embedded local platform.
    pub fn local(endpoint_url: &str, region: &str) -> Self {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(endpoint_url)
            .credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "infinicache-local",
            ))
            .retry_config(RetryConfig::disabled())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Invoker {
            client: Client::from_conf(config),
        }
    }

    /// An invoker for AWS Lambda (or an emulator at `endpoint_url`), with
    /// region and credentials from the usual AWS configuration.
    pub async fn aws(region: Option<&str>, endpoint_url: Option<&str>) -> Self {
        Invoker {
            client: aws_client(region, endpoint_url, RetryConfig::disabled()).await,
        }
    }

    /// Invokes `function` and waits for it to return (RequestResponse),
    /// asking for the log tail so the billed duration is known.
    pub async fn invoke(&self, function: &str, invocation: &Invocation) -> Invoked {
        let payload = match serde_json::to_vec(invocation) {
            Ok(payload) => payload,
            Err(err) => {
                return Invoked {
                    result: Err(InvokeError::BadResponse(err.to_string())),
                    report: None,
                };
            }
        };
        let output = match self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(payload))
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                return Invoked {
                    result: Err(InvokeError::Api(describe_sdk_error(&err))),
                    report: None,
                };
            }
        };
        let report = output
            .log_result()
            .and_then(|tail| base64::engine::general_purpose::STANDARD.decode(tail).ok())
            .and_then(|log| Report::parse(&String::from_utf8_lossy(&log)));
        let body = output
            .payload()
            .map(|blob| blob.as_ref())
            .unwrap_or_default();
        let result = match output.function_error() {
            Some(kind) => Err(InvokeError::Function {
                kind: kind.to_string(),
                message: String::from_utf8_lossy(body).into_owned(),
            }),
            None => serde_json::from_slice(body).map_err(|err| {
                InvokeError::BadResponse(format!("{err}: {}", String::from_utf8_lossy(body)))
            }),
        };
        Invoked { result, report }
    }
}

/// One line for an SDK failure, for logs and client-visible errors: the
/// service's error code and message when the API answered, else the chain
/// of causes (without the SDK's debug dump of the raw response).
pub fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = err {
        let inner = service.err();
        return format!(
            "{}: {}",
            inner.code().unwrap_or("service error"),
            inner.message().unwrap_or("no message")
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_line_of_a_log_tail() {
        let log = "START RequestId: 1 Version: $LATEST\nEND RequestId: 1\nREPORT RequestId: 1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\tMax Memory Used: 45 MB\tInit Duration: 5.50 ms\t\n";
        let report = Report::parse(log).expect("report");
        assert_eq!(
            report,
            Report {
                duration_ms: 12.34,
                billed_ms: 13,
                memory_mb: 1024,
                init_ms: Some(5.5),
            }
        );
        assert!((report.gb_seconds() - 0.013).abs() < 1e-9);
        let warm = "REPORT RequestId: 2\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t";
        assert_eq!(Report::parse(warm).and_then(|r| r.init_ms), None);
        assert_eq!(Report::parse("no report here"), None);
        assert_eq!(Report::parse("REPORT RequestId: 3\tDuration: x ms"), None);
    }
}

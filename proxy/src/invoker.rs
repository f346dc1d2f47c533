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
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
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

    /// Invokes `function` and waits for it to return (RequestResponse).
    pub async fn invoke(
        &self,
        function: &str,
        invocation: &Invocation,
    ) -> Result<InvocationSummary, InvokeError> {
        let payload = serde_json::to_vec(invocation)
            .map_err(|err| InvokeError::BadResponse(err.to_string()))?;
        let output = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|err| InvokeError::Api(describe_sdk_error(&err)))?;
        let body = output
            .payload()
            .map(|blob| blob.as_ref())
            .unwrap_or_default();
        if let Some(kind) = output.function_error() {
            return Err(InvokeError::Function {
                kind: kind.to_string(),
                message: String::from_utf8_lossy(body).into_owned(),
            });
        }
        serde_json::from_slice(body).map_err(|err| {
            InvokeError::BadResponse(format!("{err}: {}", String::from_utf8_lossy(body)))
        })
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

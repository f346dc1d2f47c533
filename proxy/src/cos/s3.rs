//! The S3 backend: objects in a bucket, under a key prefix, through
//! `aws-sdk-s3`.
//!
//! The client is built like the invoker's Lambda client
//! ([`crate::invoker::aws_client`]): the same HTTP client (rustls with the
//! ring provider), region and credentials from the usual AWS configuration
//! chain, an optional endpoint for S3-compatible services. Unlike the
//! invoker, it keeps the SDK's standard retries: every request here is
//! idempotent (a PUT of the same body, a GET, a DELETE, a listing), so
//! repeating one after a throttle or a dropped connection is safe.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;

use super::{CosError, S3Settings, check_key};
use crate::invoker::{FALLBACK_REGION, describe_sdk_error};

/// Objects in an S3 bucket under a key prefix.
pub(crate) struct S3Store {
    client: Client,
    bucket: String,
    /// Empty or ending in `/`; prepended to every key.
    prefix: String,
    endpoint_url: Option<String>,
    region: String,
    list_page_size: Option<i32>,
}

impl S3Store {
    /// Builds the client and checks that the bucket is reachable
    /// (HeadBucket), so a wrong bucket, endpoint or credentials fail at
    /// start-up with a clear message rather than on every write.
    pub(crate) async fn connect(settings: &S3Settings) -> Result<Self, CosError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::standard());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        let mut config =
            aws_sdk_s3::config::Builder::from(&sdk).force_path_style(settings.path_style);
        let region = match sdk.region() {
            Some(region) => region.to_string(),
            None => {
                config = config.region(Region::from_static(FALLBACK_REGION));
                FALLBACK_REGION.to_string()
            }
        };
        let mut prefix = settings.prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let store = S3Store {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix,
            endpoint_url: settings.endpoint_url.clone(),
            region,
            list_page_size: settings.list_page_size,
        };
        store
            .client
            .head_bucket()
            .bucket(&store.bucket)
            .send()
            .await
            .map_err(|err| {
                let message = match status(&err) {
                    Some(404) => "the bucket does not exist".to_string(),
                    Some(403) => "access denied (check the AWS credentials)".to_string(),
                    _ => describe_sdk_error(&err),
                };
                CosError::S3 {
                    op: "HeadBucket",
                    key: store.bucket.clone(),
                    message,
                }
            })?;
        Ok(store)
    }

    pub(crate) fn describe(&self) -> String {
        let place = self.endpoint_url.as_deref().unwrap_or(&self.region);
        format!("s3://{}/{} ({place})", self.bucket, self.prefix)
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Every S3 PUT is durable once acknowledged, so there is no `durable`
    /// flag here.
    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), CosError> {
        let object = self.object(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| error("PutObject", &object, &err))?;
        Ok(())
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, CosError> {
        let object = self.object(key);
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err)
                if err.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || status(&err) == Some(404) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(error("GetObject", &object, &err)),
        };
        let body = output.body.collect().await.map_err(|err| CosError::S3 {
            op: "GetObject",
            key: object.clone(),
            message: format!("reading the body: {err}"),
        })?;
        Ok(Some(body.into_bytes()))
    }

    /// S3 answers a DELETE of a missing object with success; some
    /// S3-compatible services answer 404 instead, which is success too.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), CosError> {
        let object = self.object(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if status(&err) == Some(404) => Ok(()),
            Err(err) => Err(error("DeleteObject", &object, &err)),
        }
    }

    /// Follows ListObjectsV2's continuation tokens to the end. Objects
    /// under the prefix that no key could name (written by something else)
    /// are left out, as on the directory backend.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>, CosError> {
        let full_prefix = self.object(prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_max_keys(self.list_page_size)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|err| error("ListObjectsV2", &full_prefix, &err))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key()?.strip_prefix(&self.prefix))
                    .filter(|key| check_key(key).is_ok())
                    .map(str::to_string),
            );
            let next = match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => next,
                _ => break,
            };
            // A service that hands back the token it was given would loop
            // forever.
            if token.as_deref() == Some(next) {
                return Err(CosError::S3 {
                    op: "ListObjectsV2",
                    key: full_prefix,
                    message: "the service repeated its continuation token".into(),
                });
            }
            token = Some(next.to_string());
        }
        Ok(keys)
    }
}

/// The HTTP status of a failed request, if the service answered.
fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

fn error<E>(op: &'static str, object: &str, err: &SdkError<E, HttpResponse>) -> CosError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    CosError::S3 {
        op,
        key: object.to_string(),
        message: describe_sdk_error(err),
    }
}

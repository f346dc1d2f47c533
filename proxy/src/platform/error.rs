//! Errors: [`PlatformError`] for the Rust API, [`ApiError`] for AWS-style
//! HTTP error responses.
//!
//! AWS's restJson1 protocol names the error in the `x-amzn-ErrorType` header
//! and puts `{"Type": ..., "message": ...}` in the body; aws-sdk-lambda reads
//! the header first (`json_errors::parse_error_metadata`) and maps the code to
//! its typed `InvokeError` variants, so both must be exact.

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Failure to start or configure the platform.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The configuration is inconsistent (see the message).
    #[error("invalid platform configuration: {0}")]
    InvalidConfig(String),
    /// The reclaim policy is invalid (see the message).
    #[error("invalid reclaim policy: {0}")]
    Reclaim(#[from] super::reclaim::ReclaimPolicyError),
    /// A function's executable does not exist (AWS would refuse to create a
    /// function without code; failing early beats failing every invoke).
    #[error("function {function:?}: executable {} not found", path.display())]
    MissingExecutable {
        /// The function.
        function: String,
        /// The configured path.
        path: PathBuf,
    },
    /// The Invoke/admin listener could not be bound.
    #[error("cannot bind the platform listener on {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: std::net::SocketAddr,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Whose fault an error is, AWS's `Type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    User,
    Service,
}

/// An AWS-style error response of the Invoke, Runtime or admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub fault: Fault,
    pub message: String,
}

impl ApiError {
    fn new(
        status: StatusCode,
        error_type: &'static str,
        fault: Fault,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            fault,
            message: message.into(),
        }
    }

    pub fn function_not_found(arn: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            Fault::User,
            format!("Function not found: {arn}"),
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            Fault::User,
            what,
        )
    }

    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            Fault::User,
            message,
        )
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            Fault::User,
            message,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            Fault::User,
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            Fault::User,
            message,
        )
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            Fault::Service,
            message,
        )
    }

    pub fn unknown_operation() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            Fault::User,
            "Unknown operation",
        )
    }

    /// Runtime API error for a request id that is not the environment's
    /// current invocation (late response after a timeout, or garbage).
    pub fn invalid_request_id(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            Fault::User,
            format!("Invalid request ID: {id:?}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "Type": match self.fault { Fault::User => "User", Fault::Service => "Service" },
            "message": self.message,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.error_type),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

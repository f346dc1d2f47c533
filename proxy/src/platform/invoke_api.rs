//! The Lambda Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`)
//! as aws-sdk-lambda calls it: restJson1, payload as the raw body, options in
//! `X-Amz-*` headers. SigV4 headers are accepted and ignored.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Shared;
use super::billing::{InvocationOutcome, report_line};
use super::dispatch::{self, Finished, Rejected};
use super::encoding::{BodyError, base64_decode, base64_encode, read_limited};
use super::error::ApiError;
use super::function::Function;
use super::ids;
use super::invocation::Event;

/// AWS's payload limit for synchronous invocations (6 MB).
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// AWS's payload limit for asynchronous invocations (1 MB since 2025).
const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// AWS's limit on the base64 client context.
const MAX_CLIENT_CONTEXT: usize = 3583;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/2015-03-31/functions/{function}/invocations", post(invoke))
}

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// Splits a `FunctionName` (name, `name:qualifier`, full or partial ARN)
/// into name and qualifier.
pub(super) fn parse_function_name(raw: &str) -> Option<(&str, Option<&str>)> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        ["arn", _, "lambda", _, _, "function", name] | [_, "function", name] => (*name, None),
        ["arn", _, "lambda", _, _, "function", name, q] | [_, "function", name, q] => {
            (*name, Some(*q))
        }
        _ => return None,
    };
    (!name.is_empty()).then_some((name, qualifier))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Everything validated about a request before anything runs.
struct Request {
    function: Arc<Function>,
    kind: InvocationType,
    tail_log: bool,
    event: Arc<Event>,
}

async fn parse_request(
    shared: &Shared,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Request, ApiError> {
    let raw = path
        .map(|Path(p)| p)
        .map_err(|_| ApiError::invalid_parameter("Invalid function name"))?;
    let (name, qualifier) = parse_function_name(&raw)
        .ok_or_else(|| ApiError::function_not_found(&ids::function_arn(&raw)))?;
    let query_qualifier = query.ok().and_then(|Query(q)| q.get("Qualifier").cloned());
    let qualifier = match (qualifier, query_qualifier.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        (Some(q), _) | (None, Some(q)) => Some(q),
        (None, None) => None,
    };
    let not_found = || {
        let arn = ids::function_arn(name);
        ApiError::function_not_found(&match qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn,
        })
    };
    // Only the unpublished version exists locally.
    if qualifier.is_some_and(|q| q != "$LATEST") {
        return Err(not_found());
    }
    let function = shared.functions.get(name).cloned().ok_or_else(not_found)?;

    let kind = match header_str(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "Unsupported invocation type: {other:?}"
            )));
        }
    };
    let tail_log = header_str(headers, "x-amz-log-type") == Some("Tail");
    let client_context = match headers.get("x-amz-client-context") {
        None => None,
        Some(value) => Some(decode_client_context(value.as_bytes())?),
    };

    let limit = match kind {
        InvocationType::Event => MAX_ASYNC_PAYLOAD,
        _ => MAX_SYNC_PAYLOAD,
    };
    let payload = match read_limited(body, limit).await {
        Ok(payload) => payload,
        Err(BodyError::TooLarge { limit }) => return Err(ApiError::too_large(limit)),
        Err(BodyError::Io(err)) => {
            return Err(ApiError::invalid_content(format!(
                "Could not read request body: {err}"
            )));
        }
    };
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        // AWS hands the function an empty object when there is no payload.
        Bytes::from_static(b"{}")
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&payload).map_err(|err| {
            ApiError::invalid_content(format!("Could not parse request body into json: {err}"))
        })?;
        payload
    };

    Ok(Request {
        function,
        kind,
        tail_log,
        event: Arc::new(Event {
            request_id: ids::request_id(),
            payload,
            client_context,
            trace_id: ids::trace_id(),
        }),
    })
}

/// `X-Amz-Client-Context` is base64 JSON; the runtime gets the JSON itself
/// (and `lambda_runtime` aborts on a context it cannot parse, so it is
/// checked here).
pub(super) fn decode_client_context(raw: &[u8]) -> Result<String, ApiError> {
    let invalid =
        || ApiError::invalid_content("Client context must be a valid Base64-encoded JSON object.");
    if raw.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid_parameter(format!(
            "Client context must be at most {MAX_CLIENT_CONTEXT} bytes."
        )));
    }
    let text = std::str::from_utf8(raw).map_err(|_| invalid())?;
    let json = base64_decode(text.trim()).ok_or_else(invalid)?;
    let value: serde_json::Value = serde_json::from_slice(&json).map_err(|_| invalid())?;
    if !value.is_object() {
        return Err(invalid());
    }
    Ok(value.to_string())
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match parse_request(&shared, path, query, &headers, body).await {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    if *shared.shutdown.borrow() {
        return ApiError::service("The Lambda platform is shutting down.").into_response();
    }
    let request_id = request.event.request_id.clone();
    let mut response = match request.kind {
        InvocationType::DryRun => StatusCode::NO_CONTENT.into_response(),
        InvocationType::Event => {
            let task = dispatch::run(Arc::clone(&shared), request.function, request.event, true);
            let id = request_id.clone();
            tokio::spawn(async move {
                if let Err(rejected) = task.await {
                    tracing::warn!(request_id = %id, ?rejected, "asynchronous invocation dropped");
                }
            });
            StatusCode::ACCEPTED.into_response()
        }
        InvocationType::RequestResponse => {
            let task = dispatch::run(Arc::clone(&shared), request.function, request.event, false);
            match tokio::spawn(task).await {
                Ok(Ok(finished)) => sync_response(&finished, request.tail_log),
                Ok(Err(Rejected::Throttled)) => ApiError::too_many_requests(
                    "Rate Exceeded. All execution environments of the function are busy.",
                )
                .into_response(),
                Ok(Err(Rejected::ShutDown)) => {
                    ApiError::service("The Lambda platform is shutting down.").into_response()
                }
                Err(err) => {
                    ApiError::service(format!("invocation task failed: {err}")).into_response()
                }
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

/// 200 with the function's response, or with its error document and
/// `X-Amz-Function-Error: Unhandled` (a function error is not an API error).
fn sync_response(finished: &Finished, tail_log: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "X-Amz-Executed-Version",
        HeaderValue::from_static("$LATEST"),
    );
    if finished.completion.outcome != InvocationOutcome::Success {
        headers.insert(
            "X-Amz-Function-Error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail_log {
        let id = &finished.record.request_id;
        let log = format!(
            "START RequestId: {id} Version: $LATEST\nEND RequestId: {id}\n{}\n",
            report_line(&finished.record)
        );
        if let Ok(v) = HeaderValue::from_str(&base64_encode(log.as_bytes())) {
            headers.insert("X-Amz-Log-Result", v);
        }
    }
    (StatusCode::OK, headers, finished.completion.payload.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_arns() {
        assert_eq!(parse_function_name("f"), Some(("f", None)));
        assert_eq!(
            parse_function_name("f:$LATEST"),
            Some(("f", Some("$LATEST")))
        );
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:f"),
            Some(("f", None))
        );
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:f:7"),
            Some(("f", Some("7")))
        );
        assert_eq!(
            parse_function_name("123456789012:function:f"),
            Some(("f", None))
        );
        assert_eq!(parse_function_name("a:b:c:d:e"), None);
        assert_eq!(parse_function_name(""), None);
    }

    #[test]
    fn client_context_is_base64_json_object() {
        let ok = base64_encode(br#"{"custom":{"a":"b"}}"#);
        assert_eq!(
            decode_client_context(ok.as_bytes()).ok().as_deref(),
            Some(r#"{"custom":{"a":"b"}}"#)
        );
        assert!(decode_client_context(b"not base64!").is_err());
        assert!(decode_client_context(base64_encode(b"[1]").as_bytes()).is_err());
    }
}

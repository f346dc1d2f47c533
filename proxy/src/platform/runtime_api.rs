//! The Lambda Runtime API (2018-06-01) for one environment, as called by
//! `lambda_runtime`: long-poll `next`, post `response` / `error`, report
//! `init/error`. Each environment has its own listener, so the handlers
//! know which environment is calling from their state alone.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::billing::InvocationOutcome;
use super::encoding::{BodyError, read_limited};
use super::environment::{Environment, Next};
use super::error::ApiError;
use super::invocation::{Completion, Delivery};

/// AWS's limit on a buffered function response (6 MB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Limit on error reports; they are small documents.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// Serves the Runtime API of `env` until the task is aborted (by the
/// environment's supervisor, once the process is gone).
pub(crate) async fn serve(listener: TcpListener, env: Arc<Environment>) {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|| async { ApiError::unknown_operation() })
        .with_state(env);
    if let Err(err) = axum::serve(listener, app).await {
        tracing::warn!(%err, "runtime API listener failed");
    }
}

async fn next(State(env): State<Arc<Environment>>) -> Response {
    let delivery = match env.next_event() {
        Next::Deliver(delivery) => delivery,
        Next::Wait(rx) => match rx.await {
            Ok(delivery) => delivery,
            Err(_) => return gone(&env).await,
        },
        Next::Gone => return gone(&env).await,
        Next::AlreadyPolling => {
            return ApiError::invalid_parameter("another /next poll is already waiting")
                .into_response();
        }
    };
    event_response(delivery)
}

/// Answer to a poll of an environment that is being torn down, sent only
/// once its process is dead: `lambda_runtime` panics on any `/next` answer
/// that is not an event, which would spray a backtrace over the logs of an
/// environment that is merely being reclaimed.
async fn gone(env: &Environment) -> Response {
    env.wait_exit().await;
    ApiError::service("execution environment is shutting down").into_response()
}

fn event_response(d: Delivery) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(name, v);
        }
    };
    set("Lambda-Runtime-Aws-Request-Id", &d.event.request_id);
    set("Lambda-Runtime-Deadline-Ms", &d.deadline_ms.to_string());
    set("Lambda-Runtime-Invoked-Function-Arn", &d.function_arn);
    set("Lambda-Runtime-Trace-Id", &d.event.trace_id);
    if let Some(ctx) = &d.event.client_context {
        set("Lambda-Runtime-Client-Context", ctx);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, d.event.payload.clone()).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

async fn response(
    State(env): State<Arc<Environment>>,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let Ok(Path(id)) = id else {
        return ApiError::invalid_request_id("<malformed>").into_response();
    };
    let (completion, reply) = match read_limited(body, MAX_RESPONSE_BYTES).await {
        Ok(payload) => (Completion::success(payload), accepted()),
        Err(BodyError::TooLarge { limit }) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({limit} bytes)."
            );
            (
                Completion::failure(
                    InvocationOutcome::FunctionError,
                    "Function.ResponseSizeTooLarge",
                    &message,
                ),
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    axum::Json(serde_json::json!({
                        "errorMessage": message,
                        "errorType": "RequestEntityTooLarge",
                    })),
                )
                    .into_response(),
            )
        }
        Err(BodyError::Io(err)) => {
            // The runtime vanished mid-upload; its supervisor will fail the
            // invocation when the process is reaped.
            tracing::debug!(env = env.id, %err, "truncated response body");
            return ApiError::invalid_content("truncated body").into_response();
        }
    };
    match env.complete(&id, completion) {
        Ok(()) => reply,
        Err(err) => err.into_response(),
    }
}

/// The `Lambda-Runtime-Function-Error-Type` header, if usable.
fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads an error report; an unreadable one is still an error report.
async fn read_report(body: Body) -> Bytes {
    read_limited(body, MAX_ERROR_BYTES)
        .await
        .unwrap_or_else(|err| Bytes::from(format!("unreadable error report: {err}")))
}

async fn error(
    State(env): State<Arc<Environment>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Path(id)) = id else {
        return ApiError::invalid_request_id("<malformed>").into_response();
    };
    let report = read_report(body).await;
    let completion = Completion::reported(
        InvocationOutcome::FunctionError,
        error_type(&headers).as_deref(),
        report,
    );
    match env.complete(&id, completion) {
        Ok(()) => accepted(),
        Err(err) => err.into_response(),
    }
}

async fn init_error(
    State(env): State<Arc<Environment>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let report = read_report(body).await;
    let message = serde_json::from_slice::<serde_json::Value>(&report)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&report).into_owned());
    let kind = error_type(&headers).unwrap_or_else(|| "Runtime.InitError".to_owned());
    tracing::debug!(env = env.id, %kind, %message, "runtime init error");
    env.fail_init(Completion::failure(
        InvocationOutcome::Crashed,
        "Runtime.InitError",
        &format!("Init error ({kind}): {message}"),
    ));
    accepted()
}

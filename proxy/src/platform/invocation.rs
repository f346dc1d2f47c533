//! The data that flows through one invocation: the event handed to the
//! runtime, the signals back to the invoker, and the final completion.

use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;

use super::billing::InvocationOutcome;

/// An event as delivered to the runtime by `GET /runtime/invocation/next`.
#[derive(Debug)]
pub(crate) struct Event {
    pub request_id: String,
    /// Validated JSON (`{}` when the caller sent no payload, as on AWS).
    pub payload: Bytes,
    /// Decoded client context JSON (the Invoke API carries it base64-encoded,
    /// the Runtime API as plain JSON).
    pub client_context: Option<String>,
    pub trace_id: String,
}

/// What the `/next` handler needs to answer the runtime.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub event: std::sync::Arc<Event>,
    pub deadline_ms: u64,
    pub function_arn: String,
}

/// Sent to the invoker when the runtime has received the event: the
/// invocation's clock (and its timeout) starts here, not at dispatch, so a
/// cold start's init time does not eat into the function's timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    pub at: Instant,
    pub wall: SystemTime,
    /// Set for a cold start: spawn until the runtime's first `/next`.
    pub init_duration: Option<Duration>,
}

/// How an invocation ended and what the caller receives.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub outcome: InvocationOutcome,
    /// The function's response, or an AWS-style error document
    /// (`{"errorMessage": ..., "errorType": ...}`) for failures.
    pub payload: Bytes,
}

impl Completion {
    pub fn success(payload: Bytes) -> Self {
        Self {
            outcome: InvocationOutcome::Success,
            payload,
        }
    }

    /// A failure described by an AWS-style error document.
    pub fn failure(outcome: InvocationOutcome, error_type: &str, message: &str) -> Self {
        let doc = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        Self {
            outcome,
            payload: Bytes::from(doc.to_string()),
        }
    }

    /// A failure reported by the runtime itself (`/invocation/{id}/error` or
    /// `/init/error`): its JSON document is passed through as AWS does, and
    /// anything else is wrapped into one.
    pub fn reported(outcome: InvocationOutcome, error_type: Option<&str>, body: Bytes) -> Self {
        let is_object =
            serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object());
        if is_object {
            Self {
                outcome,
                payload: body,
            }
        } else {
            Self::failure(
                outcome,
                error_type.unwrap_or("Unhandled"),
                &String::from_utf8_lossy(&body),
            )
        }
    }

    /// AWS's message for an invocation that ran out of time.
    pub fn timed_out(request_id: &str, timeout: Duration) -> Self {
        Self::failure(
            InvocationOutcome::Timeout,
            "Sandbox.Timedout",
            &format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            ),
        )
    }

    /// AWS's message when the runtime process went away mid-invocation.
    pub fn exited(request_id: &str, status: &str, why: Option<&str>) -> Self {
        let suffix = why.map(|w| format!(" ({w})")).unwrap_or_default();
        Self::failure(
            InvocationOutcome::Crashed,
            "Runtime.ExitError",
            &format!("RequestId: {request_id} Error: Runtime exited with error: {status}{suffix}"),
        )
    }
}

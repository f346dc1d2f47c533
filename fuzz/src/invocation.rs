//! What travels through the Lambda Invoke API: the JSON invocation payload
//! a node receives and the summary it returns
//! (`core/src/protocol/invocation.rs`), the `REPORT` line of the log tail
//! the proxy reads (`proxy/src/invoker.rs`), and the request parts the
//! local platform parses (`proxy/src/platform/parsers.rs`).
//!
//! Input: the bytes of a payload, a log tail or a header value; every
//! parser gets all of them. Properties: whatever parses serialises and
//! parses back to the same value; the `Debug` output (logs) of a parsed
//! invocation does not depend on its token (a credential); the platform
//! hands the runtime only a JSON object as client context; base64 decodes
//! what it encodes.

use infinicache::protocol::{Invocation, InvocationSummary};
use infinicache_proxy::invoker::Report;
use infinicache_proxy::platform::parsers;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs one input; panics if a property does not hold.
pub fn check(data: &[u8]) {
    if let Some(invocation) = json_round_trip::<Invocation>(data) {
        check_token_hidden(&invocation);
    }
    json_round_trip::<InvocationSummary>(data);

    let text = String::from_utf8_lossy(data);
    if let Some(report) = Report::parse(&text) {
        let gb_seconds = report.gb_seconds();
        assert!(gb_seconds.is_finite() && gb_seconds >= 0.0, "{report:?}");
    }
    check_platform_parsers(data, &text);
}

/// Parses `data` as JSON of type `T`; what parses must serialise and parse
/// back to the same value.
fn json_round_trip<T>(data: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value = serde_json::from_slice::<T>(data).ok()?;
    let json = serde_json::to_vec(&value)
        .unwrap_or_else(|err| panic!("{value:?} does not serialise: {err}"));
    let again = serde_json::from_slice::<T>(&json)
        .unwrap_or_else(|err| panic!("{value:?} does not parse back: {err}"));
    assert_eq!(again, value, "JSON round trip changed the value");
    Some(value)
}

/// The token is a credential: `Debug` (what logs print) must not depend
/// on it.
fn check_token_hidden(invocation: &Invocation) {
    let with_token = |token: &str| {
        let mut other = invocation.clone();
        if let Invocation::Serve(args) | Invocation::Backup(args) = &mut other {
            args.token = token.to_string();
        }
        format!("{other:?}")
    };
    assert_eq!(
        format!("{invocation:?}"),
        with_token("another token"),
        "Debug shows the token"
    );
}

/// The local platform's parsers of Invoke API request parts.
fn check_platform_parsers(data: &[u8], text: &str) {
    if let Some((name, qualifier)) = parsers::function_name(text) {
        assert!(!name.is_empty() && !name.contains(':'), "name {name:?}");
        assert!(qualifier.is_none_or(|q| !q.contains(':')), "{qualifier:?}");
    }
    if let Ok(json) = parsers::client_context(data) {
        let value: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|err| panic!("client context {json:?} is not JSON: {err}"));
        assert!(
            value.is_object(),
            "client context {json:?} is not an object"
        );
    }
    if let Some(decoded) = parsers::base64_decode(text) {
        let encoded = parsers::base64_encode(&decoded);
        assert_eq!(parsers::base64_decode(&encoded), Some(decoded));
    }
    let encoded = parsers::base64_encode(data);
    assert_eq!(
        parsers::base64_decode(&encoded).as_deref(),
        Some(data),
        "base64 does not decode what it encodes"
    );
}

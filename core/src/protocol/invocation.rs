//! The JSON payload the proxy passes when it invokes a cache node, and the
//! JSON the node returns when the invocation ends.
//!
//! This travels through the Lambda Invoke API (6 MB payload limit, JSON by
//! convention), not over the binary protocol.

use serde::{Deserialize, Serialize};

/// Why the proxy invokes a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Invocation {
    /// Dial the proxy and serve chunk requests until idle.
    Serve(ServeArgs),
    /// Keep the environment warm: return at once, billed for one tick.
    Warmup { node_id: u32 },
    /// Become (or refresh) the node's backup: dial the proxy exactly as for
    /// `Serve` and let it relay the primary's delta into this environment.
    /// The proxy sends this while the primary is busy serving, so the
    /// provider places it on a second environment of the same function.
    Backup(ServeArgs),
}

/// Where and how a node serves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeArgs {
    /// The node's identity (the function `<prefix>-<node_id>`).
    pub node_id: u32,
    /// The proxy's node listener, as the node should dial it.
    pub proxy: String,
    /// A fresh random token for this invocation (hex); the proxy accepts the
    /// node's connection only with it.
    pub token: String,
    /// Return once no request arrived for this long (milliseconds).
    pub idle_timeout_ms: u64,
    /// The provider's billing granularity (milliseconds): the node returns just
    /// before a tick boundary, so that idle time past it is not billed.
    pub billing_tick_ms: u64,
}

impl std::fmt::Debug for ServeArgs {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("node_id", &self.node_id)
            .field("proxy", &self.proxy)
            .field("token", &"<redacted>")
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("billing_tick_ms", &self.billing_tick_ms)
            .finish()
    }
}

/// What a node reports when an invocation ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationSummary {
    pub node_id: u32,
    /// Random per process: changes when the provider replaced the environment.
    pub instance_id: u64,
    /// Requests answered in this invocation.
    pub served: u64,
    /// Chunk bytes held when returning.
    pub used: u64,
    /// Chunks held when returning.
    pub chunks: u64,
    /// Why the invocation ended (idle, deadline, proxy closed, warmup).
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_payload_is_tagged_json() {
        let invocation = Invocation::Serve(ServeArgs {
            node_id: 3,
            proxy: "127.0.0.1:6379".into(),
            token: "ab".into(),
            idle_timeout_ms: 100,
            billing_tick_ms: 1,
        });
        let json = serde_json::to_string(&invocation).expect("serialize");
        assert!(json.contains(r#""action":"serve""#), "{json}");
        let back: Invocation = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, invocation);
        assert!(
            !format!("{invocation:?}").contains("ab\""),
            "token leaked into Debug"
        );
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        for raw in [
            "",
            "{}",
            "[]",
            r#"{"action":"fly"}"#,
            r#"{"action":"serve"}"#,
            "\u{0}",
        ] {
            assert!(
                serde_json::from_str::<Invocation>(raw).is_err(),
                "{raw:?} parsed"
            );
        }
    }
}

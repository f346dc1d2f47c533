//! Identifiers in AWS's formats: request ids, X-Ray trace ids, function ARNs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Region reported in ARNs and the function's environment.
pub(crate) const REGION: &str = "us-east-1";
/// Account id of the local "AWS account" (AWS's documentation placeholder).
pub(crate) const ACCOUNT_ID: &str = "123456789012";

/// The unqualified ARN of a function.
pub(crate) fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

/// A random UUID (version 4 layout), as AWS request ids are.
pub(crate) fn request_id() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

/// An X-Ray trace header (`Root=1-<epoch hex>-<96 random bits>;...`).
pub(crate) fn trace_id() -> String {
    let mut rng = rand::rng();
    let epoch = unix_ms(SystemTime::now()) / 1000;
    let root: [u8; 12] = rng.random();
    let parent: [u8; 8] = rng.random();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=0",
        hex(&root),
        hex(&parent)
    )
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Deadline header value: now + timeout, in epoch milliseconds.
pub(crate) fn deadline_ms(timeout: Duration) -> u64 {
    unix_ms(SystemTime::now() + timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(
            id.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_ne!(id, request_id());
    }
}

//! The platform's pure parsers of Invoke API input, reachable from outside
//! the crate so that the fuzz targets (`fuzz/`) can run them; the HTTP
//! handlers are their only other callers.

/// Splits a `FunctionName` path segment (a name, `name:qualifier`, or a
/// full or partial ARN) into name and qualifier.
pub fn function_name(raw: &str) -> Option<(&str, Option<&str>)> {
    super::invoke_api::parse_function_name(raw)
}

/// The JSON object an `X-Amz-Client-Context` header (base64 JSON) hands
/// the runtime, or the message of the API error that refuses it.
pub fn client_context(raw: &[u8]) -> Result<String, String> {
    super::invoke_api::decode_client_context(raw).map_err(|err| err.message)
}

/// Standard base64, padding optional (client contexts).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    super::encoding::base64_decode(text)
}

/// Standard base64 with padding (log tails).
pub fn base64_encode(data: &[u8]) -> String {
    super::encoding::base64_encode(data)
}

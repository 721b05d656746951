//! Header hygiene of the HTTP connection manager stage: what a proxy must
//! strip between hops and the `x-request-id` it must add, applied to every
//! request before routing and to every response on the way back.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, TRANSFER_ENCODING, UPGRADE,
};
use rand::Rng;

/// `x-request-id`, added when the client sent none.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Milliseconds the upstream took to answer, as Envoy reports it.
pub static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");

/// Headers that describe one hop, never the message (RFC 9110 §7.6.1).
/// `Trailer` is not one: an HTTP/1.1 hop needs it to pass trailers on.
const HOP_BY_HOP: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// `x-envoy-attempt-count`.
pub static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
/// `x-envoy-expected-rq-timeout-ms`: how long the proxy waits for an
/// attempt's answer.
pub static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
/// `x-envoy-original-path`, the path before a rewrite.
pub static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
/// `x-forwarded-host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Remove hop-by-hop headers, including every header that `Connection`
/// names. `te: trailers` survives: gRPC needs it end to end.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    headers.remove(CONNECTION);
    headers.remove(TRANSFER_ENCODING);
    headers.remove(UPGRADE);
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let te_trailers = headers.get_all(TE).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    headers.remove(TE);
    if te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
}

/// Add a random (UUID v4 shaped) `x-request-id` unless there is one.
pub fn ensure_request_id(headers: &mut HeaderMap) {
    if headers.contains_key(&X_REQUEST_ID) {
        return;
    }
    set_request_id(headers);
}

/// Set `x-request-id` to a new random UUID v4.
pub fn set_request_id(headers: &mut HeaderMap) {
    let bits: u128 = rand::rng().random();
    // Version 4, variant 10xx, as RFC 9562 lays out.
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(TE, HeaderValue::from_static("gzip, trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert!(!headers.contains_key(CONNECTION));
        assert!(!headers.contains_key("keep-alive"));
        assert!(!headers.contains_key("x-secret"));
        assert_eq!(headers.get(TE).unwrap(), "trailers");
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn request_id_is_added_once() {
        let mut headers = HeaderMap::new();
        ensure_request_id(&mut headers);
        let id = headers
            .get(&X_REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        ensure_request_id(&mut headers);
        assert_eq!(headers.get(&X_REQUEST_ID).unwrap(), id.as_str());
    }
}

//! The CORS HTTP filter (`envoy.filters.http.cors`), with the route's or
//! virtual host's `CorsPolicy`: preflights from an allowed origin are
//! answered by the proxy; actual requests from an allowed origin get the
//! `access-control-*` response headers.

use http::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN};
use http::request::Parts;
use http::{Method, StatusCode};

use super::fault::sample;
use super::reply::LocalReply;
use super::router::value_matches;
use crate::model::CorsPolicy;

const ALLOW_ORIGIN: HeaderName = HeaderName::from_static("access-control-allow-origin");
const ALLOW_CREDENTIALS: HeaderName = HeaderName::from_static("access-control-allow-credentials");
const ALLOW_METHODS: HeaderName = HeaderName::from_static("access-control-allow-methods");
const ALLOW_HEADERS: HeaderName = HeaderName::from_static("access-control-allow-headers");
const EXPOSE_HEADERS: HeaderName = HeaderName::from_static("access-control-expose-headers");
const MAX_AGE: HeaderName = HeaderName::from_static("access-control-max-age");
const REQUEST_METHOD: HeaderName = HeaderName::from_static("access-control-request-method");
const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");
const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

/// What the filter does with one request.
#[derive(Debug)]
pub enum Cors {
    /// Nothing: no policy, not enabled, or not a CORS request.
    Pass,
    /// Answer the preflight directly.
    Preflight(LocalReply),
    /// Forward, and add these headers to the response.
    Response(HeaderMap),
}

/// Apply `policy` to a request.
pub fn decode(policy: Option<&CorsPolicy>, request: &Parts) -> Cors {
    let Some(policy) = policy else {
        return Cors::Pass;
    };
    // A shadow-only policy is evaluated for stats Envoy keeps and the
    // proxy does not: it has no effect on the request.
    if !sample(policy.enabled) {
        return Cors::Pass;
    }
    let Some(origin) = request.headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Cors::Pass;
    };
    let allowed = policy.allow_origin.iter().any(|m| value_matches(m, origin));
    let preflight = request.method == Method::OPTIONS
        && request
            .headers
            .get(&REQUEST_METHOD)
            .is_some_and(|m| !m.is_empty());
    if preflight {
        if !allowed {
            if policy.forward_not_matching_preflights {
                return Cors::Pass;
            }
            return Cors::Preflight(LocalReply::plain(StatusCode::OK, "", "cors_response"));
        }
        let mut reply = LocalReply::plain(StatusCode::OK, "", "cors_response");
        let h = &mut reply.headers;
        insert(h, ALLOW_ORIGIN, Some(origin));
        if policy.allow_credentials {
            insert(h, ALLOW_CREDENTIALS, Some("true"));
        }
        insert(h, ALLOW_METHODS, policy.allow_methods.as_deref());
        insert(h, ALLOW_HEADERS, policy.allow_headers.as_deref());
        insert(h, MAX_AGE, policy.max_age.as_deref());
        let private = request
            .headers
            .get(&REQUEST_PRIVATE_NETWORK)
            .is_some_and(|v| v == "true");
        if policy.allow_private_network_access && private {
            insert(h, ALLOW_PRIVATE_NETWORK, Some("true"));
        }
        return Cors::Preflight(reply);
    }
    if !allowed {
        return Cors::Pass;
    }
    let mut headers = HeaderMap::new();
    insert(&mut headers, ALLOW_ORIGIN, Some(origin));
    if policy.allow_credentials {
        insert(&mut headers, ALLOW_CREDENTIALS, Some("true"));
    }
    insert(
        &mut headers,
        EXPOSE_HEADERS,
        policy.expose_headers.as_deref(),
    );
    Cors::Response(headers)
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: Option<&str>) {
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(name, value);
    }
}

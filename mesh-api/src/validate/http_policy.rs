//! Per-object checks of the policies an HTTP route of a `VirtualService`
//! carries, with Istio's rules: header operations, the authority set once,
//! CORS, fault injection, mirrors, redirect, direct response, retries,
//! rewrite and timeout.
//!
//! Part of [`super`]; `virtual_service.rs` calls [`check`] for each route.

use super::values::{
    destination, duration, fault_percent, header_value, is_header_token, percent, port_number,
    regex_syntax, string_match, RegexUse,
};
use super::Ctx;
use crate::error::ErrorKind;
use crate::types::common::{HeaderOperations, Headers};
use crate::types::http_policy::{
    CorsPolicy, HttpDirectResponse, HttpFaultInjection, HttpRedirect, HttpRetry, HttpRewrite,
};
use crate::types::virtual_service::{HttpMatchRequest, HttpRoute};

/// Conditions `retryOn` may name besides HTTP status codes (Envoy's
/// `x-envoy-retry-on` and `x-envoy-retry-grpc-on` policies Istio accepts).
pub(crate) const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// The status codes Go's `net/http` names, which Istio takes as `retryOn`
/// entries.
const HTTP_STATUSES: [u16; 62] = [
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511,
];

/// gRPC status names an abort may answer with.
const GRPC_STATUSES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Methods CORS may allow.
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// A direct response body above this is refused, above a tenth of it
/// warned about (Istio's limits: it travels in every route config push).
const BODY_LIMIT: usize = 1024 * 1024;

/// Checks the policies of the HTTP route at `path`.
pub(super) fn check(ctx: &mut Ctx<'_>, path: &str, route: &HttpRoute) {
    if let Some(headers) = &route.headers {
        header_ops(ctx, &format!("{path}.headers"), headers);
    }
    authority_once(ctx, path, route);
    if let Some(cors) = &route.cors_policy {
        cors_policy(ctx, &format!("{path}.corsPolicy"), cors);
    }
    if let Some(fault) = &route.fault {
        http_fault(ctx, &format!("{path}.fault"), fault);
    }
    if let Some(mirror) = &route.mirror {
        destination(ctx, &format!("{path}.mirror"), mirror);
    }
    percent(
        ctx,
        &format!("{path}.mirrorPercentage"),
        route.mirror_percentage.as_ref(),
    );
    for (j, m) in route.mirrors.iter().enumerate() {
        let p = format!("{path}.mirrors[{j}]");
        destination(ctx, &format!("{p}.destination"), &m.destination);
        percent(ctx, &format!("{p}.percentage"), m.percentage.as_ref());
    }
    if let Some(redirect) = &route.redirect {
        http_redirect(ctx, &format!("{path}.redirect"), redirect, &route.matches);
    }
    if let Some(response) = &route.direct_response {
        direct_response(ctx, &format!("{path}.directResponse"), response);
    }
    if let Some(retries) = &route.retries {
        http_retry(ctx, &format!("{path}.retries"), retries);
    }
    if let Some(rewrite) = &route.rewrite {
        http_rewrite(ctx, &format!("{path}.rewrite"), rewrite);
    }
    duration(ctx, &format!("{path}.timeout"), route.timeout.as_ref());
}

/// Header operations: names are header tokens; request `set`/`add` may name
/// `:authority` (or `host`), nothing else may name a pseudo-header or
/// `host`; values are valid Envoy header values.
pub(super) fn header_ops(ctx: &mut Ctx<'_>, path: &str, headers: &Headers) {
    let sides: [(&str, &Option<HeaderOperations>); 2] = [
        ("request", &headers.request),
        ("response", &headers.response),
    ];
    for (side, ops) in sides {
        let Some(ops) = ops else { continue };
        let request = side == "request";
        for (op, map) in [("set", &ops.set), ("add", &ops.add)] {
            for (name, value) in map {
                let p = format!("{path}.{side}.{op}.{name}");
                header_op_name(ctx, &p, name, request);
                header_value(ctx, &p, value);
            }
        }
        for (i, name) in ops.remove.iter().enumerate() {
            header_op_name(ctx, &format!("{path}.{side}.remove[{i}]"), name, false);
        }
    }
}

fn header_op_name(ctx: &mut Ctx<'_>, path: &str, name: &str, authority_allowed: bool) {
    let authority = name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host");
    if name.is_empty() {
        ctx.invalid(path, "a header name cannot be empty");
    } else if authority && authority_allowed {
        // Setting the authority is a rewrite; `authority_once` checks it.
    } else if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        ctx.invalid(
            path,
            format!("{name:?} cannot be changed here: pseudo-headers and host are off limits (only request set/add may set :authority)"),
        );
    } else if !is_header_token(name) {
        ctx.invalid(path, format!("{name:?} is not a valid header name"));
    }
}

/// The authority may be rewritten in one place only: `rewrite.authority`
/// or a request `set`/`add` of `:authority` (or `host`).
fn authority_once(ctx: &mut Ctx<'_>, path: &str, route: &HttpRoute) {
    let mut places = Vec::new();
    if route
        .rewrite
        .as_ref()
        .is_some_and(|r| r.authority.is_some())
    {
        places.push(format!("{path}.rewrite.authority"));
    }
    if let Some(ops) = route.headers.as_ref().and_then(|h| h.request.as_ref()) {
        for (op, map) in [("set", &ops.set), ("add", &ops.add)] {
            for name in map.keys() {
                if name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host") {
                    places.push(format!("{path}.headers.request.{op}.{name}"));
                }
            }
        }
    }
    if let [first, second, ..] = places.as_slice() {
        ctx.invalid(
            second.clone(),
            format!("the authority is already rewritten by {first}; set it in one place only"),
        );
    }
}

fn cors_policy(ctx: &mut Ctx<'_>, path: &str, cors: &CorsPolicy) {
    for (j, origin) in cors.allow_origins.iter().enumerate() {
        let p = format!("{path}.allowOrigins[{j}]");
        if origin.exact.as_deref() == Some("") {
            ctx.invalid(format!("{p}.exact"), "an allowed origin cannot be empty");
        }
        string_match(ctx, &p, origin, false);
    }
    for (j, method) in cors.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&method.as_str()) {
            ctx.invalid(
                format!("{path}.allowMethods[{j}]"),
                format!("{method:?} is not an HTTP method (GET, POST, ... in upper case, or *)"),
            );
        }
    }
    for (field, names) in [
        ("allowHeaders", &cors.allow_headers),
        ("exposeHeaders", &cors.expose_headers),
    ] {
        for (j, name) in names.iter().enumerate() {
            if name != "*" && !is_header_token(name) {
                ctx.invalid(
                    format!("{path}.{field}[{j}]"),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
    }
    if let Some(max_age) = &cors.max_age {
        let p = format!("{path}.maxAge");
        duration(ctx, &p, Some(max_age));
        if max_age.0.subsec_nanos() != 0 && max_age.0 >= std::time::Duration::from_millis(1) {
            ctx.invalid(
                p,
                "maxAge is sent in whole seconds; write it without a fraction",
            );
        }
    }
}

fn http_fault(ctx: &mut Ctx<'_>, path: &str, f: &HttpFaultInjection) {
    if f.delay.is_none() && f.abort.is_none() {
        ctx.invalid(path, "fault injection needs a delay and/or an abort");
    }
    if let Some(delay) = &f.delay {
        let p = format!("{path}.delay");
        match (&delay.fixed_delay, &delay.exponential_delay) {
            (None, None) => ctx.missing(format!("{p}.fixedDelay")),
            (Some(_), Some(_)) => ctx.invalid(
                p.clone(),
                "only one of fixedDelay and exponentialDelay may be set",
            ),
            _ => {}
        }
        duration(ctx, &format!("{p}.fixedDelay"), delay.fixed_delay.as_ref());
        fault_percent(ctx, &format!("{p}.percentage"), delay.percentage.as_ref());
    }
    if let Some(abort) = &f.abort {
        let p = format!("{path}.abort");
        let kinds = [
            abort.http_status.is_some(),
            abort.grpc_status.is_some(),
            abort.http2_error.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => ctx.missing(format!("{p}.httpStatus")),
            1 => {}
            _ => ctx.invalid(
                p.clone(),
                "only one of httpStatus, grpcStatus and http2Error may be set",
            ),
        }
        if let Some(status) = abort.http_status.filter(|s| !(200..=599).contains(s)) {
            ctx.invalid(
                format!("{p}.httpStatus"),
                format!("HTTP status {status} is not in range 200..599"),
            );
        }
        if let Some(status) = abort
            .grpc_status
            .as_deref()
            .filter(|s| !GRPC_STATUSES.contains(s))
        {
            ctx.invalid(
                format!("{p}.grpcStatus"),
                format!("{status:?} is not a gRPC status name (e.g. UNAVAILABLE, NOT_FOUND)"),
            );
        }
        fault_percent(ctx, &format!("{p}.percentage"), abort.percentage.as_ref());
    }
}

fn http_redirect(ctx: &mut Ctx<'_>, path: &str, r: &HttpRedirect, matches: &[HttpMatchRequest]) {
    if r.uri.is_some() && r.prefix_rewrite.is_some() {
        ctx.invalid(path, "only one of uri and prefixRewrite may be set");
    } else if r.prefix_rewrite.is_some() {
        let not_prefix = matches
            .iter()
            .position(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_none()));
        if let Some(j) = not_prefix {
            ctx.invalid(
                format!("{path}.prefixRewrite"),
                format!("prefixRewrite needs every URI match to be a prefix match, and match[{j}].uri is not"),
            );
        }
    }
    let any = r.uri.is_some()
        || r.prefix_rewrite.is_some()
        || r.authority.is_some()
        || r.port.is_some()
        || r.derive_port.is_some()
        || r.scheme.is_some();
    if !any {
        ctx.invalid(
            path,
            "a redirect must set uri, prefixRewrite, authority, scheme, port or derivePort",
        );
    }
    // Istio takes any 3xx but programs only Envoy's five and drops the
    // route for the others; 0 means 301.
    if let Some(code) = r
        .redirect_code
        .filter(|c| ![0, 301, 302, 303, 307, 308].contains(c))
    {
        ctx.invalid(
            format!("{path}.redirectCode"),
            format!("{code} is not a redirect code the proxy sends (301, 302, 303, 307 or 308)"),
        );
    }
    if let Some(scheme) = r
        .scheme
        .as_deref()
        .filter(|s| *s != "http" && *s != "https")
    {
        ctx.invalid(
            format!("{path}.scheme"),
            format!("{scheme:?} is not http or https"),
        );
    }
    if let Some(port) = r.port {
        port_number(ctx, &format!("{path}.port"), port);
        if r.derive_port.is_some() {
            ctx.invalid(path, "only one of port and derivePort may be set");
        }
    }
}

fn direct_response(ctx: &mut Ctx<'_>, path: &str, response: &HttpDirectResponse) {
    if !(200..=599).contains(&response.status) {
        ctx.invalid(
            format!("{path}.status"),
            format!("HTTP status {} is not in range 200..599", response.status),
        );
    }
    let Some(body) = &response.body else { return };
    let p = format!("{path}.body");
    if body.string.is_some() && body.bytes.is_some() {
        ctx.invalid(p.clone(), "only one of string and bytes may be set");
    }
    if let Some(bytes) = body.bytes.as_deref().filter(|b| !is_base64(b)) {
        ctx.invalid(
            format!("{p}.bytes"),
            format!("bytes must be base64 ({} characters given)", bytes.len()),
        );
    }
    let size = body
        .string
        .as_ref()
        .map(String::len)
        .or(body.bytes.as_ref().map(|b| b.len() / 4 * 3))
        .unwrap_or(0);
    if size > BODY_LIMIT {
        ctx.invalid(
            p,
            format!("the body is {size} bytes; a direct response body must be under 1MB"),
        );
    } else if size > BODY_LIMIT / 10 {
        ctx.warn(
            ErrorKind::Ineffective,
            p,
            format!("the body is {size} bytes; large direct responses slow every config push"),
        );
    }
}

/// Standard or URL-safe base64, padded or not.
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len() - body.len() <= 2
        && body.len() % 4 != 1
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b))
}

fn http_retry(ctx: &mut Ctx<'_>, path: &str, r: &HttpRetry) {
    if r.attempts < 0 {
        ctx.invalid(format!("{path}.attempts"), "attempts cannot be negative");
    }
    let configured =
        r.per_try_timeout.is_some() || r.retry_on.is_some() || r.retry_remote_localities.is_some();
    if r.attempts == 0 && configured {
        ctx.invalid(
            format!("{path}.attempts"),
            "attempts is 0 (retries disabled), yet perTryTimeout, retryOn or retryRemoteLocalities is set",
        );
    }
    duration(
        ctx,
        &format!("{path}.perTryTimeout"),
        r.per_try_timeout.as_ref(),
    );
    if let Some(retry_on) = &r.retry_on {
        for token in retry_on.split(',') {
            let known = RETRY_ON.contains(&token)
                || token
                    .parse::<u16>()
                    .is_ok_and(|code| HTTP_STATUSES.contains(&code));
            if !known {
                ctx.invalid(
                    format!("{path}.retryOn"),
                    format!("{token:?} is not a retryOn condition (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, http3-post-connect-failure, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, or an HTTP status code; comma-separated, no spaces)"),
                );
            }
        }
    }
    duration(ctx, &format!("{path}.backoff"), r.backoff.as_ref());
}

fn http_rewrite(ctx: &mut Ctx<'_>, path: &str, r: &HttpRewrite) {
    if r.uri.is_none() && r.authority.is_none() && r.uri_regex_rewrite.is_none() {
        ctx.invalid(path, "a rewrite must set uri, authority or uriRegexRewrite");
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        if r.uri.is_some() {
            ctx.invalid(path, "only one of uri and uriRegexRewrite may be set");
        }
        let p = format!("{path}.uriRegexRewrite");
        if rr.rewrite.is_empty() {
            ctx.missing(format!("{p}.rewrite"));
        }
        regex_syntax(ctx, &format!("{p}.match"), &rr.pattern, RegexUse::Rewrite);
    }
}

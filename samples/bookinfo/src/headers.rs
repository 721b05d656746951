//! Context propagation: the headers every service copies from the request it
//! received to the calls it makes, so that the sidecars can join the hops
//! into one trace and route on `end-user`. The list is the original sample's.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// The name of the header (and of productpage's cookie) carrying the
/// signed-in user, which routes such as "reviews v2 for jason" match on.
pub const END_USER: &str = "end-user";

/// Headers copied verbatim from the incoming request to outgoing calls.
pub const PROPAGATED: &[&str] = &[
    // Istio's request id: access logs and consistent sampling.
    "x-request-id",
    // Lightstep.
    "x-ot-span-context",
    // Datadog.
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    // W3C Trace Context.
    "traceparent",
    "tracestate",
    // Google Cloud Trace and gRPC binary context.
    "x-cloud-trace-context",
    "grpc-trace-bin",
    // Zipkin B3, multi-header and single-header forms.
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    // SkyWalking.
    "sw8",
    // Application context: who is asking, and with which client.
    END_USER,
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// The headers of `incoming` to send on an outgoing call.
///
/// `end_user`, when given, replaces any incoming `end-user` header:
/// productpage knows the user from its own cookie, which is the source the
/// original trusts.
pub fn forward(incoming: &HeaderMap, end_user: Option<&str>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        // `get_all` keeps repeated headers (e.g. two `tracestate` lines).
        for value in incoming.get_all(*name) {
            out.append(HeaderName::from_static(name), value.clone());
        }
    }
    if let Some(user) = end_user {
        match HeaderValue::from_str(user) {
            Ok(value) => {
                out.insert(HeaderName::from_static(END_USER), value);
            }
            Err(_) => tracing::debug!("end-user {user:?} is not a valid header value"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_the_propagated_headers() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-request-id", HeaderValue::from_static("req-1"));
        incoming.insert("b3", HeaderValue::from_static("80f198ee-e457-1"));
        incoming.append("tracestate", HeaderValue::from_static("a=1"));
        incoming.append("tracestate", HeaderValue::from_static("b=2"));
        incoming.insert("host", HeaderValue::from_static("productpage:9080"));
        incoming.insert("content-length", HeaderValue::from_static("0"));

        let out = forward(&incoming, None);

        assert_eq!(out["x-request-id"], "req-1");
        assert_eq!(out["b3"], "80f198ee-e457-1");
        let states: Vec<_> = out.get_all("tracestate").iter().collect();
        assert_eq!(states, ["a=1", "b=2"]);
        assert!(out.get("host").is_none());
        assert!(out.get("content-length").is_none());
    }

    #[test]
    fn end_user_from_the_cookie_wins_over_the_header() {
        let mut incoming = HeaderMap::new();
        incoming.insert(END_USER, HeaderValue::from_static("mallory"));
        let out = forward(&incoming, Some("jason"));
        let users: Vec<_> = out.get_all(END_USER).iter().collect();
        assert_eq!(users, ["jason"]);
    }

    #[test]
    fn incoming_end_user_is_kept_without_a_cookie() {
        let mut incoming = HeaderMap::new();
        incoming.insert(END_USER, HeaderValue::from_static("jason"));
        assert_eq!(forward(&incoming, None)[END_USER], "jason");
    }

    #[test]
    fn an_unsendable_end_user_is_dropped() {
        let out = forward(&HeaderMap::new(), Some("bad\nname"));
        assert!(out.get(END_USER).is_none());
    }
}

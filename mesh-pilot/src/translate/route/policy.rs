//! The policies an HTTP route carries besides where it goes, each turned
//! into its Envoy form as Istio does: retries (`retry_policy`), faults and
//! CORS (per-route configs of the `fault` and `cors` HTTP filters),
//! mirrors (`request_mirror_policies`), consistent-hash keys
//! (`hash_policy`) and header operations.
//!
//! ```text
//!  HttpRoute.retries ─► retry_policy     HttpRoute.fault ─► fault (HTTPFault)
//!  HttpRoute.mirror* ─► mirror_percent   HttpRoute.corsPolicy ─► cors (CorsPolicy)
//!  Headers           ─► HeaderOps        DestinationRule consistentHash ─► hash_policy
//! ```

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
    RuntimeFractionalPercent,
};
use envoy_types::pb::envoy::config::route::v3::{
    retry_policy::{self, RetryBackOff},
    route_action::{hash_policy, HashPolicy, RequestMirrorPolicy},
    RetryPolicy,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{fault_delay, FaultDelay};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as EnvoyCors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use mesh_api::types::http_policy::{
    CorsPolicy, HttpFaultInjection, HttpRetry, UnmatchedPreflights,
};
use mesh_api::types::load_balancer::ConsistentHashLb;
use mesh_api::{HeaderOperations, Headers, Percent};

use super::matching::string_matcher;
use crate::translate::filters::{duration, typed_config};

/// What Istio retries when a route sets no policy.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
/// What an inbound route retries: only requests the app never saw.
pub const INBOUND_RETRY_ON: &str = "reset-before-request";
/// Retries of Istio's default policy.
const DEFAULT_RETRIES: u32 = 2;

/// The retry policy of a route: `retries` as given, else Istio's default
/// (`default` is the mesh's `defaultHttpRetryPolicy`, if set). `None`
/// when the route turns retries off (`attempts: 0`). With a consistent
/// hash the policy keeps to the same host (no `previous_hosts`).
pub fn retry_policy(
    retries: Option<&HttpRetry>,
    default: Option<&HttpRetry>,
    hashed: bool,
) -> Option<RetryPolicy> {
    let previous_hosts = || {
        vec![retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".to_string(),
            config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
                typed_config(&PreviousHostsPredicate::default()),
            )),
        }]
    };
    let mut out = RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_string(),
        num_retries: Some(UInt32Value {
            value: DEFAULT_RETRIES,
        }),
        host_selection_retry_max_attempts: 5,
        retry_host_predicate: if hashed { Vec::new() } else { previous_hosts() },
        ..Default::default()
    };
    let Some(r) = retries.or(default) else {
        return Some(out);
    };
    if r.attempts <= 0 {
        return None;
    }
    out.num_retries = Some(UInt32Value {
        value: r.attempts as u32,
    });
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.is_empty()) {
        let (conditions, codes) = parse_retry_on(on);
        out.retry_on = conditions;
        out.retriable_status_codes = codes;
    }
    out.per_try_timeout = r.per_try_timeout.map(|d| duration(d.0));
    if let Some(ignore) = r.retry_ignore_previous_hosts {
        out.retry_host_predicate = if ignore { previous_hosts() } else { Vec::new() };
    }
    out.retry_back_off = r.backoff.map(|d| RetryBackOff {
        base_interval: Some(duration(d.0)),
        ..Default::default()
    });
    Some(out)
}

/// The retry policy of an inbound route (to the sidecar's own app).
pub fn inbound_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: INBOUND_RETRY_ON.to_string(),
        num_retries: Some(UInt32Value {
            value: DEFAULT_RETRIES,
        }),
        ..Default::default()
    }
}

/// `retryOn` split into Envoy's conditions and status codes; numbers are
/// status codes, and `retriable-status-codes` is added when there are any.
fn parse_retry_on(on: &str) -> (String, Vec<u32>) {
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    for part in on.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(code) => codes.push(code),
            Err(_) => conditions.push(part.to_string()),
        }
    }
    if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
        conditions.push("retriable-status-codes".to_string());
    }
    (conditions.join(","), codes)
}

/// A percentage as Envoy's fraction of a million (`50.5` -> 505000).
pub fn percent(p: &Percent) -> FractionalPercent {
    FractionalPercent {
        numerator: (p.value * 10_000.0).round() as u32,
        denominator: DenominatorType::Million as i32,
    }
}

fn hundredths(p: i32) -> FractionalPercent {
    FractionalPercent {
        numerator: p.max(0) as u32,
        denominator: DenominatorType::Hundred as i32,
    }
}

/// The per-route config of the fault filter, `None` when nothing is left
/// to inject.
pub fn fault(f: &HttpFaultInjection) -> Option<HttpFault> {
    let delay = f.delay.as_ref().and_then(|d| {
        let fixed = d.fixed_delay?;
        Some(FaultDelay {
            percentage: Some(match &d.percentage {
                Some(p) => percent(p),
                None => hundredths(d.percent.unwrap_or(0)),
            }),
            fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(duration(
                fixed.0,
            ))),
        })
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let error_type = match (a.http_status, a.grpc_status.as_deref()) {
            (Some(status), _) => fault_abort::ErrorType::HttpStatus(status as u32),
            (None, Some(name)) => fault_abort::ErrorType::GrpcStatus(grpc_code(name)?),
            _ => return None,
        };
        Some(FaultAbort {
            percentage: a.percentage.as_ref().map(percent),
            error_type: Some(error_type),
            ..Default::default()
        })
    });
    if delay.is_none() && abort.is_none() {
        return None;
    }
    Some(HttpFault {
        delay,
        abort,
        ..Default::default()
    })
}

/// A gRPC status name (`UNAVAILABLE`) or number as its code.
pub fn grpc_code(name: &str) -> Option<u32> {
    const CODES: [&str; 17] = [
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
    if let Ok(n) = name.parse::<u32>() {
        return (n < CODES.len() as u32).then_some(n);
    }
    CODES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// The per-route config of the CORS filter.
pub fn cors(c: &CorsPolicy) -> EnvoyCors {
    let origins = if !c.allow_origins.is_empty() {
        c.allow_origins.iter().filter_map(string_matcher).collect()
    } else {
        c.allow_origin
            .iter()
            .map(|o| envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher {
                match_pattern: Some(
                    envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern::Exact(
                        o.clone(),
                    ),
                ),
                ..Default::default()
            })
            .collect()
    };
    EnvoyCors {
        allow_origin_string_match: origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .map(|d| d.0.as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: c.allow_credentials.map(|value| BoolValue { value }),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(hundredths(100)),
            ..Default::default()
        }),
        forward_not_matching_preflights: Some(BoolValue {
            value: c.unmatched_preflights != Some(UnmatchedPreflights::Ignore),
        }),
        ..Default::default()
    }
}

/// A mirror to `cluster` of `fraction` of the requests.
pub fn mirror(cluster: String, fraction: FractionalPercent) -> RequestMirrorPolicy {
    RequestMirrorPolicy {
        cluster,
        runtime_fraction: Some(RuntimeFractionalPercent {
            default_value: Some(fraction),
            ..Default::default()
        }),
        trace_sampled: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// The share of `mirror` requests mirrored: `mirrorPercentage`, else the
/// old integer `mirrorPercent`, else all; `None` for an explicit zero.
pub fn mirror_fraction(
    percentage: Option<&Percent>,
    old_percent: Option<u32>,
) -> Option<FractionalPercent> {
    match (percentage, old_percent) {
        (Some(p), _) => (p.value > 0.0).then(|| percent(p)),
        (None, Some(p)) => (p > 0).then(|| hundredths(p as i32)),
        (None, None) => Some(hundredths(100)),
    }
}

/// The route's hash key from a DestinationRule's `consistentHash`.
pub fn hash_policy(h: &ConsistentHashLb) -> Option<HashPolicy> {
    let specifier = if let Some(name) = &h.http_header_name {
        hash_policy::PolicySpecifier::Header(hash_policy::Header {
            header_name: name.clone(),
            ..Default::default()
        })
    } else if let Some(cookie) = &h.http_cookie {
        hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
            name: cookie.name.clone(),
            path: cookie.path.clone().unwrap_or_default(),
            ttl: cookie.ttl.map(|d| duration(d.0)),
            attributes: cookie
                .attributes
                .iter()
                .map(|a| hash_policy::CookieAttribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                })
                .collect(),
        })
    } else if h.use_source_ip == Some(true) {
        hash_policy::PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
            source_ip: true,
        })
    } else if let Some(name) = &h.http_query_parameter_name {
        hash_policy::PolicySpecifier::QueryParameter(hash_policy::QueryParameter {
            name: name.clone(),
        })
    } else {
        return None;
    };
    Some(HashPolicy {
        policy_specifier: Some(specifier),
        ..Default::default()
    })
}

/// Header changes in Envoy's terms, and the authority a `set`/`add` of
/// `:authority` or `host` asks for (Envoy takes that as a host rewrite).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HeaderOps {
    /// `request_headers_to_add`.
    pub request_add: Vec<HeaderValueOption>,
    /// `request_headers_to_remove`.
    pub request_remove: Vec<String>,
    /// `response_headers_to_add`.
    pub response_add: Vec<HeaderValueOption>,
    /// `response_headers_to_remove`.
    pub response_remove: Vec<String>,
    /// The authority to rewrite to.
    pub authority: Option<String>,
}

impl HeaderOps {
    /// The operations of an Istio `headers` block.
    pub fn of(h: &Headers) -> HeaderOps {
        let (req_set, set_authority) = options(h.request.as_ref().map(|o| &o.set), false);
        let (req_add, add_authority) = options(h.request.as_ref().map(|o| &o.add), true);
        let (resp_set, _) = options(h.response.as_ref().map(|o| &o.set), false);
        let (resp_add, _) = options(h.response.as_ref().map(|o| &o.add), true);
        HeaderOps {
            request_add: req_set.into_iter().chain(req_add).collect(),
            request_remove: removals(h.request.as_ref()),
            response_add: resp_set.into_iter().chain(resp_add).collect(),
            response_remove: removals(h.response.as_ref()),
            authority: set_authority.or(add_authority),
        }
    }
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

/// Pseudo-headers and `host` cannot be set or removed as headers.
fn is_internal(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

fn options(
    headers: Option<&std::collections::BTreeMap<String, String>>,
    append: bool,
) -> (Vec<HeaderValueOption>, Option<String>) {
    let mut authority = None;
    let mut out = Vec::new();
    for (name, value) in headers.into_iter().flatten() {
        if is_authority(name) {
            authority = Some(value.clone());
        }
        if is_internal(name) {
            continue;
        }
        out.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: name.clone(),
                value: value.clone(),
                ..Default::default()
            }),
            append_action: if append {
                HeaderAppendAction::AppendIfExistsOrAdd
            } else {
                HeaderAppendAction::OverwriteIfExistsOrAdd
            } as i32,
            ..Default::default()
        });
    }
    (out, authority)
}

fn removals(ops: Option<&HeaderOperations>) -> Vec<String> {
    ops.map(|o| {
        o.remove
            .iter()
            .filter(|n| !is_internal(n))
            .cloned()
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_takes_status_codes_as_istio_does() {
        let (on, codes) = parse_retry_on("5xx, 503,gateway-error,429");
        assert_eq!(on, "5xx,gateway-error,retriable-status-codes");
        assert_eq!(codes, [503, 429]);
        let (on, codes) = parse_retry_on("connect-failure");
        assert_eq!((on.as_str(), codes.len()), ("connect-failure", 0));
    }

    #[test]
    fn retries_default_off_and_given() {
        let default = retry_policy(None, None, false).unwrap();
        assert_eq!(default.retry_on, DEFAULT_RETRY_ON);
        assert_eq!(default.num_retries.unwrap().value, 2);
        assert_eq!(default.retry_host_predicate.len(), 1);
        assert!(retry_policy(None, None, true)
            .unwrap()
            .retry_host_predicate
            .is_empty());
        let off = HttpRetry {
            attempts: 0,
            ..Default::default()
        };
        assert!(retry_policy(Some(&off), None, false).is_none());
        let three = HttpRetry {
            attempts: 3,
            retry_on: Some("5xx".into()),
            per_try_timeout: Some(mesh_api::Duration::parse("2s").unwrap()),
            ..Default::default()
        };
        let p = retry_policy(Some(&three), None, false).unwrap();
        assert_eq!(p.num_retries.unwrap().value, 3);
        assert_eq!(p.retry_on, "5xx");
        assert_eq!(p.per_try_timeout.unwrap().seconds, 2);
    }

    #[test]
    fn percentages_and_grpc_codes() {
        assert_eq!(percent(&Percent { value: 50.0 }).numerator, 500_000);
        assert_eq!(percent(&Percent { value: 0.1 }).numerator, 1_000);
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("14"), Some(14));
        assert_eq!(grpc_code("NOPE"), None);
        assert_eq!(mirror_fraction(None, None).unwrap().numerator, 100);
        assert!(mirror_fraction(Some(&Percent { value: 0.0 }), None).is_none());
        assert_eq!(mirror_fraction(None, Some(25)).unwrap().numerator, 25);
    }

    #[test]
    fn header_operations_keep_authority_out_of_the_headers() {
        let h: Headers = serde_yaml::from_str(
            "request: {set: {x-a: '1', ':authority': new.example.com}, add: {x-b: '2'}, remove: [x-c, host]}\nresponse: {set: {x-d: '4'}}",
        )
        .unwrap();
        let ops = HeaderOps::of(&h);
        let keys: Vec<&str> = ops
            .request_add
            .iter()
            .map(|o| o.header.as_ref().unwrap().key.as_str())
            .collect();
        assert_eq!(keys, ["x-a", "x-b"]);
        assert_eq!(ops.authority.as_deref(), Some("new.example.com"));
        assert_eq!(ops.request_remove, ["x-c"]);
        assert_eq!(ops.response_add.len(), 1);
    }
}

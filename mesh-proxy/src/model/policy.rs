//! Route policies of the model, as the HCM and router stages read them:
//! header mutations, retries, mirrors, hashing, redirects, and the per-route
//! settings of the fault and CORS filters.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::format::Template;
use super::matcher::{HeaderMatchKind, HeaderMatcher, RegexRewrite};

/// Header mutations at one level (route config, virtual host, route or
/// weighted cluster).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeaderMutations {
    /// Added to the request sent upstream.
    pub request_add: Vec<HeaderAdd>,
    /// Removed from the request sent upstream (lower case).
    pub request_remove: Vec<String>,
    /// Added to the response sent downstream.
    pub response_add: Vec<HeaderAdd>,
    /// Removed from the response sent downstream (lower case).
    pub response_remove: Vec<String>,
}

impl HeaderMutations {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }
}

/// One header to add (`HeaderValueOption`).
#[derive(Debug, Clone, Serialize)]
pub struct HeaderAdd {
    /// Lower-case header name.
    pub name: String,
    /// The value, with Envoy's `%OPERATOR%` substitutions.
    pub value: Template,
    /// What to do when the header is there already.
    pub action: AppendAction,
    /// Add the header even when its value renders empty.
    pub keep_empty_value: bool,
}

/// Envoy's `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AppendAction {
    /// Append a value (add the header when absent).
    AppendIfExistsOrAdd,
    /// Add only when absent.
    AddIfAbsent,
    /// Replace every value (add the header when absent).
    OverwriteIfExistsOrAdd,
    /// Replace every value, only when present.
    OverwriteIfExists,
}

/// A fraction of requests: `numerator` out of `denominator` (100, 10 000
/// or 1 000 000, Envoy's `FractionalPercent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fraction {
    /// How many.
    pub numerator: u32,
    /// Out of how many.
    pub denominator: u32,
}

impl Fraction {
    /// Every request.
    pub const ALL: Fraction = Fraction {
        numerator: 100,
        denominator: 100,
    };
}

/// Envoy's `RetryPolicy` of a route or virtual host.
#[derive(Debug, Clone, Serialize)]
pub struct RetryPolicy {
    /// The conditions retried (`retry_on`).
    pub on: RetryOn,
    /// Most retries after the first attempt (Envoy default 1).
    pub num_retries: u32,
    /// Limit of each attempt.
    pub per_try_timeout: Option<Duration>,
    /// Limit of each attempt's silence.
    pub per_try_idle_timeout: Option<Duration>,
    /// Statuses retried with `retriable-status-codes`.
    pub retriable_status_codes: Vec<u16>,
    /// Response headers that make an attempt retriable (`retriable-headers`).
    pub retriable_headers: Vec<HeaderMatcher>,
    /// Only requests matching one of these are retried (when not empty).
    pub retriable_request_headers: Vec<HeaderMatcher>,
    /// `envoy.retry_host_predicates.previous_hosts`: avoid endpoints
    /// already tried.
    pub previous_hosts: bool,
    /// How many times a host is picked again when the predicate rejects it.
    pub host_selection_max_attempts: u32,
    /// Backoff base (Envoy default 25 ms).
    pub backoff_base: Duration,
    /// Backoff cap (Envoy default 10 × base).
    pub backoff_max: Duration,
}

/// The `retry_on` conditions, one flag each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetryOn {
    /// `5xx`: any 5xx, reset, connect failure or per-try timeout.
    pub server_error: bool,
    /// `gateway-error`: 502, 503, 504, reset, connect failure, timeout.
    pub gateway_error: bool,
    /// `reset`: no answer at all (reset, disconnect, per-try timeout).
    pub reset: bool,
    /// `reset-before-request`: reset before the request was sent.
    pub reset_before_request: bool,
    /// `connect-failure`.
    pub connect_failure: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `refused-stream`: HTTP/2 REFUSED_STREAM.
    pub refused_stream: bool,
    /// `retriable-status-codes`.
    pub retriable_status_codes: bool,
    /// `retriable-headers`.
    pub retriable_headers: bool,
    /// `envoy-ratelimited`: `x-envoy-ratelimited` in the response.
    pub envoy_ratelimited: bool,
    /// `http3-post-connect-failure` (only HTTP/3 upstreams, which the
    /// proxy never dials, can fail so).
    pub http3_post_connect_failure: bool,
    /// gRPC `cancelled` (1).
    pub grpc_cancelled: bool,
    /// gRPC `deadline-exceeded` (4).
    pub grpc_deadline_exceeded: bool,
    /// gRPC `resource-exhausted` (8).
    pub grpc_resource_exhausted: bool,
    /// gRPC `internal` (13).
    pub grpc_internal: bool,
    /// gRPC `unavailable` (14).
    pub grpc_unavailable: bool,
}

/// A `request_mirror_policies` entry.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorPolicy {
    /// Cluster the copies go to.
    pub cluster: String,
    /// Share of requests copied.
    pub fraction: Fraction,
    /// Keep the authority as it is instead of appending `-shadow`.
    pub disable_shadow_host_suffix_append: bool,
}

/// One `hash_policy` entry.
#[derive(Debug, Clone, Serialize)]
pub struct HashPolicy {
    /// What is hashed.
    pub kind: HashKind,
    /// Stop at this policy when it produced a hash.
    pub terminal: bool,
}

/// The input of one hash policy.
#[derive(Debug, Clone, Serialize)]
pub enum HashKind {
    /// A request header's value (lower-case name).
    Header(String),
    /// A cookie; with a `ttl`, one is generated and set when absent.
    Cookie {
        /// Cookie name.
        name: String,
        /// Lifetime of a generated cookie (`Max-Age`); none: never generated.
        ttl: Option<Duration>,
        /// `Path` of a generated cookie.
        path: Option<String>,
        /// Further attributes of a generated cookie, `name[=value]`.
        attributes: Vec<(String, String)>,
    },
    /// The downstream address.
    SourceIp,
    /// A query parameter's value.
    QueryParameter(String),
}

/// A redirect answer (`RedirectAction`).
#[derive(Debug, Clone, Serialize)]
pub struct Redirect {
    /// New scheme (`https_redirect` gives `https`).
    pub scheme: Option<String>,
    /// New host.
    pub host: Option<String>,
    /// New port.
    pub port: Option<u16>,
    /// New path.
    pub path: Option<RedirectPath>,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// Drop the query string.
    pub strip_query: bool,
}

/// How a redirect changes the path.
#[derive(Debug, Clone, Serialize)]
pub enum RedirectPath {
    /// Replace the whole path (and the query, when it has one).
    Path(String),
    /// Replace the matched prefix.
    Prefix(String),
    /// Rewrite with a regex.
    Regex(RegexRewrite),
}

/// Per-filter settings of a route or virtual host
/// (`typed_per_filter_config`), for the filters the proxy has.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterOverrides {
    /// `envoy.filters.http.fault`: replaces the filter's own config.
    pub fault: Option<Arc<FaultConfig>>,
    /// `envoy.filters.http.cors`.
    pub cors: Option<Arc<CorsPolicy>>,
}

/// `envoy.extensions.filters.http.fault.v3.HTTPFault`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultConfig {
    /// Delay some requests.
    pub delay: Option<FaultDelay>,
    /// Abort some requests.
    pub abort: Option<FaultAbort>,
    /// Only requests matching all of these are faulted.
    pub headers: Vec<HeaderMatcher>,
    /// At most this many faults in effect at once.
    pub max_active_faults: Option<u32>,
    /// Faults of this config in effect now (runtime state, shared by every
    /// request that uses the config).
    #[serde(skip)]
    pub active: Arc<std::sync::atomic::AtomicU32>,
}

/// A fixed delay for a share of requests.
#[derive(Debug, Clone, Serialize)]
pub struct FaultDelay {
    /// How long.
    pub delay: Duration,
    /// Which share.
    pub percentage: Fraction,
}

/// An abort for a share of requests.
#[derive(Debug, Clone, Serialize)]
pub struct FaultAbort {
    /// The answer.
    pub status: AbortStatus,
    /// Which share.
    pub percentage: Fraction,
}

/// What an aborted request is answered with.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum AbortStatus {
    /// An HTTP status.
    Http(u16),
    /// A gRPC status (HTTP 200, trailers-only).
    Grpc(u32),
}

/// `envoy.extensions.filters.http.cors.v3.CorsPolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct CorsPolicy {
    /// Origins allowed (any matcher).
    pub allow_origin: Vec<HeaderMatchKind>,
    /// `access-control-allow-methods`.
    pub allow_methods: Option<String>,
    /// `access-control-allow-headers`.
    pub allow_headers: Option<String>,
    /// `access-control-expose-headers`.
    pub expose_headers: Option<String>,
    /// `access-control-max-age`.
    pub max_age: Option<String>,
    /// `access-control-allow-credentials: true`.
    pub allow_credentials: bool,
    /// Share of requests the policy is enforced on (`filter_enabled`).
    pub enabled: Fraction,
    /// Share of requests the policy is evaluated on without effect
    /// (`shadow_enabled`); the proxy keeps no stats for it.
    pub shadow: Option<Fraction>,
    /// Answer `access-control-request-private-network` preflights.
    pub allow_private_network_access: bool,
    /// Forward preflights whose origin does not match (Envoy default true).
    pub forward_not_matching_preflights: bool,
}

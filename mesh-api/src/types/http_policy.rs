//! Policies an HTTP route of a `VirtualService` can carry besides its
//! destinations: redirect, direct response, rewrite, retries, fault
//! injection, mirroring and CORS.
//!
//! Loaded and validated in mesh-api, turned into route actions and HTTP
//! filters by pilot's translator.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Destination, Duration, Percent, StringMatch};

/// Answer the request with a redirect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRedirect {
    /// Replace the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Replace the matched prefix of the path (every URI match of the route
    /// must then be a prefix match); not with `uri`.
    #[serde(
        alias = "prefix_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prefix_rewrite: Option<String>,
    /// Replace the authority (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Replace the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Derive the port instead of setting it.
    #[serde(
        alias = "derive_port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub derive_port: Option<RedirectPortSelection>,
    /// Replace the scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Status code; 301 by default.
    #[serde(
        alias = "redirect_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_code: Option<u32>,
}

/// How a redirect picks its port when `derivePort` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https.
    FromProtocolDefault,
    /// The port of the request.
    FromRequestPort,
}

/// Answer the request with a fixed status and body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpDirectResponse {
    /// HTTP status code. Required.
    #[serde(default)]
    pub status: u32,
    /// Response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<HttpBody>,
}

/// A response body: `string` or base64 `bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpBody {
    /// Body as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// Body as base64-encoded bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

/// Rewrite of the request before forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRewrite {
    /// Replace the matched part of the path (prefix) or the whole path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Replace the authority (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Regex-based path rewrite.
    #[serde(
        alias = "uri_regex_rewrite",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// Replace what a regex matches in the path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegexRewrite {
    /// RE2 regex. YAML key `match`.
    #[serde(rename = "match", default)]
    pub pattern: String,
    /// Replacement, with `\1`-style group references.
    #[serde(default)]
    pub rewrite: String,
}

/// Retry policy of a route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRetry {
    /// Number of retries.
    #[serde(default)]
    pub attempts: i32,
    /// Timeout of each attempt.
    #[serde(
        alias = "per_try_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub per_try_timeout: Option<Duration>,
    /// Conditions, comma-separated (`5xx,gateway-error,connect-failure`).
    #[serde(alias = "retry_on", default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    /// Retry to other localities.
    #[serde(
        alias = "retry_remote_localities",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_remote_localities: Option<bool>,
    /// Avoid hosts already tried when retrying.
    #[serde(
        alias = "retry_ignore_previous_hosts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base interval between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

/// Faults injected into requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFaultInjection {
    /// Delay before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Abort with an error instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

/// Delay fault.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    /// Fixed delay.
    #[serde(
        alias = "fixed_delay",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fixed_delay: Option<Duration>,
    /// Exponential delay (Istio rejects it as not supported yet; so does the
    /// mesh, see [`crate::validate`]'s unsupported list).
    #[serde(
        alias = "exponential_delay",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exponential_delay: Option<Duration>,
    /// Share of requests delayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
    /// Deprecated integer form of `percentage`; rewritten by
    /// [`crate::normalize`], so never set on a loaded object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
}

/// Abort fault.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    /// HTTP status to answer with.
    #[serde(
        alias = "http_status",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_status: Option<i32>,
    /// gRPC status name to answer with.
    #[serde(
        alias = "grpc_status",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_status: Option<String>,
    /// HTTP/2 error to reset the stream with.
    #[serde(
        alias = "http2_error",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http2_error: Option<String>,
    /// Share of requests aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
    /// Deprecated (Istio 1.0-1.4) integer form of `percentage`; rewritten by
    /// [`crate::normalize`], so never set on a loaded object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
}

/// One mirror destination with its share of traffic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpMirrorPolicy {
    /// Where the copy goes. Required.
    #[serde(default)]
    pub destination: Destination,
    /// Share of traffic mirrored; 100% when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// Cross-origin resource sharing policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Allowed origins.
    #[serde(
        alias = "allow_origins",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated list of exact allowed origins; rewritten by
    /// [`crate::normalize`] into `allowOrigins` (`exact`), so never set on a
    /// loaded object.
    #[serde(alias = "allow_origin", default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origin: Vec<String>,
    /// `Access-Control-Allow-Methods`.
    #[serde(
        alias = "allow_methods",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_methods: Vec<String>,
    /// `Access-Control-Allow-Headers`.
    #[serde(
        alias = "allow_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_headers: Vec<String>,
    /// `Access-Control-Expose-Headers`.
    #[serde(
        alias = "expose_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expose_headers: Vec<String>,
    /// `Access-Control-Max-Age`.
    #[serde(alias = "max_age", default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// `Access-Control-Allow-Credentials`.
    #[serde(
        alias = "allow_credentials",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_credentials: Option<bool>,
    /// What to do with preflight requests whose origin does not match.
    #[serde(
        alias = "unmatched_preflights",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// Handling of unmatched CORS preflight requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// The default (Istio's proto calls it `UNSPECIFIED`).
    Unspecified,
    /// Forward to the upstream.
    Forward,
    /// Answer without forwarding.
    Ignore,
}

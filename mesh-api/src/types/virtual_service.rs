//! `VirtualService`: how requests to a set of hosts are routed (HTTP, TLS by
//! SNI, and TCP routes). The HTTP policies a route carries (retries, faults,
//! rewrites, ...) live in [`super::http_policy`].
//!
//! Loaded and validated in mesh-api, turned into RDS routes by pilot's
//! translator.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Destination, Duration, Headers, Percent, StringMatch};
use super::http_policy::{
    CorsPolicy, HttpDirectResponse, HttpFaultInjection, HttpMirrorPolicy, HttpRedirect, HttpRetry,
    HttpRewrite,
};

/// The `spec` of a `VirtualService`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSpec {
    /// Hosts the routes apply to; short names are resolved in the
    /// VirtualService's namespace (see [`crate::fqdn`]). Required, except for
    /// a VirtualService that another one uses as a `delegate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Gateways (`name` or `namespace/name`) and/or `mesh`; empty means `mesh`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// HTTP routes, tried in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
    /// TLS (SNI-based) routes for unterminated TLS traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsRoute>,
    /// Opaque TCP routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpRoute>,
    /// Namespaces this VirtualService is visible to (`.` = own, `*` = all).
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

/// One HTTP route: conditions (`match`) and what to do with a matching
/// request (`route`, `redirect`, `directResponse` or `delegate`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// Name of the route, used in logs and route names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions, OR-ed; empty matches every request. YAML key `match`.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<HttpRouteDestination>,
    /// Answer with a redirect instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<HttpRedirect>,
    /// Answer with a fixed response instead of forwarding.
    #[serde(
        alias = "direct_response",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_response: Option<HttpDirectResponse>,
    /// Hand the request to another (delegate) VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
    /// Rewrite the URI and/or authority before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// Request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Fault injection (delay and/or abort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<HttpFaultInjection>,
    /// Mirror traffic to this destination as well (fire and forget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Several mirror destinations, each with its own percentage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Deprecated integer form of `mirrorPercentage`; rewritten by
    /// [`crate::normalize`], so never set on a loaded object.
    #[serde(
        alias = "mirror_percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percent: Option<u32>,
    /// Share of traffic mirrored to `mirror`.
    #[serde(
        alias = "mirror_percentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percentage: Option<Percent>,
    /// CORS policy.
    #[serde(
        alias = "cors_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cors_policy: Option<CorsPolicy>,
    /// Header manipulation for every destination of this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Deprecated (Istio 1.0-1.4; upgrades have been allowed on every route
    /// since 1.0): [`crate::normalize`] drops `true` with a warning and
    /// rejects `false`, which the mesh cannot honour. Never set on a loaded
    /// object.
    #[serde(
        alias = "websocket_upgrade",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub websocket_upgrade: Option<bool>,
    /// Deprecated (Istio 1.0-1.4): request headers to append; rewritten
    /// into `headers.request.add`.
    #[serde(
        alias = "append_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub append_headers: BTreeMap<String, String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.request.add`.
    #[serde(
        alias = "append_request_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub append_request_headers: BTreeMap<String, String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.response.add`.
    #[serde(
        alias = "append_response_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub append_response_headers: BTreeMap<String, String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.request.remove`.
    #[serde(
        alias = "remove_request_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove_request_headers: Vec<String>,
    /// Deprecated (Istio 1.0-1.4): rewritten into `headers.response.remove`.
    #[serde(
        alias = "remove_response_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove_response_headers: Vec<String>,
}

/// Conditions on an HTTP request; all the fields set must match.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatchRequest {
    /// Name of the match, appended to the route name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// URI scheme (`http`, `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    /// HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Host / `:authority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Request headers (names in lowercase).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Destination port of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Labels of the calling workload.
    #[serde(
        alias = "source_labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to, overriding the VirtualService's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Query parameters (`exact` and `regex` only, per Istio).
    #[serde(
        alias = "query_params",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Match `uri` case-insensitively.
    #[serde(
        alias = "ignore_uri_case",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ignore_uri_case: Option<bool>,
    /// Headers that must NOT match.
    #[serde(
        alias = "without_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Namespace of the calling workload.
    #[serde(
        alias = "source_namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_namespace: Option<String>,
    /// Prefix for the statistics of this match.
    #[serde(
        alias = "stat_prefix",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stat_prefix: Option<String>,
}

/// An HTTP destination with its weight and header changes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteDestination {
    /// Where to send the request. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Share of traffic (0..100); weights of a route sum to 100 when there
    /// is more than one destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Header manipulation for this destination only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.request.add`.
    #[serde(
        alias = "append_request_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub append_request_headers: BTreeMap<String, String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.response.add`.
    #[serde(
        alias = "append_response_headers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub append_response_headers: BTreeMap<String, String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.request.remove`.
    #[serde(
        alias = "remove_request_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove_request_headers: Vec<String>,
    /// Deprecated (Istio 1.1-1.4): rewritten into `headers.response.remove`.
    #[serde(
        alias = "remove_response_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove_response_headers: Vec<String>,
}

/// A delegate VirtualService (`name`, `namespace`) that holds the routes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delegate {
    /// Name of the delegate VirtualService.
    #[serde(default)]
    pub name: String,
    /// Its namespace; defaults to the namespace of the referring one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A route for unterminated TLS traffic, matched by SNI.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    /// Conditions, OR-ed. YAML key `match`.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<TlsMatchAttributes>,
    /// Weighted destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// Conditions on a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsMatchAttributes {
    /// SNI values to match (wildcards allowed). Required.
    #[serde(alias = "sni_hosts", default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
    /// Destination IP subnets (`a.b.c.d/xx`).
    #[serde(
        alias = "destination_subnets",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destination_subnets: Vec<String>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Source IP subnet (Istio 1.0-1.4, hidden from its docs; not enforced,
    /// see [`crate::validate`]'s unsupported list).
    #[serde(
        alias = "source_subnet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_subnet: Option<String>,
    /// Labels of the calling workload.
    #[serde(
        alias = "source_labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Namespace of the calling workload.
    #[serde(
        alias = "source_namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_namespace: Option<String>,
}

/// A route for opaque TCP traffic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// Conditions, OR-ed. YAML key `match`.
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<L4MatchAttributes>,
    /// Weighted destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// Conditions on a TCP connection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4MatchAttributes {
    /// Destination IP subnets.
    #[serde(
        alias = "destination_subnets",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destination_subnets: Vec<String>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Source IP subnet (hidden from Istio's docs and ignored by Istio; not
    /// enforced, see [`crate::validate`]'s unsupported list).
    #[serde(
        alias = "source_subnet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_subnet: Option<String>,
    /// Labels of the calling workload.
    #[serde(
        alias = "source_labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Namespace of the calling workload.
    #[serde(
        alias = "source_namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_namespace: Option<String>,
}

/// A weighted L4 destination (TLS and TCP routes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteDestination {
    /// Where to send the connection. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Share of connections (0..100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

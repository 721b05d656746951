//! Route part of the model: route configurations, virtual hosts, routes
//! with their matches and actions, as the HTTP router reads them. The
//! per-route policies (retries, mirrors, hashing, redirects, header
//! mutations) are in [`super::policy`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::matcher::{serde_regex_str, HeaderMatchKind, HeaderMatcher, RegexRewrite};
use super::policy::{
    FilterOverrides, HashPolicy, HeaderMutations, MirrorPolicy, Redirect, RetryPolicy,
};

/// A route configuration (RDS resource or inline).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteConfig {
    /// Resource name, e.g. `http_proxy`, `9080`, `http.80`.
    pub name: String,
    /// Virtual hosts, selected by the request authority.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Header mutations of every request and response routed by it.
    pub headers: HeaderMutations,
    /// Apply the header mutations least specific first, so that the
    /// route's win (Envoy's default is the other way round).
    pub most_specific_header_mutations_wins: bool,
    /// Envoy's `validate_clusters`: refuse the configuration when a route
    /// names a cluster the proxy does not have. Unset means Envoy's
    /// default, which depends on where the configuration came from: yes
    /// inline in a listener, no over RDS (there the request gets 503 `NC`
    /// until the cluster arrives).
    pub validate_clusters: Option<bool>,
}

/// A virtual host: a set of domains and their routes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VirtualHost {
    /// Name, e.g. `messenger.default.svc.cluster.local:9080`.
    pub name: String,
    /// Domains as Envoy matches them: exact, `*.suffix`, `prefix*`, or `*`.
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// Whether plaintext requests are redirected to https.
    pub require_tls: TlsRequirement,
    /// Header mutations of the requests and responses of its routes.
    pub headers: HeaderMutations,
    /// Retry policy of routes that have none of their own.
    pub retry_policy: Option<Arc<RetryPolicy>>,
    /// Send `x-envoy-attempt-count` upstream.
    pub include_request_attempt_count: bool,
    /// Send `x-envoy-attempt-count` downstream on the response.
    pub include_attempt_count_in_response: bool,
    /// Per-filter settings of its routes (`typed_per_filter_config`).
    pub filter_overrides: FilterOverrides,
    /// Request body buffer limit (for retries and mirrors) of its routes.
    pub buffer_limit: Option<u64>,
}

/// Envoy's `require_tls` of a virtual host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum TlsRequirement {
    /// No requirement.
    #[default]
    None,
    /// Requests from outside the mesh (not from an internal address) must
    /// use TLS.
    ExternalOnly,
    /// Every request must use TLS.
    All,
}

/// One route: a match and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Route name (may be empty).
    pub name: String,
    /// What requests it takes.
    pub matcher: RouteMatch,
    /// What it does with them.
    pub action: RouteAction,
    /// Header mutations of its requests and responses.
    pub headers: HeaderMutations,
    /// Per-filter settings (`typed_per_filter_config`).
    pub filter_overrides: FilterOverrides,
    /// The config object the route was made from, `VirtualService
    /// default/reviews` (from `metadata.filter_metadata.istio.config`).
    pub rule: Option<String>,
    /// Why the mesh made this route to refuse traffic, e.g.
    /// `outboundTrafficPolicy REGISTRY_ONLY` (`filter_metadata.mesh.reason`).
    pub mesh_reason: Option<String>,
    /// Request body buffer limit (for retries and mirrors).
    pub buffer_limit: Option<u64>,
}

impl Route {
    /// A route with no policies besides its match and action.
    pub fn new(name: impl Into<String>, matcher: RouteMatch, action: RouteAction) -> Self {
        Self {
            name: name.into(),
            matcher,
            action,
            headers: HeaderMutations::default(),
            filter_overrides: FilterOverrides::default(),
            rule: None,
            mesh_reason: None,
            buffer_limit: None,
        }
    }
}

/// Request match of a route.
#[derive(Debug, Clone, Serialize)]
pub struct RouteMatch {
    /// Path condition (query string excluded).
    pub path: PathMatch,
    /// Whether path matching is case sensitive (Envoy default true).
    pub case_sensitive: bool,
    /// All must match.
    pub headers: Vec<HeaderMatcher>,
    /// All must match.
    pub query_parameters: Vec<QueryParameterMatcher>,
}

impl RouteMatch {
    /// A match on the path alone.
    pub fn path(path: PathMatch) -> Self {
        Self {
            path,
            case_sensitive: true,
            headers: Vec::new(),
            query_parameters: Vec::new(),
        }
    }
}

/// Path condition of a route.
#[derive(Debug, Clone, Serialize)]
pub enum PathMatch {
    /// Path starts with this.
    Prefix(String),
    /// Path equals this.
    Exact(String),
    /// Path equals this or continues it with `/` (`path_separated_prefix`:
    /// `/api` takes `/api` and `/api/x`, not `/apis`).
    PathSeparatedPrefix(String),
    /// Whole path matches this regex, compiled anchored
    /// ([`crate::xds::convert::compile_whole_match`]).
    Regex(#[serde(with = "serde_regex_str")] regex::Regex),
}

/// A query parameter condition: the parameter is present, and its value
/// (the first one, URL-decoded) satisfies `kind`.
#[derive(Debug, Clone, Serialize)]
pub struct QueryParameterMatcher {
    /// Parameter name, case sensitive as in Envoy.
    pub name: String,
    /// How the value must look; `Present(true)` for `present_match`.
    pub kind: HeaderMatchKind,
}

/// What a route does.
// Routes are built once per config and only ever read by reference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
pub enum RouteAction {
    /// Forward upstream.
    Forward(Forward),
    /// Answer directly.
    DirectResponse {
        /// Status code.
        status: u16,
        /// Body, if any.
        body: Option<String>,
    },
    /// Answer with a redirect.
    Redirect(Redirect),
}

/// Forwarding settings of a route.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    /// Cluster(s) to send to.
    pub target: ClusterTarget,
    /// Settings of each arm of a weighted target, in the same order (empty
    /// for a single cluster).
    pub arms: Vec<ClusterArm>,
    /// Replace the matched prefix with this.
    pub prefix_rewrite: Option<String>,
    /// Rewrite the path with a regex (`regex_rewrite`).
    pub regex_rewrite: Option<RegexRewrite>,
    /// Replace the authority with this.
    pub host_rewrite: Option<String>,
    /// Append the original authority to `x-forwarded-host` when rewriting it.
    pub append_x_forwarded_host: bool,
    /// Whole-request timeout, until the response is complete and across
    /// retries; `None` means no limit.
    pub timeout: Option<Duration>,
    /// Stream idle timeout of this route, replacing the HCM's.
    pub idle_timeout: Option<Duration>,
    /// Longest a stream of this route may last (`max_stream_duration`).
    pub max_stream_duration: Option<Duration>,
    /// Honour `grpc-timeout` for the stream duration, capped by this
    /// (zero: uncapped).
    pub grpc_timeout_header_max: Option<Duration>,
    /// Taken off a `grpc-timeout` value (`grpc_timeout_header_offset`).
    pub grpc_timeout_header_offset: Option<Duration>,
    /// Deprecated `max_grpc_timeout`: gRPC requests use `grpc-timeout` (or
    /// no limit) instead of `timeout`, capped by this (zero: uncapped).
    pub max_grpc_timeout: Option<Duration>,
    /// Deprecated `grpc_timeout_offset`, with `max_grpc_timeout`.
    pub grpc_timeout_offset: Option<Duration>,
    /// Status when the chosen cluster does not exist (Envoy: 503).
    pub cluster_not_found_status: u16,
    /// The route's own retry policy (wins over the virtual host's).
    pub retry_policy: Option<Arc<RetryPolicy>>,
    /// Where copies of the requests go.
    pub mirrors: Vec<MirrorPolicy>,
    /// How the consistent-hash key is computed.
    pub hash_policy: Vec<HashPolicy>,
    /// Per-route overrides of the HCM's `upgrade_configs`.
    pub upgrades: Vec<UpgradeOverride>,
}

impl Forward {
    /// Forwarding to `target` with Envoy's defaults and no policies.
    pub fn to(target: ClusterTarget) -> Self {
        Self {
            target,
            arms: Vec::new(),
            prefix_rewrite: None,
            regex_rewrite: None,
            host_rewrite: None,
            append_x_forwarded_host: false,
            timeout: None,
            idle_timeout: None,
            max_stream_duration: None,
            grpc_timeout_header_max: None,
            grpc_timeout_header_offset: None,
            max_grpc_timeout: None,
            grpc_timeout_offset: None,
            cluster_not_found_status: 503,
            retry_policy: None,
            mirrors: Vec::new(),
            hash_policy: Vec::new(),
            upgrades: Vec::new(),
        }
    }
}

/// Per-arm settings of a weighted cluster.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterArm {
    /// Header mutations when this arm is chosen (the most specific level).
    pub headers: HeaderMutations,
    /// Replace the authority with this when this arm is chosen.
    pub host_rewrite: Option<String>,
}

/// A route's override of one upgrade type of the HCM.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeOverride {
    /// Upgrade type, lower case (`websocket`, `connect`).
    pub upgrade_type: String,
    /// Whether the route allows it.
    pub enabled: bool,
}

/// One cluster or a weighted choice of clusters.
#[derive(Debug, Clone, Serialize)]
pub enum ClusterTarget {
    /// A single cluster by name.
    Cluster(String),
    /// Pick one per request with probability weight / total.
    Weighted(Vec<WeightedCluster>),
}

/// One arm of a weighted choice.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedCluster {
    /// Cluster name.
    pub name: String,
    /// Relative weight.
    pub weight: u32,
}

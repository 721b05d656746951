//! Route part of the model: route configurations, virtual hosts, routes
//! with their matches and actions, as the HTTP router reads them.

use std::time::Duration;

use serde::Serialize;

/// A route configuration (RDS resource or inline).
#[derive(Debug, Clone, Serialize)]
pub struct RouteConfig {
    /// Resource name, e.g. `http_proxy`, `9080`, `http.80`.
    pub name: String,
    /// Virtual hosts, selected by the request authority.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// A virtual host: a set of domains and their routes.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualHost {
    /// Name, e.g. `messenger.default.svc.cluster.local:9080`.
    pub name: String,
    /// Domains as Envoy matches them: exact, `*.suffix`, `prefix*`, or `*`.
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
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

/// A header condition.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatcher {
    /// Lower-case header name (`:authority`, `:method`, `:path` allowed).
    pub name: String,
    /// How the value must look.
    pub kind: HeaderMatchKind,
    /// Match when the condition does not hold.
    pub invert: bool,
}

/// How a header value is matched.
#[derive(Debug, Clone, Serialize)]
pub enum HeaderMatchKind {
    /// Value equals.
    Exact(String),
    /// Value starts with.
    Prefix(String),
    /// Value ends with.
    Suffix(String),
    /// Value contains.
    Contains(String),
    /// Whole value matches, compiled anchored
    /// ([`crate::xds::convert::compile_whole_match`]).
    Regex(#[serde(with = "serde_regex_str")] regex::Regex),
    /// Header present (true) or absent (false).
    Present(bool),
}

/// What a route does.
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
}

/// Forwarding settings of a route.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    /// Cluster(s) to send to.
    pub target: ClusterTarget,
    /// Replace the matched prefix with this.
    pub prefix_rewrite: Option<String>,
    /// Replace the authority with this.
    pub host_rewrite: Option<String>,
    /// Whole-request timeout; `None` means no limit.
    pub timeout: Option<Duration>,
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

mod serde_regex_str {
    pub fn serialize<S: serde::Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }
}

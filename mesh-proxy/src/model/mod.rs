//! The proxy's own configuration model: what `xds/` converts Envoy resources
//! into and what listeners, the router and clusters read. Protobuf never
//! crosses this line (STYLE.md rule 6).
//!
//! A [`Snapshot`] is immutable and replaced whole by [`SnapshotStore::publish`];
//! a connection or request loads it once and keeps using that copy, so a new
//! snapshot never disturbs work in flight.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

/// Everything the proxy currently serves, keyed by Envoy resource name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Snapshot {
    /// Listeners by name (LDS).
    pub listeners: BTreeMap<String, Arc<Listener>>,
    /// Route configurations by name (RDS).
    pub route_configs: BTreeMap<String, Arc<RouteConfig>>,
    /// Clusters by name (CDS).
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// Endpoints by cluster name (EDS `cluster_name`).
    pub endpoints: BTreeMap<String, Arc<LoadAssignment>>,
}

/// A listener: where to accept connections and what to do with them.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// Resource name, e.g. `127.0.10.1_15080`.
    pub name: String,
    /// Address to bind (or, with `bind_to_port == false`, to dispatch for).
    pub address: SocketAddr,
    /// False for listeners reached only through a capture listener.
    pub bind_to_port: bool,
    /// Hand accepted connections to the listener owning the original destination.
    pub use_original_dst: bool,
    /// The listener filters pilot asked for, in order. The proxy does their
    /// work itself (docs/capture.md); they are kept to show in the config dump.
    pub listener_filters: Vec<ListenerFilter>,
    /// Envoy's `traffic_direction`, when pilot sets it. A capture listener
    /// only hands connections to listeners of its own direction.
    pub traffic_direction: Option<TrafficDirection>,
    /// Filter chains, tried in order by their match.
    pub filter_chains: Vec<FilterChain>,
    /// Used when no chain matches.
    pub default_filter_chain: Option<FilterChain>,
}

/// A listener filter: a step before filter chain selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ListenerFilter {
    /// `envoy.filters.listener.original_dst`: read SO_ORIGINAL_DST.
    OriginalDst,
    /// `envoy.filters.listener.http_inspector`: detect HTTP/1.x and h2c.
    HttpInspector,
    /// `envoy.filters.listener.tls_inspector`: detect TLS, its SNI and ALPN.
    TlsInspector,
}

/// Which way a listener's traffic flows, relative to the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrafficDirection {
    /// Into the workload (`virtualInbound`, `inbound|...`).
    Inbound,
    /// Out of the workload (`virtualOutbound`, service listeners).
    Outbound,
}

/// A filter chain and the connections it is for.
#[derive(Debug, Clone, Serialize)]
pub struct FilterChain {
    /// Chain name (may be empty).
    pub name: String,
    /// Which connections take this chain.
    pub matcher: FilterChainMatch,
    /// The terminal network filter.
    pub filter: NetworkFilter,
}

/// Connection properties a filter chain is selected by. Empty fields match anything.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterChainMatch {
    /// Original destination port.
    pub destination_port: Option<u16>,
    /// TLS SNI names (`*.example.com` allowed).
    pub server_names: Vec<String>,
    /// `raw_buffer` or `tls`.
    pub transport_protocol: Option<String>,
    /// ALPN / detected protocols, e.g. `http/1.1`, `h2c`.
    pub application_protocols: Vec<String>,
}

/// The terminal network filter of a chain.
#[derive(Debug, Clone, Serialize)]
pub enum NetworkFilter {
    /// `envoy.filters.network.http_connection_manager`.
    Http(HttpConnectionManager),
    /// `envoy.filters.network.tcp_proxy`.
    Tcp(TcpProxy),
}

/// HTTP connection manager settings.
#[derive(Debug, Clone, Serialize)]
pub struct HttpConnectionManager {
    /// Stats prefix.
    pub stat_prefix: String,
    /// Where the routes come from.
    pub routes: RouteSource,
    /// HTTP filters in order; the last one is the router.
    pub http_filters: Vec<HttpFilter>,
}

/// Route table of an HTTP connection manager.
#[derive(Debug, Clone, Serialize)]
pub enum RouteSource {
    /// Looked up by name in [`Snapshot::route_configs`] per request.
    Rds(String),
    /// Carried in the listener itself.
    Inline(Arc<RouteConfig>),
}

/// An HTTP filter. Only filters the proxy implements exist here; conversion
/// rejects unknown non-optional filters with a NACK.
#[derive(Debug, Clone, Serialize)]
pub enum HttpFilter {
    /// `envoy.filters.http.router`: forward to the route's cluster.
    Router,
}

/// `tcp_proxy`: relay bytes to a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct TcpProxy {
    /// Stats prefix.
    pub stat_prefix: String,
    /// Destination cluster(s).
    pub destination: ClusterTarget,
}

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

/// An upstream cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Resource name, e.g. `outbound|9080|v1|messenger.default.svc.cluster.local`.
    pub name: String,
    /// How its endpoints are found.
    pub discovery: Discovery,
    /// Load balancing policy.
    pub lb_policy: LbPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Speak HTTP/2 (prior knowledge) to the upstream.
    pub http2: bool,
    /// Source address to bind before connecting (`upstream_bind_config`),
    /// e.g. 127.0.0.6, which the capture rules let through uncaptured.
    pub upstream_bind: Option<IpAddr>,
}

/// Endpoint discovery of a cluster.
#[derive(Debug, Clone, Serialize)]
pub enum Discovery {
    /// Endpoints from EDS under this service name.
    Eds {
        /// EDS `cluster_name` to look up in [`Snapshot::endpoints`].
        service_name: String,
    },
    /// Fixed endpoints.
    Static(Vec<Endpoint>),
    /// Resolve these hosts through DNS.
    StrictDns(Vec<(String, u16)>),
    /// Connect to the connection's original destination.
    OriginalDst,
}

/// Load balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbPolicy {
    /// Round robin over healthy endpoints, honouring weights.
    RoundRobin,
    /// Uniformly random.
    Random,
    /// Fewest active requests among two random picks.
    LeastRequest,
}

/// EDS resource: the endpoints of one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct LoadAssignment {
    /// Cluster (service) name.
    pub cluster_name: String,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// One upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Socket address.
    pub address: SocketAddr,
    /// Load balancing weight (>= 1).
    pub weight: u32,
}

/// The current snapshot for readers on the hot path, plus a change signal
/// for tasks that must react (the listener manager).
#[derive(Debug)]
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
    changed: watch::Sender<u64>,
}

impl Default for SnapshotStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            changed,
        }
    }

    /// The snapshot to use for one connection or request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replace the snapshot whole and wake watchers.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes on every publish.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

mod serde_regex_str {
    pub fn serialize<S: serde::Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }
}

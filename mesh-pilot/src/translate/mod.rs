//! The translator: `(config, registry, proxy) -> Envoy v3 resources`, pure.
//! It sits between the push queue and the ADS server; the shapes and names
//! it produces are the contract of docs/architecture.md ("What pilot
//! sends"), Istio's where Istio has one.
//!
//! ```text
//!  ConfigSnapshot + Registry + Proxy
//!        │
//!        ├─ cluster.rs   outbound|PORT|SUBSET|HOST, inbound|PORT||, BlackHole, Passthrough
//!        ├─ endpoint.rs  ClusterLoadAssignment per EDS cluster
//!        ├─ listener.rs  sidecar (NONE mode) and gateway listeners
//!        ├─ capture.rs   sidecar (REDIRECT mode): virtualOutbound/Inbound, per-port
//!        └─ route/       http_proxy, PORT, http.P: virtual hosts and routes from VirtualServices
//!  gateways.rs: the Gateways that select a gateway (its listeners and routes)
//!  filters.rs: building blocks (addresses, HCM, tcp_proxy)
//! ```

pub mod capture;
pub mod cluster;
pub mod endpoint;
pub mod filters;
pub mod gateways;
pub mod listener;
pub mod route;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;

use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::registry::Registry;
use crate::source::ConfigSnapshot;

/// Everything one proxy is sent, each list sorted by resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// CDS.
    pub clusters: Vec<Cluster>,
    /// EDS.
    pub endpoints: Vec<ClusterLoadAssignment>,
    /// LDS.
    pub listeners: Vec<Listener>,
    /// RDS.
    pub routes: Vec<RouteConfiguration>,
}

/// Generate the resources of `proxy`.
pub fn generate(config: &ConfigSnapshot, registry: &Registry, proxy: &Proxy) -> Output {
    let clusters = cluster::clusters(config, registry, proxy);
    let endpoints = endpoint::load_assignments(&clusters, config, registry);
    let listeners = match (proxy.proxy_type, proxy.interception_mode) {
        (ProxyType::Sidecar, InterceptionMode::None) => listener::sidecar_none(registry, proxy),
        (ProxyType::Sidecar, InterceptionMode::Redirect) => {
            capture::listeners(config, registry, proxy)
        }
        (ProxyType::Router, _) => listener::gateway(config, proxy),
    };
    let routes = route::route_configs(config, registry, proxy);
    let mut out = Output {
        clusters,
        endpoints,
        listeners,
        routes,
    };
    out.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    out.endpoints
        .sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    out.routes.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

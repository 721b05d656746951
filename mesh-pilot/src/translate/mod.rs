//! The translator: `(push context, proxy) -> Envoy v3 resources`, pure.
//! It sits between the push queue and the ADS server; the shapes and names
//! it produces are the contract of docs/architecture.md ("What pilot
//! sends"), Istio's where Istio has one.
//!
//! What a proxy is sent is split by what it depends on (`scope.rs`): the
//! shared families are built from the push and a scope key only, so the
//! ADS server builds each once per push and key (`xds/cache.rs`); the rest
//! is the proxy's own. [`generate`] puts one proxy's whole view together
//! from the same builders.
//!
//! ```text
//!  PushContext + Proxy ──► scope.rs: View (keys: MeshWide, RouteScope; gateways.rs selects Gateways)
//!        │ shared, by key                                     │ own, per proxy
//!        ├─ cluster.rs   outbound_clusters                    ├─ cluster.rs   inbound_clusters
//!        ├─ endpoint.rs  load_assignments                     ├─ listener.rs  NONE-mode sidecar, gateway
//!        ├─ capture.rs   outbound_listeners (REDIRECT)        └─ capture.rs   virtual_inbound (REDIRECT)
//!        └─ route/       route_configs(RouteScope): http_proxy, PORT, http.P
//!  filters.rs: building blocks (addresses, HCM, tcp_proxy, typed_config)
//! ```

pub mod access_log;
pub mod capture;
pub mod cluster;
pub mod endpoint;
pub mod fields;
pub mod filters;
pub mod gateways;
pub mod listener;
pub mod route;
pub mod scope;
pub mod tcp;
pub mod tls;

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;

use self::scope::View;
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::push::PushContext;
use crate::registry::Registry;
use crate::source::ConfigSnapshot;

pub use self::capture::outbound_listeners;
pub use self::cluster::outbound_clusters;
pub use self::endpoint::load_assignments;
pub use self::route::route_configs;

/// Everything one proxy is sent (or one part of it), each list sorted by
/// resource name.
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

impl Output {
    fn sort(&mut self) {
        self.clusters.sort_by(|a, b| a.name.cmp(&b.name));
        self.endpoints
            .sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
        self.listeners.sort_by(|a, b| a.name.cmp(&b.name));
        self.routes.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// Generate the resources of `proxy` from a config and its registry (tools
/// and tests; the ADS server shares work through `xds/cache.rs`).
pub fn generate(config: &ConfigSnapshot, registry: &Registry, proxy: &Proxy) -> Output {
    let ctx = PushContext::with_registry(Arc::new(config.clone()), registry.clone());
    generate_in(&ctx, proxy)
}

/// Generate the whole view of `proxy` in a push: its own resources and the
/// shared families of its [`View`], built unshared.
pub fn generate_in(ctx: &PushContext, proxy: &Proxy) -> Output {
    let view = View::of(ctx, proxy);
    let mut out = own(ctx, proxy, &view);
    out.clusters.extend(outbound_clusters(ctx, &view.services));
    out.endpoints.extend(load_assignments(ctx, &view.endpoints));
    if let Some(source) = &view.outbound_listeners {
        out.listeners.extend(outbound_listeners(ctx, source));
    }
    if let Some(scope) = &view.routes {
        out.routes.extend(route_configs(ctx, scope));
    }
    out.sort();
    out
}

/// What only `proxy` is sent: its inbound clusters and its own listeners
/// (those bound to its node IP or serving its workload's ports).
pub fn own(ctx: &PushContext, proxy: &Proxy, view: &View) -> Output {
    let listeners = match (proxy.proxy_type, proxy.interception_mode) {
        (ProxyType::Sidecar, InterceptionMode::None) => listener::sidecar_none(ctx, proxy),
        (ProxyType::Sidecar, InterceptionMode::Redirect) => {
            vec![capture::virtual_inbound(ctx, proxy)]
        }
        (ProxyType::Router, _) => view
            .gateway()
            .map(|g| listener::gateway(ctx, proxy, g))
            .unwrap_or_default(),
    };
    let mut out = Output {
        clusters: cluster::inbound_clusters(ctx, proxy),
        listeners,
        ..Output::default()
    };
    out.sort();
    out
}

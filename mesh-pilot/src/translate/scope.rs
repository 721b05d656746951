//! Scope keys: what each family of resources depends on besides the push,
//! written as a type. A shared family is built once per push and key
//! (`xds/cache.rs`), and two proxies with equal keys get the same bytes:
//! the builders of a shared family read the push and the key, never the
//! proxy, so the key is all of the proxy they can see.
//!
//! ```text
//!  family                              key             what of the proxy it depends on
//!  outbound clusters (+ BlackHole,     ServiceView     its namespace, only when exportTo
//!    Passthrough), endpoints                           hides something from some namespace
//!  outbound listeners (REDIRECT mode)  Source          which tcp/tls route matches hold for it
//!  route configs                       RouteScope      sidecars: mode (http_proxy or per port) and
//!                                                      Source; gateways: GatewayScope
//!  own: inbound clusters, listeners    the proxy       node IP, app IP, HTTP_PROXY_PORT, mode,
//!    of NONE-mode sidecars/gateways,                   MESH_GATEWAY_PORTS
//!    virtualInbound
//! ```

use std::collections::BTreeMap;

use mesh_api::node::Locality as ProxyLocality;
use mesh_api::HttpMatchRequest;

use super::gateways::{self, ServerKind};
use crate::mesh_config::OutboundMode;
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::push::PushContext;
use crate::registry::{labels_match, Service};

/// Which services (and ports) a proxy knows of: every one, unless
/// `exportTo` hides some from its namespace or its `Sidecar` imports only
/// some. The clusters and endpoints of a push are built once per view;
/// with neither in the config every proxy has the same view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ServiceView {
    /// The proxy's namespace, when some object's `exportTo` restricts
    /// who sees it or a Sidecar applies; `None` otherwise.
    pub namespace: Option<String>,
    /// The id of the proxy's Sidecar resource.
    pub sidecar: Option<usize>,
}

impl ServiceView {
    /// The view of a proxy of `namespace` whose Sidecar is `sidecar`.
    pub fn new(ctx: &PushContext, namespace: &str, sidecar: Option<usize>) -> ServiceView {
        ServiceView {
            namespace: (ctx.export_restricted() || sidecar.is_some())
                .then(|| namespace.to_string()),
            sidecar,
        }
    }

    /// The view of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> ServiceView {
        ServiceView::new(ctx, &proxy.namespace, ctx.sidecar_for(proxy))
    }

    /// The view of the proxies of a route or listener source.
    pub fn of_source(ctx: &PushContext, source: &Source) -> ServiceView {
        ServiceView::new(ctx, &source.namespace, source.sidecar)
    }

    /// Whether the view has `service` (some port of it).
    pub fn sees(&self, ctx: &PushContext, service: &Service) -> bool {
        self.exported(service)
            && service
                .ports
                .iter()
                .any(|p| self.imported(ctx, service, p.number))
    }

    /// Whether the view has port `port` of `service`.
    pub fn sees_port(&self, ctx: &PushContext, service: &Service, port: u32) -> bool {
        self.exported(service) && self.imported(ctx, service, port)
    }

    fn exported(&self, service: &Service) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| crate::registry::exported_to(&service.export_to, ns))
    }

    fn imported(&self, ctx: &PushContext, service: &Service, port: u32) -> bool {
        match (self.sidecar, self.namespace.as_deref()) {
            (Some(id), Some(ns)) => ctx.sidecar_imports(id, ns, service, port),
            _ => true,
        }
    }
}

/// The proxy as route configs see it: the namespace short host names
/// resolve in (the bare `NAME` domain is only for proxies of the service's
/// namespace) and that `sourceNamespace` matches compare with, and which of
/// the push's `sourceLabels` selectors its labels match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The proxy's namespace.
    pub namespace: String,
    /// Entry `i`: whether the proxy's labels match the push's `i`-th
    /// selector ([`PushContext::source_selectors`]).
    pub labels: Vec<bool>,
    /// The id of the proxy's Sidecar resource (the services it imports,
    /// its outbound traffic policy).
    pub sidecar: Option<usize>,
}

impl Source {
    /// The source view of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> Source {
        Source {
            namespace: proxy.namespace.clone(),
            labels: ctx
                .source_selectors()
                .iter()
                .map(|s| labels_match(s, &proxy.labels))
                .collect(),
            sidecar: ctx.sidecar_for(proxy),
        }
    }

    /// What the source's unknown outbound traffic gets: its Sidecar's
    /// `outboundTrafficPolicy`, else the mesh's.
    pub fn outbound_mode(&self, ctx: &PushContext) -> OutboundMode {
        self.sidecar
            .and_then(|id| ctx.sidecar_outbound_mode(id))
            .unwrap_or(ctx.config.mesh.outbound_traffic_policy.mode)
    }

    /// Whether a route match's conditions on the caller (`sourceLabels`,
    /// `sourceNamespace`) hold for this source.
    pub fn matches(&self, ctx: &PushContext, m: &HttpMatchRequest) -> bool {
        self.holds(ctx, &m.source_labels, m.source_namespace.as_deref())
    }

    /// Whether `sourceLabels` and `sourceNamespace` (of any route kind's
    /// match) hold for this source.
    pub fn holds(
        &self,
        ctx: &PushContext,
        labels: &BTreeMap<String, String>,
        namespace: Option<&str>,
    ) -> bool {
        let labels_ok = labels.is_empty()
            || ctx
                .source_selector(labels)
                .and_then(|id| self.labels.get(id).copied())
                .unwrap_or(false);
        labels_ok && namespace.is_none_or(|ns| ns == self.namespace)
    }
}

/// What a gateway proxy's route configs and listeners depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayScope {
    /// Ids of the Gateways that select the proxy, in config order.
    pub gateways: Vec<usize>,
    /// Their plain HTTP server ports, each with the port it is bound to on
    /// the proxy (`MESH_GATEWAY_PORTS`), by server port: route configs
    /// `http.PORT`.
    pub ports: Vec<(u32, u32)>,
    /// Their HTTPS servers: (port, bound port, Gateway id, server index),
    /// each with a route config `https.PORT.NAME.GATEWAY.NS`.
    pub https: Vec<(u32, u32, usize, usize)>,
    /// The proxy as route matches see it.
    pub source: Source,
}

impl GatewayScope {
    /// The gateway scope of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> GatewayScope {
        let selected = gateways::selected(ctx, proxy);
        let servers = gateways::servers(&selected);
        let mut ports: Vec<(u32, u32)> = servers
            .iter()
            .filter(|s| s.kind == ServerKind::Http)
            .map(|s| (s.port, proxy.gateway_port(s.port)))
            .collect();
        ports.dedup();
        let https = servers
            .iter()
            .filter(|s| s.kind == ServerKind::Https)
            .map(|s| (s.port, proxy.gateway_port(s.port), s.gateway.id, s.index))
            .collect();
        GatewayScope {
            ports,
            https,
            gateways: selected.iter().map(|g| g.id).collect(),
            source: Source::of(ctx, proxy),
        }
    }

    /// The servers of this scope's Gateways, by port (as
    /// [`gateways::servers`]).
    pub fn servers<'a>(&self, ctx: &'a PushContext) -> Vec<gateways::ServerRef<'a>> {
        let selected: Vec<_> = self
            .gateways
            .iter()
            .filter_map(|id| ctx.gateway(*id))
            .collect();
        gateways::servers(&selected)
    }
}

/// The key a proxy's route configs are shared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteScope {
    /// NONE-mode sidecars with an HTTP proxy port: `http_proxy`.
    HttpProxy(Source),
    /// REDIRECT-mode sidecars: one config per outbound HTTP port.
    Ports(Source),
    /// Gateways: `http.P` per HTTP server port.
    Gateway(GatewayScope),
}

/// Which shared families a proxy gets, each with its key. Every proxy gets
/// the mesh-wide clusters and endpoints; the rest of what it is sent is
/// its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The services the proxy knows: its clusters.
    pub services: ServiceView,
    /// Its endpoints: those services, and where it is when that matters.
    pub endpoints: EndpointView,
    /// REDIRECT-mode sidecars: the outbound capture listeners, by the
    /// source their tcp and tls route matches see.
    pub outbound_listeners: Option<Source>,
    /// Its route configs' scope, `None` when it has none.
    pub routes: Option<RouteScope>,
}

impl View {
    /// The view of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> View {
        match (proxy.proxy_type, proxy.interception_mode) {
            (ProxyType::Sidecar, InterceptionMode::None) => View {
                services: ServiceView::of(ctx, proxy),
                endpoints: EndpointView::of(
                    ctx,
                    ServiceView::of(ctx, proxy),
                    proxy.locality.as_ref(),
                ),
                outbound_listeners: None,
                routes: proxy
                    .http_proxy_port
                    .map(|_| RouteScope::HttpProxy(Source::of(ctx, proxy))),
            },
            (ProxyType::Sidecar, InterceptionMode::Redirect) => {
                let source = Source::of(ctx, proxy);
                View {
                    services: ServiceView::of(ctx, proxy),
                    endpoints: EndpointView::of(
                        ctx,
                        ServiceView::of(ctx, proxy),
                        proxy.locality.as_ref(),
                    ),
                    outbound_listeners: Some(source.clone()),
                    routes: Some(RouteScope::Ports(source)),
                }
            }
            (ProxyType::Router, _) => View {
                services: ServiceView::of(ctx, proxy),
                endpoints: EndpointView::of(
                    ctx,
                    ServiceView::of(ctx, proxy),
                    proxy.locality.as_ref(),
                ),
                outbound_listeners: None,
                routes: Some(RouteScope::Gateway(GatewayScope::of(ctx, proxy))),
            },
        }
    }

    /// The gateway scope, for gateway proxies.
    pub fn gateway(&self) -> Option<&GatewayScope> {
        match &self.routes {
            Some(RouteScope::Gateway(g)) => Some(g),
            _ => None,
        }
    }
}

/// What a proxy's endpoints depend on: the services it sees, and its
/// locality when some DestinationRule makes endpoints locality-aware.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EndpointView {
    /// The services.
    pub services: ServiceView,
    /// `region/zone/subzone` of the proxy, only when it matters.
    pub locality: Option<String>,
}

impl EndpointView {
    /// The endpoint view of a proxy at `locality` seeing `services`.
    pub fn of(ctx: &PushContext, services: ServiceView, locality: Option<&ProxyLocality>) -> Self {
        EndpointView {
            services,
            locality: locality
                .filter(|_| ctx.locality_aware())
                .map(|l| format!("{}/{}/{}", l.region, l.zone, l.sub_zone)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::NodeMetadata;
    use crate::source::snapshot_from_str;
    use std::sync::Arc;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: default}
spec:
  hosts: [a]
  http:
  - match: [{sourceLabels: {version: v2}}]
    route: [{destination: {host: a}}]
"#;

    fn proxy(id: &str, labels: &[(&str, &str)]) -> Proxy {
        let mut meta = NodeMetadata::default();
        for (k, v) in labels {
            meta.labels.insert(k.to_string(), v.to_string());
        }
        Proxy::parse(id, &meta).unwrap()
    }

    #[test]
    fn route_scopes_differ_exactly_where_routes_can() {
        let ctx = PushContext::new(Arc::new(snapshot_from_str("s.yaml", CONFIG).unwrap()));
        let scope = |id: &str, labels: &[(&str, &str)]| View::of(&ctx, &proxy(id, labels)).routes;
        let a = "sidecar~198.18.0.1~a.default~default.svc.cluster.local";
        let b = "sidecar~198.18.0.2~b.default~default.svc.cluster.local";
        let other = "sidecar~198.18.0.3~c.prod~prod.svc.cluster.local";
        // Other labels, other IP: same scope, unless a selector tells them apart.
        assert_eq!(
            scope(a, &[("app", "x"), ("version", "v1")]),
            scope(b, &[("app", "y")])
        );
        assert_ne!(
            scope(a, &[("version", "v1")]),
            scope(b, &[("version", "v2")])
        );
        assert_ne!(scope(a, &[]), scope(other, &[]));
    }
}

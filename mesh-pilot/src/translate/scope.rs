//! Scope keys: what each family of resources depends on besides the push,
//! written as a type. A shared family is built once per push and key
//! (`xds/cache.rs`), and two proxies with equal keys get the same bytes:
//! the builders of a shared family read the push and the key, never the
//! proxy, so the key is all of the proxy they can see.
//!
//! ```text
//!  family                              key             what of the proxy it depends on
//!  outbound clusters (+ BlackHole,     MeshWide        nothing (config, registry)
//!    Passthrough), endpoints
//!  outbound listeners (REDIRECT mode)  MeshWide        nothing (registry, outboundTrafficPolicy)
//!  route configs                       RouteScope      sidecars: mode (http_proxy or per port) and
//!                                                      Source; gateways: GatewayScope
//!  own: inbound clusters, listeners    the proxy       node IP, app IP, HTTP_PROXY_PORT, mode,
//!    of NONE-mode sidecars/gateways,                   MESH_GATEWAY_PORTS
//!    virtualInbound
//! ```

use mesh_api::HttpMatchRequest;

use super::gateways;
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::push::PushContext;
use crate::registry::labels_match;

/// The key of resources no proxy sees differently: one per push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeshWide;

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
        }
    }

    /// Whether a route match's conditions on the caller (`sourceLabels`,
    /// `sourceNamespace`) hold for this source.
    pub fn matches(&self, ctx: &PushContext, m: &HttpMatchRequest) -> bool {
        let labels_ok = m.source_labels.is_empty()
            || ctx
                .source_selector(&m.source_labels)
                .and_then(|id| self.labels.get(id).copied())
                .unwrap_or(false);
        let namespace_ok = m
            .source_namespace
            .as_deref()
            .is_none_or(|ns| ns == self.namespace);
        labels_ok && namespace_ok
    }
}

/// What a gateway proxy's route configs depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayScope {
    /// Ids of the Gateways that select the proxy, in config order.
    pub gateways: Vec<usize>,
    /// Their HTTP server ports, each with the port it is bound to on the
    /// proxy (`MESH_GATEWAY_PORTS`), by server port.
    pub ports: Vec<(u32, u32)>,
    /// The proxy as route matches see it.
    pub source: Source,
}

impl GatewayScope {
    /// The gateway scope of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> GatewayScope {
        let selected = gateways::selected(ctx, proxy);
        GatewayScope {
            ports: gateways::http_ports(&selected)
                .into_iter()
                .map(|port| (port, proxy.gateway_port(port)))
                .collect(),
            gateways: selected.iter().map(|g| g.id).collect(),
            source: Source::of(ctx, proxy),
        }
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
    /// REDIRECT-mode sidecars: the outbound capture listeners.
    pub outbound_listeners: Option<MeshWide>,
    /// Its route configs' scope, `None` when it has none.
    pub routes: Option<RouteScope>,
}

impl View {
    /// The view of `proxy` in this push.
    pub fn of(ctx: &PushContext, proxy: &Proxy) -> View {
        match (proxy.proxy_type, proxy.interception_mode) {
            (ProxyType::Sidecar, InterceptionMode::None) => View {
                outbound_listeners: None,
                routes: proxy
                    .http_proxy_port
                    .map(|_| RouteScope::HttpProxy(Source::of(ctx, proxy))),
            },
            (ProxyType::Sidecar, InterceptionMode::Redirect) => View {
                outbound_listeners: Some(MeshWide),
                routes: Some(RouteScope::Ports(Source::of(ctx, proxy))),
            },
            (ProxyType::Router, _) => View {
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

//! RDS: route configurations, built per [`RouteScope`] (shared by every
//! proxy of the scope). A NONE-mode sidecar gets `http_proxy` (every HTTP
//! service port, one virtual host each); a REDIRECT-mode sidecar gets one
//! config per outbound HTTP port, named `PORT`, ending in `allow_any` (or
//! `block_all`); a gateway gets `http.P` per HTTP server port, from the
//! VirtualServices bound to its Gateways (`gateway.rs`); inbound listeners
//! carry an inline `inbound|PORT||` config. Routes themselves come from
//! `http.rs`.
//!
//! ```text
//!  RouteScope ─► route_configs ─┬─ http_proxy / port_config ─┐
//!                               └─ gateway.rs (http.P) ──────┴─► http.rs: VirtualService http[i] → routes
//! ```
//!
//! VirtualService `http[i]` with k matches becomes k routes named
//! `VSNAME.http[i]` (docs/architecture.md, "Routes (RDS)").

mod gateway;
mod http;
mod matching;
pub mod policy;

use mesh_api::names;
use std::collections::{BTreeSet, HashSet};

use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, DirectResponseAction, Route, RouteAction, RouteConfiguration, VirtualHost,
};

use self::gateway::{gateway, https_server};
use self::http::{default_route, vs_routes};
use self::matching::prefix_match;
use super::filters::{reason_metadata, seconds};
use super::scope::{RouteScope, ServiceView, Source};
use crate::mesh_config::OutboundMode;
use crate::push::PushContext;
use crate::registry::{Protocol, Service};

/// Cluster DNS suffix of short-name domains.
const SVC_SUFFIX: &str = ".svc.cluster.local";

/// The route configs of a route scope. They depend on nothing of a proxy
/// but its scope, so every proxy of the scope is sent these same configs.
pub fn route_configs(ctx: &PushContext, scope: &RouteScope) -> Vec<RouteConfiguration> {
    match scope {
        RouteScope::HttpProxy(source) => vec![http_proxy(ctx, source)],
        RouteScope::Ports(source) => outbound_http_ports(ctx, &ServiceView::of_source(ctx, source))
            .into_iter()
            .map(|port| port_config(ctx, source, port))
            .collect(),
        RouteScope::Gateway(scope) => scope
            .ports
            .iter()
            .map(|&(port, bound)| gateway(ctx, scope, port, bound))
            .chain(
                scope
                    .https
                    .iter()
                    .filter_map(|s| https_server(ctx, scope, *s)),
            )
            .collect(),
    }
}

/// Ports that some service of `view` serves as HTTP: each gets a
/// REDIRECT-mode listener `0.0.0.0_PORT` and route config `PORT`.
pub fn outbound_http_ports(ctx: &PushContext, view: &ServiceView) -> BTreeSet<u32> {
    ctx.registry
        .services
        .values()
        .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
        .filter(|(s, p)| p.protocol.is_http() && view.sees_port(ctx, s, p.number))
        .map(|(_, p)| p.number)
        .collect()
}

/// The inline route config of an inbound HTTP listener: everything to the
/// app, no timeout (the caller's sidecar has the route's), and Istio's
/// inbound retry of requests the app never saw, except for gRPC.
pub fn inbound_route_config(port: u32, protocol: Protocol) -> RouteConfiguration {
    let cluster = names::inbound_cluster(port);
    RouteConfiguration {
        name: cluster.clone(),
        virtual_hosts: vec![VirtualHost {
            name: format!("inbound|http|{port}"),
            domains: vec!["*".to_string()],
            routes: vec![Route {
                name: "default".to_string(),
                r#match: Some(prefix_match("/")),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster)),
                    timeout: Some(seconds(0)),
                    max_stream_duration: Some(route_action::MaxStreamDuration {
                        max_stream_duration: Some(seconds(0)),
                        grpc_timeout_header_max: Some(seconds(0)),
                        ..Default::default()
                    }),
                    retry_policy: (protocol != Protocol::Grpc).then(policy::inbound_retry_policy),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Who a route is generated for: the mesh's sidecars of a source, or one
/// gateway.
struct Context<'a> {
    push: &'a PushContext,
    source: &'a Source,
    /// `(namespace, name)` of the gateway, `None` for sidecars.
    gateway: Option<(&'a str, &'a str)>,
    /// The port of the virtual host.
    port: u32,
    /// The listener terminates TLS (a gateway's HTTPS server): redirects
    /// keep `https`.
    tls: bool,
}

/// The sidecar routes of a service port: from the mesh VirtualServices
/// whose hosts match (looked up by host in the push's index), else one
/// default route to the service.
fn service_routes(svc: &Service, ctx: &Context<'_>) -> Vec<Route> {
    let mut routes = Vec::new();
    for bound in ctx
        .push
        .mesh_virtual_services_for(&svc.hostname, &ctx.source.namespace)
    {
        routes.extend(vs_routes(&bound.vs, ctx));
    }
    if routes.is_empty() {
        routes.push(default_route(ctx.port, &svc.hostname, ctx));
    }
    routes
}

/// Route config `PORT` of a REDIRECT-mode sidecar: a virtual host per
/// service with an HTTP port `PORT`, then `allow_any` or `block_all`.
fn port_config(push: &PushContext, source: &Source, port: u32) -> RouteConfiguration {
    let ctx = Context {
        push,
        source,
        gateway: None,
        port,
        tls: false,
    };
    let view = ServiceView::of_source(push, source);
    let mut seen = HashSet::new();
    let mut vhosts = Vec::new();
    for svc in push.registry.services.values() {
        if !view.sees_port(push, svc, port) {
            continue;
        }
        if !svc.port(port).is_some_and(|p| p.protocol.is_http()) {
            continue;
        }
        let mut domains = domains(svc, port, &source.namespace, true);
        for vip in &svc.addresses {
            domains.push(vip.clone());
            domains.push(format!("{vip}:{port}"));
        }
        let domains: Vec<String> = domains
            .into_iter()
            .filter(|d| seen.insert(d.clone()))
            .collect();
        if domains.is_empty() {
            continue;
        }
        vhosts.push(service_vhost(
            format!("{}:{port}", svc.hostname),
            domains,
            service_routes(svc, &ctx),
        ));
    }
    vhosts.push(fallthrough(source.outbound_mode(push)));
    RouteConfiguration {
        name: names::outbound_route(port),
        virtual_hosts: vhosts,
        ..Default::default()
    }
}

/// A virtual host of services: the upstream learns each attempt's number
/// (`x-envoy-attempt-count`), as Istio sets it.
fn service_vhost(name: String, domains: Vec<String>, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name,
        domains,
        routes,
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// The last virtual host of a port config: unknown hosts pass through
/// (`ALLOW_ANY`) or get a 502 (`REGISTRY_ONLY`), marked with why.
fn fallthrough(mode: OutboundMode) -> VirtualHost {
    let (name, action, metadata) = match mode {
        OutboundMode::AllowAny => (
            names::ALLOW_ANY_VHOST,
            route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    names::PASSTHROUGH_CLUSTER.to_string(),
                )),
                timeout: Some(seconds(0)),
                #[allow(deprecated)]
                max_grpc_timeout: Some(seconds(0)),
                ..Default::default()
            }),
            None,
        ),
        OutboundMode::RegistryOnly => (
            names::BLOCK_ALL_VHOST,
            route::Action::DirectResponse(DirectResponseAction {
                status: 502,
                ..Default::default()
            }),
            Some(reason_metadata(super::cluster::BLACKHOLE_REASON)),
        ),
    };
    VirtualHost {
        name: name.to_string(),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: name.to_string(),
            r#match: Some(prefix_match("/")),
            action: Some(action),
            metadata,
            ..Default::default()
        }],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

fn http_proxy(push: &PushContext, source: &Source) -> RouteConfiguration {
    let view = ServiceView::of_source(push, source);
    let mut seen = HashSet::new();
    let mut vhosts = Vec::new();
    for svc in push
        .registry
        .services
        .values()
        .filter(|s| view.sees(push, s))
    {
        let http_ports: Vec<u32> = svc
            .ports
            .iter()
            .filter(|p| p.protocol.is_http() && view.sees_port(push, svc, p.number))
            .map(|p| p.number)
            .collect();
        // Bare host names (no port) can only go to one port of a service.
        let bare = http_ports
            .iter()
            .copied()
            .find(|p| *p == 80)
            .or(http_ports.first().copied());
        for &port in &http_ports {
            let ctx = Context {
                push,
                source,
                gateway: None,
                port,
                tls: false,
            };
            let domains: Vec<String> = domains(svc, port, &source.namespace, bare == Some(port))
                .into_iter()
                .filter(|d| seen.insert(d.clone()))
                .collect();
            if domains.is_empty() {
                continue;
            }
            vhosts.push(service_vhost(
                format!("{}:{port}", svc.hostname),
                domains,
                service_routes(svc, &ctx),
            ));
        }
    }
    RouteConfiguration {
        name: names::HTTP_PROXY_ROUTE.to_string(),
        virtual_hosts: vhosts,
        ..Default::default()
    }
}

/// Domains of a service port: the host, its short forms `NAME.NS` and
/// `NAME.NS.svc`, and `NAME` for proxies of the service's namespace (as
/// Istio, which resolves them in the proxy's DNS domain); each with `:PORT`,
/// and bare when `bare`.
fn domains(svc: &Service, port: u32, proxy_ns: &str, bare: bool) -> Vec<String> {
    let host = &svc.hostname;
    let mut names = vec![host.clone()];
    let ns_suffix = format!(".{}{SVC_SUFFIX}", svc.namespace);
    if let Some(short) = host.strip_suffix(&ns_suffix) {
        if svc.namespace == proxy_ns {
            names.push(short.to_string());
        }
        names.push(format!("{short}.{}", svc.namespace));
        names.push(format!("{short}.{}.svc", svc.namespace));
    }
    let mut out = Vec::new();
    for n in names {
        if bare {
            out.push(n.clone());
        }
        out.push(format!("{n}:{port}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Discovery;

    fn service(host: &str, namespace: &str) -> Service {
        Service {
            hostname: host.to_string(),
            namespace: namespace.to_string(),
            source: format!("{namespace}/x"),
            addresses: Vec::new(),
            cidrs: Vec::new(),
            ports: Vec::new(),
            discovery: Discovery::Eds,
            external: false,
            export_to: Vec::new(),
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn short_forms_with_the_namespace_reach_other_namespaces() {
        let svc = service("reviews.prod.svc.cluster.local", "prod");
        assert_eq!(
            domains(&svc, 9080, "default", false),
            [
                "reviews.prod.svc.cluster.local:9080",
                "reviews.prod:9080",
                "reviews.prod.svc:9080"
            ]
        );
        assert_eq!(
            domains(&svc, 9080, "prod", true),
            [
                "reviews.prod.svc.cluster.local",
                "reviews.prod.svc.cluster.local:9080",
                "reviews",
                "reviews:9080",
                "reviews.prod",
                "reviews.prod:9080",
                "reviews.prod.svc",
                "reviews.prod.svc:9080"
            ]
        );
        // Hosts outside the cluster domain have no short forms.
        let ext = service("api.example.com", "prod");
        assert_eq!(domains(&ext, 80, "prod", false), ["api.example.com:80"]);
    }
}

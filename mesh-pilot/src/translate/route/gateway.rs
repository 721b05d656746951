//! Gateway route configs: `http.P` for the plain HTTP servers on port P
//! of the Gateways of a [`GatewayScope`], and `https.P.NAME.GATEWAY.NS` for
//! each HTTPS server; virtual hosts from the VirtualServices bound to the
//! servers' Gateways, domains from the server hosts. A server with
//! `httpsRedirect` makes its virtual hosts require TLS (a 301 to https).

use mesh_api::names;
use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::route::v3::{
    virtual_host::TlsRequirementType, Route, RouteConfiguration, VirtualHost,
};
use mesh_api::hosts_overlap;

use super::http::vs_routes;
use super::Context;
use crate::push::PushContext;
use crate::translate::gateways::{ServerKind, ServerRef};
use crate::translate::scope::GatewayScope;

/// Route config `http.PORT` of the gateways of `scope`, whose server port
/// `port` is bound to `bound`: every plain HTTP server on that port.
pub(super) fn gateway(
    push: &PushContext,
    scope: &GatewayScope,
    port: u32,
    bound: u32,
) -> RouteConfiguration {
    let servers: Vec<ServerRef<'_>> = scope
        .servers(push)
        .into_iter()
        .filter(|s| s.port == port && s.kind == ServerKind::Http)
        .collect();
    route_config(
        push,
        scope,
        &servers,
        bound,
        names::gateway_route(port),
        false,
    )
}

/// Route config `https.PORT.NAME.GATEWAY.NS` of one HTTPS server.
pub(super) fn https_server(
    push: &PushContext,
    scope: &GatewayScope,
    (port, bound, gateway, index): (u32, u32, usize, usize),
) -> Option<RouteConfiguration> {
    let server = scope
        .servers(push)
        .into_iter()
        .find(|s| s.port == port && s.gateway.id == gateway && s.index == index)?;
    let name = server.https_route_name();
    Some(route_config(push, scope, &[server], bound, name, true))
}

/// A route config from `servers` (all on one port): for each VirtualService
/// bound to a server's Gateway, a virtual host per host of it that overlaps
/// a server host, with the VirtualService's routes.
fn route_config(
    push: &PushContext,
    scope: &GatewayScope,
    servers: &[ServerRef<'_>],
    bound: u32,
    name: String,
    tls: bool,
) -> RouteConfiguration {
    let port = servers.first().map_or(0, |s| s.port);
    // Virtual hosts by domain, routes appended in config order.
    let mut by_host: BTreeMap<String, (Vec<Route>, bool)> = BTreeMap::new();
    let mut seen_gateways = HashSet::new();
    for gw in servers.iter().map(|s| s.gateway) {
        if !seen_gateways.insert(gw.id) {
            continue;
        }
        let (namespace, gw_name) = (gw.gateway.namespace, gw.gateway.name);
        let own: Vec<&ServerRef<'_>> = servers.iter().filter(|s| s.gateway.id == gw.id).collect();
        let ctx = Context {
            push,
            source: &scope.source,
            gateway: Some((namespace, gw_name)),
            port,
            tls,
        };
        for bound_vs in push.gateway_virtual_services(gw, &scope.source.namespace) {
            let vs = &bound_vs.vs;
            // Each domain the VirtualService's hosts and the server hosts
            // have in common, once, with whether plain HTTP to it is
            // redirected: the server whose host names it most specifically
            // decides.
            let mut domains: BTreeMap<&str, ((bool, usize), bool)> = BTreeMap::new();
            for h in bound_vs.hosts {
                for s in &own {
                    for host in &s.server.hosts {
                        let (ns, sh) = split_namespace(host, namespace);
                        if !(ns.is_none_or(|ns| ns == vs.namespace) && hosts_overlap(sh, h)) {
                            continue;
                        }
                        let rank = (!sh.starts_with('*'), sh.len());
                        let entry = domains
                            .entry(more_specific(sh, h))
                            .or_insert((rank, s.https_redirect()));
                        if rank > entry.0 {
                            *entry = (rank, s.https_redirect());
                        }
                    }
                }
            }
            let hosts: Vec<(&str, bool)> = domains
                .into_iter()
                .map(|(domain, (_, redirect))| (domain, redirect))
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let routes = vs_routes(vs, &ctx);
            if routes.is_empty() {
                // Only tcp/tls routes, or none of its matches apply here.
                continue;
            }
            for (h, redirect) in hosts {
                let entry = by_host.entry(h.to_string()).or_default();
                entry.0.extend(routes.iter().cloned());
                entry.1 |= redirect;
            }
        }
    }
    let mut seen = HashSet::new();
    let virtual_hosts = by_host
        .into_iter()
        .filter_map(|(host, (routes, redirect))| {
            let mut domains = vec![host.clone()];
            if host != "*" {
                domains.push(format!("{host}:{port}"));
                domains.push(format!("{host}:{bound}"));
            }
            let domains: Vec<String> = domains
                .into_iter()
                .filter(|d| seen.insert(d.clone()))
                .collect();
            (!domains.is_empty()).then(|| VirtualHost {
                name: format!("{host}:{port}"),
                domains,
                routes,
                require_tls: if redirect {
                    TlsRequirementType::All as i32
                } else {
                    TlsRequirementType::None as i32
                },
                include_request_attempt_count: true,
                ..Default::default()
            })
        })
        .collect();
    RouteConfiguration {
        name,
        virtual_hosts,
        ..Default::default()
    }
}

/// A Gateway server host -> (the namespace its VirtualServices must be in,
/// `None` for any; the host): `ns/host` is namespace `ns`, `./host` the
/// Gateway's own namespace, `*/host` and a bare `host` any namespace.
fn split_namespace<'a>(host: &'a str, gateway_namespace: &'a str) -> (Option<&'a str>, &'a str) {
    match host.split_once('/') {
        None => (None, host),
        Some(("*", h)) => (None, h),
        Some((".", h)) => (Some(gateway_namespace), h),
        Some((ns, h)) => (Some(ns), h),
    }
}

/// Of two overlapping host patterns, the one matching fewer hosts.
fn more_specific<'a>(a: &'a str, b: &'a str) -> &'a str {
    match (a.starts_with('*'), b.starts_with('*')) {
        (true, false) => b,
        (false, true) => a,
        _ if a.len() >= b.len() => a,
        _ => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{NodeMetadata, Proxy};
    use crate::source::snapshot_from_str;
    use std::sync::Arc;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [prod/a.example.com, ./b.example.com, "*/c.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: prod}
spec:
  hosts: [a.example.com, b.example.com, c.example.com]
  gateways: [istio-system/gw]
  http: [{directResponse: {status: 200}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: istio-system}
spec:
  hosts: [a.example.com, b.example.com]
  gateways: [gw]
  http: [{directResponse: {status: 201}}]
"#;

    #[test]
    fn server_host_namespaces_restrict_the_bound_virtual_services() {
        let push = PushContext::new(Arc::new(snapshot_from_str("gw.yaml", CONFIG).unwrap()));
        let mut meta = NodeMetadata::default();
        meta.labels
            .insert("istio".to_string(), "ingressgateway".to_string());
        let proxy = Proxy::parse(
            "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
            &meta,
        )
        .unwrap();
        let scope = GatewayScope::of(&push, &proxy);
        assert_eq!(scope.ports, [(80, 80)]);
        assert!(scope.https.is_empty());
        let rc = gateway(&push, &scope, 80, 80);
        let routes: Vec<(String, Vec<String>)> = rc
            .virtual_hosts
            .iter()
            .map(|vh| {
                let names = vh.routes.iter().map(|r| r.name.clone()).collect();
                (vh.name.clone(), names)
            })
            .collect();
        let want = |h: &str, vs: &str| (format!("{h}:80"), vec![format!("{vs}.http[0]")]);
        assert_eq!(
            routes,
            vec![
                want("a.example.com", "a"),
                want("b.example.com", "b"),
                want("c.example.com", "a"),
            ]
        );
    }
}

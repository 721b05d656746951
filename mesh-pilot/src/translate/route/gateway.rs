//! Gateway route configs `http.P`: virtual hosts from the VirtualServices
//! bound to the Gateways of a [`GatewayScope`], domains from the server
//! hosts.

use mesh_api::names;
use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use mesh_api::hosts_overlap;

use super::http::vs_routes;
use super::Context;
use crate::push::PushContext;
use crate::translate::scope::GatewayScope;

/// Route config `http.PORT` of the gateways of `scope`, whose server port
/// `port` is bound to `bound`.
pub(super) fn gateway(
    push: &PushContext,
    scope: &GatewayScope,
    port: u32,
    bound: u32,
) -> RouteConfiguration {
    // Virtual hosts by domain, routes appended in config order.
    let mut by_host: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for gw in scope.gateways.iter().filter_map(|id| push.gateway(*id)) {
        let (namespace, name) = (gw.gateway.namespace, gw.gateway.name);
        let server_hosts: Vec<(Option<&str>, &str)> = gw
            .gateway
            .spec
            .servers
            .iter()
            .filter(|s| s.port.as_ref().is_some_and(|p| p.number == port))
            .flat_map(|s| s.hosts.iter().map(|h| split_namespace(h, namespace)))
            .collect();
        if server_hosts.is_empty() {
            continue;
        }
        let ctx = Context {
            push,
            source: &scope.source,
            gateway: Some((namespace, name)),
            port,
        };
        for bound_vs in push.gateway_virtual_services(gw) {
            let vs = &bound_vs.vs;
            let hosts: Vec<&str> = bound_vs
                .hosts
                .iter()
                .filter_map(|h| {
                    let (_, sh) = server_hosts.iter().find(|(ns, sh)| {
                        ns.is_none_or(|ns| ns == vs.namespace) && hosts_overlap(sh, h)
                    })?;
                    Some(more_specific(sh, h))
                })
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let routes = vs_routes(vs, &ctx);
            for h in hosts {
                by_host
                    .entry(h.to_string())
                    .or_default()
                    .extend(routes.iter().cloned());
            }
        }
    }
    let mut seen = HashSet::new();
    let virtual_hosts = by_host
        .into_iter()
        .filter_map(|(host, routes)| {
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
                ..Default::default()
            })
        })
        .collect();
    RouteConfiguration {
        name: names::gateway_route(port),
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

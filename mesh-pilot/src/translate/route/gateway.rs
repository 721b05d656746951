//! Gateway route configs `http.P`: virtual hosts from the VirtualServices
//! bound to the proxy's Gateways, domains from the server hosts.

use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use mesh_api::hosts_overlap;

use super::http::{vs_hosts, vs_routes};
use super::{gateway_route_name, Context};
use crate::proxy::Proxy;
use crate::registry::Registry;
use crate::source::ConfigSnapshot;
use crate::translate::listener::selected_gateways;

pub(super) fn gateway(
    config: &ConfigSnapshot,
    registry: &Registry,
    proxy: &Proxy,
    port: u32,
) -> RouteConfiguration {
    let bound = proxy.gateway_port(port);
    // Virtual hosts by domain, routes appended in config order.
    let mut by_host: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for gw in selected_gateways(config, proxy) {
        let key = format!("{}/{}", gw.namespace, gw.name);
        let server_hosts: Vec<&str> = gw
            .spec
            .servers
            .iter()
            .filter(|s| s.port.as_ref().is_some_and(|p| p.number == port))
            .flat_map(|s| s.hosts.iter().map(|h| strip_namespace(h)))
            .collect();
        if server_hosts.is_empty() {
            continue;
        }
        let ctx = Context {
            proxy,
            registry,
            gateway: Some(&key),
            port,
        };
        for vs in config.virtual_services() {
            if !vs
                .spec
                .gateways
                .iter()
                .any(|g| gateway_ref(g, vs.namespace) == key)
            {
                continue;
            }
            let hosts: Vec<String> = vs_hosts(&vs)
                .filter_map(|h| {
                    let sh = server_hosts.iter().find(|sh| hosts_overlap(sh, &h))?;
                    Some(more_specific(sh, &h).to_string())
                })
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let routes = vs_routes(&vs, &ctx);
            for h in hosts {
                by_host.entry(h).or_default().extend(routes.iter().cloned());
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
        name: gateway_route_name(port),
        virtual_hosts,
        ..Default::default()
    }
}

/// `ns/host`, `./host`, `*/host` in a Gateway server -> `host`.
fn strip_namespace(host: &str) -> &str {
    host.split_once('/').map_or(host, |(_, h)| h)
}

/// A VirtualService's `gateways` entry as `namespace/name`.
pub(super) fn gateway_ref(entry: &str, vs_namespace: &str) -> String {
    if entry.contains('/') {
        entry.to_string()
    } else {
        format!("{vs_namespace}/{entry}")
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

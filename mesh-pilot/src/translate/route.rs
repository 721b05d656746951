//! RDS: route configurations. A NONE-mode sidecar gets `http_proxy` (every
//! HTTP service port, one virtual host each); a gateway gets `http.P` per
//! HTTP server port, from the VirtualServices bound to its Gateways; inbound
//! listeners carry an inline `inbound|PORT||` config.
//!
//! VirtualService `http[i]` with k matches becomes k routes named
//! `VSNAME.http[i]` (docs/architecture.md, "Routes (RDS)").

use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, weighted_cluster, HeaderMatcher, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use mesh_api::{
    fqdn, host_matches, hosts_overlap, HttpMatchRequest, HttpRoute, VirtualServiceSpec,
};

use super::filters::{duration, seconds};
use super::listener::{gateway_http_ports, selected_gateways};
use super::{inbound_cluster_name, outbound_cluster_name};
use crate::proxy::{InterceptionMode, Proxy, ProxyKind};
use crate::registry::{labels_match, Registry, Service};
use crate::source::{ConfigSnapshot, Named};

/// Name of the NONE-mode sidecar's outbound route config.
pub const HTTP_PROXY_ROUTE: &str = "http_proxy";
/// The `gateways` entry that means "the sidecars of the mesh".
const MESH: &str = "mesh";
/// Cluster DNS suffix of short-name domains.
const SVC_SUFFIX: &str = ".svc.cluster.local";

/// Istio's gateway route config name for server port `port`.
pub fn gateway_route_name(port: u32) -> String {
    format!("http.{port}")
}

/// All route configs of `proxy`.
pub fn route_configs(
    config: &ConfigSnapshot,
    registry: &Registry,
    proxy: &Proxy,
) -> Vec<RouteConfiguration> {
    match proxy.kind {
        ProxyKind::Sidecar
            if proxy.interception_mode == InterceptionMode::None
                && proxy.http_proxy_port.is_some() =>
        {
            vec![http_proxy(config, registry, proxy)]
        }
        ProxyKind::Sidecar => Vec::new(),
        ProxyKind::Router => gateway_http_ports(config, proxy)
            .into_keys()
            .map(|port| gateway(config, registry, proxy, port))
            .collect(),
    }
}

/// The inline route config of an inbound HTTP listener.
pub fn inbound_route_config(port: u32) -> RouteConfiguration {
    let cluster = inbound_cluster_name(port);
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
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Who a route is generated for: the mesh's sidecars or one gateway.
struct Context<'a> {
    proxy: &'a Proxy,
    registry: &'a Registry,
    /// `namespace/name` of the gateway, `None` for sidecars.
    gateway: Option<&'a str>,
    /// The port of the virtual host.
    port: u32,
}

fn http_proxy(config: &ConfigSnapshot, registry: &Registry, proxy: &Proxy) -> RouteConfiguration {
    let mesh_vs: Vec<_> = config
        .virtual_services()
        .filter(|vs| vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == MESH))
        .collect();
    let mut seen = HashSet::new();
    let mut vhosts = Vec::new();
    for svc in registry.services.values() {
        let http_ports: Vec<u32> = svc
            .ports
            .iter()
            .filter(|p| p.protocol.is_http())
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
                proxy,
                registry,
                gateway: None,
                port,
            };
            let mut routes = Vec::new();
            for vs in &mesh_vs {
                if vs_hosts(vs).any(|h| host_matches(&h, &svc.hostname)) {
                    routes.extend(vs_routes(vs, &ctx));
                }
            }
            if routes.is_empty() {
                routes.push(default_route(port, &svc.hostname));
            }
            let domains: Vec<String> = domains(svc, port, &proxy.namespace, bare == Some(port))
                .into_iter()
                .filter(|d| seen.insert(d.clone()))
                .collect();
            if domains.is_empty() {
                continue;
            }
            vhosts.push(VirtualHost {
                name: format!("{}:{port}", svc.hostname),
                domains,
                routes,
                ..Default::default()
            });
        }
    }
    RouteConfiguration {
        name: HTTP_PROXY_ROUTE.to_string(),
        virtual_hosts: vhosts,
        ..Default::default()
    }
}

/// Domains of a service port: the host and, for proxies of the service's
/// namespace, its short forms; each with `:PORT`, and bare when `bare`.
fn domains(svc: &Service, port: u32, proxy_ns: &str, bare: bool) -> Vec<String> {
    let host = &svc.hostname;
    let mut names = vec![host.clone()];
    let ns_suffix = format!(".{}{SVC_SUFFIX}", svc.namespace);
    if svc.namespace == proxy_ns {
        if let Some(short) = host.strip_suffix(&ns_suffix) {
            names.push(short.to_string());
            names.push(format!("{short}.{}", svc.namespace));
            names.push(format!("{short}.{}.svc", svc.namespace));
        }
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

fn gateway(
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
fn gateway_ref(entry: &str, vs_namespace: &str) -> String {
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

fn vs_hosts<'a>(vs: &'a Named<'a, VirtualServiceSpec>) -> impl Iterator<Item = String> + 'a {
    vs.spec.hosts.iter().map(move |h| fqdn(h, vs.namespace))
}

fn vs_routes(vs: &Named<'_, VirtualServiceSpec>, ctx: &Context<'_>) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, http) in vs.spec.http.iter().enumerate() {
        let Some(action) = route_action(http, vs.namespace, ctx) else {
            tracing::debug!(
                vs = vs.name,
                index = i,
                "http route without destinations not served yet"
            );
            continue;
        };
        let name = format!("{}.http[{i}]", vs.name);
        let route = |m: RouteMatch| Route {
            name: name.clone(),
            r#match: Some(m),
            action: Some(route::Action::Route(action.clone())),
            ..Default::default()
        };
        if http.matches.is_empty() {
            out.push(route(prefix_match("/")));
        }
        for m in http
            .matches
            .iter()
            .filter(|m| applies(m, vs.namespace, ctx))
        {
            out.push(route(route_match(m)));
        }
    }
    out
}

/// Whether a match's own conditions on who is asking hold for this context.
fn applies(m: &HttpMatchRequest, vs_namespace: &str, ctx: &Context<'_>) -> bool {
    let port_ok = m.port.is_none_or(|p| p == ctx.port);
    let gateway_ok = m.gateways.is_empty()
        || match ctx.gateway {
            None => m.gateways.iter().any(|g| g == MESH),
            Some(key) => m
                .gateways
                .iter()
                .any(|g| gateway_ref(g, vs_namespace) == key),
        };
    let source_ok = labels_match(&m.source_labels, &ctx.proxy.labels)
        && m.source_namespace
            .as_deref()
            .is_none_or(|ns| ns == ctx.proxy.namespace);
    port_ok && gateway_ok && source_ok
}

fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_string())),
        ..Default::default()
    }
}

fn route_match(m: &HttpMatchRequest) -> RouteMatch {
    use mesh_api::StringMatcher as M;
    let path_specifier = match m.uri.as_ref().and_then(|u| u.matcher()) {
        Some(M::Exact(p)) => route_match::PathSpecifier::Path(p.to_string()),
        Some(M::Prefix(p)) => route_match::PathSpecifier::Prefix(p.to_string()),
        Some(M::Regex(r)) => route_match::PathSpecifier::SafeRegex(regex(r)),
        None => route_match::PathSpecifier::Prefix("/".to_string()),
    };
    let mut headers: Vec<HeaderMatcher> = Vec::new();
    let pseudo = [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ];
    for (name, sm) in pseudo {
        if let Some(sm) = sm {
            headers.extend(header(name, sm, false));
        }
    }
    for (name, sm) in &m.headers {
        headers.extend(header(name, sm, false));
    }
    for (name, sm) in &m.without_headers {
        headers.extend(header(name, sm, true));
    }
    RouteMatch {
        path_specifier: Some(path_specifier),
        case_sensitive: m
            .ignore_uri_case
            .filter(|i| *i)
            .map(|_| BoolValue { value: false }),
        headers,
        ..Default::default()
    }
}

fn header(name: &str, sm: &mesh_api::StringMatch, invert: bool) -> Option<HeaderMatcher> {
    use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
    let m = string_matcher(sm)?;
    Some(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(m)),
        invert_match: invert,
        ..Default::default()
    })
}

fn string_matcher(sm: &mesh_api::StringMatch) -> Option<StringMatcher> {
    use mesh_api::StringMatcher as M;
    let pattern = match sm.matcher()? {
        M::Exact(s) => string_matcher::MatchPattern::Exact(s.to_string()),
        M::Prefix(s) => string_matcher::MatchPattern::Prefix(s.to_string()),
        M::Regex(s) => string_matcher::MatchPattern::SafeRegex(regex(s)),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

/// The action of an HTTP route: its destinations as one cluster or weighted
/// clusters. `None` when the route has no destination to forward to.
fn route_action(http: &HttpRoute, vs_namespace: &str, ctx: &Context<'_>) -> Option<RouteAction> {
    let dests: Vec<(String, u32)> = http
        .route
        .iter()
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            let host = fqdn(&dest.host, vs_namespace);
            let port = dest_port(dest, &host, ctx);
            let subset = dest.subset.as_deref().unwrap_or("");
            Some((
                outbound_cluster_name(port, subset, &host),
                d.weight.unwrap_or(0),
            ))
        })
        .collect();
    let cluster_specifier = match dests.as_slice() {
        [] => return None,
        [(one, _)] => route_action::ClusterSpecifier::Cluster(one.clone()),
        many => {
            // Envoy rejects weights summing to 0; validation should have
            // caught it, an even split is the least surprising fallback.
            let even = many.iter().all(|(_, w)| *w == 0);
            route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: many
                    .iter()
                    .map(|(name, w)| weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: Some(UInt32Value {
                            value: if even { 1 } else { *w },
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
    };
    Some(RouteAction {
        cluster_specifier: Some(cluster_specifier),
        timeout: Some(http.timeout.map_or(seconds(0), |t| duration(t.0))),
        ..Default::default()
    })
}

/// Destination port: as given, else the service's only port, else the port
/// the request came in on.
fn dest_port(dest: &mesh_api::Destination, host: &str, ctx: &Context<'_>) -> u32 {
    if let Some(p) = dest.port.filter(|p| p.number > 0) {
        return p.number;
    }
    match ctx.registry.service(host).map(|s| s.ports.as_slice()) {
        Some([only]) => only.number,
        _ => ctx.port,
    }
}

fn default_route(port: u32, host: &str) -> Route {
    Route {
        name: "default".to_string(),
        r#match: Some(prefix_match("/")),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                outbound_cluster_name(port, "", host),
            )),
            timeout: Some(seconds(0)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

//! L4 routes: a VirtualService's `tcp` routes (by port, destination subnet
//! and caller) and `tls` routes (by SNI) as filter chains ending in a
//! `tcp_proxy` to one cluster or weighted clusters. Sidecars use them for
//! their outbound TCP and TLS service ports, gateways for their TCP, TLS
//! and TLS-passthrough servers.
//!
//! ```text
//!  BoundVs.tcp[i] ─► applies(port, gateway, source)? ─► L4Chain { prefix_ranges?, tcp_proxy }
//!  BoundVs.tls[i] ─► each match: sniHosts            ─► L4Chain { server_names,  tcp_proxy }
//! ```
//!
//! First match wins, as for HTTP: chains are listed in route order and a
//! route without `destinationSubnets` takes every connection left.

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, FilterChainMatch};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::{weighted_cluster::ClusterWeight, ClusterSpecifier, WeightedCluster},
    TcpProxy,
};
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_api::types::virtual_service::RouteDestination;
use mesh_api::{fqdn, names, Destination};

use super::filters::{typed_config, TCP_PROXY};
use super::scope::Source;
use crate::push::index::{names_gateway, BoundVs, MESH_GATEWAY};
use crate::push::PushContext;

/// Who L4 routes are built for.
#[derive(Debug, Clone, Copy)]
pub struct L4Context<'a> {
    /// The push.
    pub push: &'a PushContext,
    /// `(namespace, name)` of the gateway, `None` for sidecars.
    pub gateway: Option<(&'a str, &'a str)>,
    /// The port the connections arrive for (service port or server port).
    pub port: u32,
    /// The caller, for `sourceLabels`/`sourceNamespace`; `None` on
    /// gateways, where the caller is outside the mesh.
    pub source: Option<&'a Source>,
    /// Access loggers of the tcp_proxy filters.
    pub access_log: &'a [AccessLog],
}

/// A filter chain of an L4 route.
#[derive(Debug, Clone, PartialEq)]
pub struct L4Chain {
    /// SNI names the chain takes (TLS routes).
    pub server_names: Vec<String>,
    /// Destination subnets the chain takes (TCP `destinationSubnets`).
    pub prefix_ranges: Vec<CidrRange>,
    /// The chain's `tcp_proxy`.
    pub filter: Filter,
}

impl L4Chain {
    /// As an Envoy filter chain.
    pub fn into_chain(self) -> FilterChain {
        let matcher =
            (!self.server_names.is_empty() || !self.prefix_ranges.is_empty()).then(|| {
                FilterChainMatch {
                    server_names: self.server_names,
                    prefix_ranges: self.prefix_ranges,
                    ..Default::default()
                }
            });
        FilterChain {
            filter_chain_match: matcher,
            filters: vec![self.filter],
            ..Default::default()
        }
    }
}

/// Whether a match's `gateways`, `port` and caller conditions hold here.
fn applies(
    ctx: &L4Context<'_>,
    vs_namespace: &str,
    gateways: &[String],
    port: Option<u32>,
    labels: &std::collections::BTreeMap<String, String>,
    namespace: Option<&str>,
) -> bool {
    let gateway_ok = gateways.is_empty()
        || match ctx.gateway {
            None => gateways.iter().any(|g| g == MESH_GATEWAY),
            Some(gw) => gateways.iter().any(|g| names_gateway(g, vs_namespace, gw)),
        };
    let source_ok = match ctx.source {
        Some(source) => source.holds(ctx.push, labels, namespace),
        // A gateway's callers are outside the mesh: no labels to match.
        None => labels.is_empty() && namespace.is_none(),
    };
    gateway_ok && port.is_none_or(|p| p == ctx.port) && source_ok
}

/// The chains of the `tcp` routes of `vss` that apply, in order; stops at
/// the first route that takes every connection.
pub fn tcp_chains(ctx: &L4Context<'_>, vss: &[BoundVs<'_>]) -> Vec<L4Chain> {
    let mut out = Vec::new();
    for bound in vss {
        let vs = &bound.vs;
        for route in &vs.spec.tcp {
            let matching: Vec<_> = route
                .matches
                .iter()
                .filter(|m| {
                    applies(
                        ctx,
                        vs.namespace,
                        &m.gateways,
                        m.port,
                        &m.source_labels,
                        m.source_namespace.as_deref(),
                    )
                })
                .collect();
            if !route.matches.is_empty() && matching.is_empty() {
                continue;
            }
            let filter = tcp_proxy_to(ctx, vs.namespace, &route.route);
            let subnets: Vec<CidrRange> = matching
                .iter()
                .flat_map(|m| m.destination_subnets.iter())
                .filter_map(|s| cidr(s))
                .collect();
            let catch_all = route.matches.is_empty()
                || matching.iter().any(|m| m.destination_subnets.is_empty());
            if catch_all {
                out.push(L4Chain {
                    server_names: Vec::new(),
                    prefix_ranges: Vec::new(),
                    filter,
                });
                return out;
            }
            out.push(L4Chain {
                server_names: Vec::new(),
                prefix_ranges: subnets,
                filter,
            });
        }
    }
    out
}

/// The chains of the `tls` routes of `vss` that apply: one per match, its
/// `sniHosts` (narrowed to `server_hosts` when given, a gateway server's
/// hosts) as the chain's server names and its `destinationSubnets` as the
/// chain's prefix ranges. An SNI name already taken by an earlier chain
/// for the same subnets is left out (first match wins).
pub fn tls_chains(
    ctx: &L4Context<'_>,
    vss: &[BoundVs<'_>],
    server_hosts: Option<&[&str]>,
) -> Vec<L4Chain> {
    let mut taken: Vec<(String, &[String])> = Vec::new();
    let mut out = Vec::new();
    for bound in vss {
        let vs = &bound.vs;
        for route in &vs.spec.tls {
            for m in &route.matches {
                if !applies(
                    ctx,
                    vs.namespace,
                    &m.gateways,
                    m.port,
                    &m.source_labels,
                    m.source_namespace.as_deref(),
                ) {
                    continue;
                }
                let names: Vec<String> = m
                    .sni_hosts
                    .iter()
                    .filter(|sni| {
                        server_hosts.is_none_or(|hosts| {
                            hosts.iter().any(|h| mesh_api::hosts_overlap(h, sni))
                        })
                    })
                    .filter(|sni| {
                        !taken.iter().any(|(t, subnets)| {
                            t == *sni && *subnets == m.destination_subnets.as_slice()
                        })
                    })
                    .cloned()
                    .collect();
                if names.is_empty() {
                    continue;
                }
                let subnets = m.destination_subnets.as_slice();
                taken.extend(names.iter().map(|n| (n.clone(), subnets)));
                out.push(L4Chain {
                    server_names: names,
                    prefix_ranges: subnets.iter().filter_map(|s| cidr(s)).collect(),
                    filter: tcp_proxy_to(ctx, vs.namespace, &route.route),
                });
            }
        }
    }
    out
}

/// A `tcp_proxy` to the route's destinations: one cluster, or weighted
/// clusters (weight 0 destinations left out).
pub fn tcp_proxy_to(ctx: &L4Context<'_>, vs_namespace: &str, dests: &[RouteDestination]) -> Filter {
    let clusters: Vec<(String, u32)> = dests
        .iter()
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            Some((cluster(ctx, dest, vs_namespace), d.weight.unwrap_or(0)))
        })
        .collect();
    let specifier = match clusters.as_slice() {
        [(one, _)] => ClusterSpecifier::Cluster(one.clone()),
        many => ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: many
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(|(name, weight)| ClusterWeight {
                    name: name.clone(),
                    weight: *weight,
                    ..Default::default()
                })
                .collect(),
        }),
    };
    let stat_prefix = match &specifier {
        ClusterSpecifier::Cluster(c) => c.clone(),
        ClusterSpecifier::WeightedClusters(_) => format!("tcp_{}", ctx.port),
    };
    let tcp = TcpProxy {
        stat_prefix,
        cluster_specifier: Some(specifier),
        access_log: ctx.access_log.to_vec(),
        ..Default::default()
    };
    Filter {
        name: TCP_PROXY.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(typed_config(&tcp))),
    }
}

/// `outbound|PORT|SUBSET|HOST` of an L4 destination; the port is the
/// destination's, else the service's only port, else the connection's.
fn cluster(ctx: &L4Context<'_>, dest: &Destination, vs_namespace: &str) -> String {
    let host = fqdn(&dest.host, vs_namespace);
    let port = match dest.port.as_ref().filter(|p| p.number > 0) {
        Some(p) => p.number,
        None => match ctx.push.registry.service(&host).map(|s| s.ports.as_slice()) {
            Some([only]) => only.number,
            _ => ctx.port,
        },
    };
    names::outbound_cluster(port, dest.subset.as_deref().unwrap_or(""), &host)
}

/// `a.b.c.d/n` (or an address alone, a host route) as a CIDR range.
pub fn cidr(text: &str) -> Option<CidrRange> {
    let (ip, len) = match text.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u32>().ok()?),
        None => (text, if text.contains(':') { 128 } else { 32 }),
    };
    ip.parse::<std::net::IpAddr>().ok()?;
    Some(CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: Some(UInt32Value { value: len }),
    })
}

//! LDS for a sidecar in REDIRECT mode (transparent capture, issue 3): what
//! `mesh-proxy init`'s iptables rules send to 15001 and 15006 is dispatched
//! by original destination (docs/architecture.md, "sidecar in REDIRECT
//! mode"). Everything outbound is the same for every capturing sidecar
//! (shared mesh-wide); `virtualInbound` is each sidecar's own.
//!
//! ```text
//!  app ─► iptables ─► virtualOutbound :15001 ─(orig dst)─► 0.0.0.0_PORT (HTTP, RDS "PORT")
//!                                                       ├► VIP_PORT     (TCP, tcp_proxy)
//!                                                       ├► VIP_PORT     (TLS, by SNI)
//!                                                       └► default: Passthrough / BlackHole
//!  peer ─► iptables ─► virtualInbound :15006 ─(destination_port)─► inbound|PORT|| ─► app
//! ```

use mesh_api::names;
use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::access_log::access_logs;
use super::filters::{
    chain, http_connection_manager, socket, tcp_proxy, typed_config, HcmOptions, Routes,
};
use super::route::{inbound_route_config, outbound_http_ports};
use super::scope::{ServiceView, Source};
use super::tcp::{cidr, tcp_chains, tls_chains, L4Chain, L4Context};
use crate::mesh_config::OutboundMode;
use crate::proxy::Proxy;
use crate::push::PushContext;
use crate::registry::Protocol;
use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;

const ORIGINAL_DST: &str = "envoy.filters.listener.original_dst";
const HTTP_INSPECTOR: &str = "envoy.filters.listener.http_inspector";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
const ANY_IP: &str = "0.0.0.0";

/// The outbound listeners of the REDIRECT-mode sidecars of `source`:
/// `virtualOutbound` and the per-port listeners it hands connections to.
pub fn outbound_listeners(ctx: &PushContext, source: &Source) -> Vec<Listener> {
    let registry = &ctx.registry;
    let unknown = match source.outbound_mode(ctx) {
        OutboundMode::AllowAny => names::PASSTHROUGH_CLUSTER,
        OutboundMode::RegistryOnly => names::BLACKHOLE_CLUSTER,
    };
    let logs = access_logs(&ctx.config.mesh);
    let hcm = HcmOptions {
        access_log: logs.clone(),
        ..HcmOptions::default()
    };
    let mut out = vec![virtual_outbound(unknown, &logs)];
    let mut names: BTreeSet<String> = BTreeSet::new();
    for port in outbound_http_ports(ctx, &ServiceView::of_source(ctx, source)) {
        let name = names::listener_name(ANY_IP, port);
        names.insert(name.clone());
        out.push(Listener {
            name,
            address: Some(socket(ANY_IP, port)),
            bind_to_port: Some(BoolValue { value: false }),
            listener_filters: vec![listener_filter(
                HTTP_INSPECTOR,
                typed_config(&HttpInspector::default()),
            )],
            filter_chains: vec![FilterChain {
                filter_chain_match: Some(FilterChainMatch {
                    application_protocols: vec!["http/1.1".to_string(), "h2c".to_string()],
                    ..Default::default()
                }),
                ..chain(http_connection_manager(
                    &format!("outbound_{ANY_IP}_{port}"),
                    Routes::Rds(names::outbound_route(port)),
                    &hcm,
                ))
            }],
            default_filter_chain: Some(chain(tcp_proxy(unknown, unknown, &logs))),
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    // TCP and TLS services: one listener per VIP (or 0.0.0.0) and port,
    // with the chains of the service's tcp or tls routes (else one chain
    // to its cluster); services with CIDR `addresses` add chains matching
    // those ranges to `0.0.0.0_PORT`.
    let mut tcp: BTreeMap<(String, u32), (Vec<FilterChain>, bool)> = BTreeMap::new();
    let mut tls: BTreeMap<(String, u32), Vec<FilterChain>> = BTreeMap::new();
    let view = ServiceView::of_source(ctx, source);
    for svc in registry.services.values().filter(|s| view.sees(ctx, s)) {
        let vss = ctx.mesh_virtual_services_for(&svc.hostname, &source.namespace);
        let mut ips: Vec<&str> = svc.addresses.iter().map(String::as_str).collect();
        if ips.is_empty() && svc.cidrs.is_empty() {
            ips.push(ANY_IP);
        }
        for port in svc
            .ports
            .iter()
            .filter(|p| !p.protocol.is_http() && view.sees_port(ctx, svc, p.number))
        {
            let cluster = names::outbound_cluster(port.number, "", &svc.hostname);
            let l4 = L4Context {
                push: ctx,
                gateway: None,
                port: port.number,
                source: Some(source),
                access_log: &logs,
            };
            if matches!(port.protocol, Protocol::Tls | Protocol::Https) {
                let mut chains: Vec<FilterChain> = tls_chains(&l4, &vss, None)
                    .into_iter()
                    .map(L4Chain::into_chain)
                    .collect();
                if chains.is_empty() {
                    chains.push(FilterChain {
                        filter_chain_match: Some(FilterChainMatch {
                            server_names: vec![svc.hostname.clone()],
                            ..Default::default()
                        }),
                        ..chain(tcp_proxy(&cluster, &cluster, &logs))
                    });
                }
                for ip in &ips {
                    tls.entry((ip.to_string(), port.number))
                        .or_default()
                        .extend(chains.iter().cloned());
                }
                continue;
            }
            let mut routed = tcp_chains(&l4, &vss);
            if routed.is_empty() {
                routed.push(L4Chain {
                    server_names: Vec::new(),
                    prefix_ranges: Vec::new(),
                    filter: tcp_proxy(&cluster, &cluster, &logs),
                });
            }
            for ip in &ips {
                let entry = tcp.entry((ip.to_string(), port.number)).or_default();
                if entry.1 {
                    tracing::debug!(ip, port = port.number, host = %svc.hostname, "listener taken by another service");
                    continue;
                }
                entry.1 = true;
                entry
                    .0
                    .extend(routed.iter().cloned().map(L4Chain::into_chain));
            }
            if !svc.cidrs.is_empty() {
                let ranges: Vec<_> = svc.cidrs.iter().filter_map(|c| cidr(c)).collect();
                let entry = tcp.entry((ANY_IP.to_string(), port.number)).or_default();
                // The CIDR chains go before a catch-all of another service.
                let at = entry.0.iter().position(|c| c.filter_chain_match.is_none());
                let chain = L4Chain {
                    server_names: Vec::new(),
                    prefix_ranges: ranges,
                    filter: routed[0].filter.clone(),
                }
                .into_chain();
                match at {
                    Some(i) => entry.0.insert(i, chain),
                    None => entry.0.push(chain),
                }
            }
        }
    }
    for ((ip, port), (chains, catch_all)) in tcp {
        let name = names::listener_name(&ip, port);
        if !names.insert(name.clone()) {
            tracing::debug!(%name, "TCP listener taken by an HTTP port");
            continue;
        }
        out.push(Listener {
            name,
            address: Some(socket(&ip, port)),
            bind_to_port: Some(BoolValue { value: false }),
            filter_chains: chains,
            // Only ranges: other addresses on the port are unknown.
            default_filter_chain: (!catch_all).then(|| chain(tcp_proxy(unknown, unknown, &logs))),
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    for ((ip, port), chains) in tls {
        let name = names::listener_name(&ip, port);
        if !names.insert(name.clone()) {
            tracing::debug!(%name, "TLS listener taken by another service");
            continue;
        }
        out.push(Listener {
            name,
            address: Some(socket(&ip, port)),
            bind_to_port: Some(BoolValue { value: false }),
            listener_filters: vec![listener_filter(
                TLS_INSPECTOR,
                typed_config(&TlsInspector::default()),
            )],
            filter_chains: chains,
            default_filter_chain: Some(chain(tcp_proxy(unknown, unknown, &logs))),
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    out
}

fn virtual_outbound(unknown: &str, logs: &[AccessLog]) -> Listener {
    Listener {
        name: names::VIRTUAL_OUTBOUND.to_string(),
        address: Some(socket(ANY_IP, u32::from(names::OUTBOUND_CAPTURE_PORT))),
        use_original_dst: Some(BoolValue { value: true }),
        listener_filters: vec![listener_filter(
            ORIGINAL_DST,
            typed_config(&OriginalDst::default()),
        )],
        default_filter_chain: Some(chain(tcp_proxy(unknown, unknown, logs))),
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    }
}

/// The sidecar's own `virtualInbound`: one chain per port it receives.
pub fn virtual_inbound(ctx: &PushContext, proxy: &Proxy) -> Listener {
    let logs = access_logs(&ctx.config.mesh);
    let hcm = HcmOptions {
        access_log: logs.clone(),
        ..HcmOptions::default()
    };
    let chains = ctx
        .inbound_ports(&proxy.ip.to_string())
        .iter()
        .map(|inbound| {
            let port = inbound.port;
            let cluster = names::inbound_cluster(port);
            let filter = if inbound.protocol.is_http() {
                http_connection_manager(
                    &format!("inbound_{ANY_IP}_{port}"),
                    Routes::Inline(Box::new(inbound_route_config(port, inbound.protocol))),
                    &hcm,
                )
            } else {
                tcp_proxy(&cluster, &cluster, &logs)
            };
            FilterChain {
                name: cluster.clone(),
                filter_chain_match: Some(FilterChainMatch {
                    destination_port: Some(UInt32Value { value: port }),
                    ..Default::default()
                }),
                ..chain(filter)
            }
        })
        .collect();
    Listener {
        name: names::VIRTUAL_INBOUND.to_string(),
        address: Some(socket(ANY_IP, u32::from(names::INBOUND_CAPTURE_PORT))),
        listener_filters: vec![listener_filter(
            ORIGINAL_DST,
            typed_config(&OriginalDst::default()),
        )],
        filter_chains: chains,
        default_filter_chain: Some(chain(tcp_proxy(
            names::INBOUND_PASSTHROUGH_CLUSTER,
            names::INBOUND_PASSTHROUGH_CLUSTER,
            &logs,
        ))),
        traffic_direction: TrafficDirection::Inbound as i32,
        ..Default::default()
    }
}

fn listener_filter(name: &str, config: envoy_types::pb::google::protobuf::Any) -> ListenerFilter {
    ListenerFilter {
        name: name.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh_config::{MeshConfig, OutboundMode, OutboundTrafficPolicy};
    use crate::source::snapshot_from_str;
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
        tcp_proxy::ClusterSpecifier, TcpProxy,
    };
    use prost::Message;
    use std::sync::Arc;

    const SE: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db}\nspec:\n  hosts: [db.example.com]\n  resolution: DNS\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n";

    fn default_cluster(l: &Listener) -> String {
        let chain = l.default_filter_chain.as_ref().expect("default chain");
        let Some(ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
            panic!("typed config")
        };
        match TcpProxy::decode(any.value.as_slice())
            .unwrap()
            .cluster_specifier
        {
            Some(ClusterSpecifier::Cluster(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_destinations_follow_the_outbound_policy() {
        for (mode, want) in [
            (OutboundMode::AllowAny, names::PASSTHROUGH_CLUSTER),
            (OutboundMode::RegistryOnly, names::BLACKHOLE_CLUSTER),
        ] {
            let mut config = snapshot_from_str("t.yaml", SE).unwrap();
            config.mesh = MeshConfig {
                outbound_traffic_policy: OutboundTrafficPolicy { mode },
                ..MeshConfig::default()
            };
            let push = PushContext::new(Arc::new(config));
            let source = Source {
                namespace: "default".into(),
                labels: Vec::new(),
                sidecar: None,
            };
            let ls = outbound_listeners(&push, &source);
            let outbound = ls
                .iter()
                .find(|l| l.name == names::VIRTUAL_OUTBOUND)
                .unwrap();
            assert_eq!(default_cluster(outbound), want);
            let db = ls.iter().find(|l| l.name == "0.0.0.0_5432").unwrap();
            assert_eq!(db.bind_to_port, Some(BoolValue { value: false }));
            assert!(
                db.listener_filters.is_empty(),
                "server-first ports must not wait for detection"
            );
        }
    }
}

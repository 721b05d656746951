//! LDS: the listeners of a sidecar in NONE (loopback) mode and of a
//! gateway; REDIRECT-mode sidecars get theirs from `capture.rs`.

use mesh_api::names;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::Listener;

use super::filters::{chain, http_connection_manager, socket, tcp_proxy, Routes};
use super::route::inbound_route_config;
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::registry::{labels_match, Protocol, Registry};
use crate::source::{ConfigSnapshot, Named};

/// All listeners of `proxy`.
pub fn listeners(config: &ConfigSnapshot, registry: &Registry, proxy: &Proxy) -> Vec<Listener> {
    match (proxy.proxy_type, proxy.interception_mode) {
        (ProxyType::Sidecar, InterceptionMode::None) => sidecar_none(registry, proxy),
        (ProxyType::Sidecar, InterceptionMode::Redirect) => {
            super::capture::listeners(config, registry, proxy)
        }
        (ProxyType::Router, _) => gateway(config, proxy),
    }
}

fn sidecar_none(registry: &Registry, proxy: &Proxy) -> Vec<Listener> {
    let ip = proxy.ip.to_string();
    let mut out = Vec::new();
    if let Some(port) = proxy.http_proxy_port {
        let port = u32::from(port);
        let name = names::listener_name(&ip, port);
        out.push(Listener {
            name: name.clone(),
            address: Some(socket(&ip, port)),
            filter_chains: vec![chain(http_connection_manager(
                &format!("outbound_{name}"),
                Routes::Rds(names::HTTP_PROXY_ROUTE.to_string()),
                true,
            ))],
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    for inbound in registry.inbound_ports(&ip) {
        let port = inbound.port;
        if proxy.http_proxy_port.map(u32::from) == Some(port) {
            tracing::warn!(node = %proxy.id, port, "inbound port is the HTTP proxy port; skipped");
            continue;
        }
        let cluster = names::inbound_cluster(port);
        let stat_prefix = format!("inbound_{ip}_{port}");
        let filter = if inbound.protocol.is_http() {
            http_connection_manager(
                &stat_prefix,
                Routes::Inline(Box::new(inbound_route_config(port))),
                false,
            )
        } else {
            tcp_proxy(&cluster, &cluster)
        };
        out.push(Listener {
            name: names::listener_name(&ip, port),
            address: Some(socket(&ip, port)),
            filter_chains: vec![chain(filter)],
            traffic_direction: TrafficDirection::Inbound as i32,
            ..Default::default()
        });
    }
    out
}

/// The Gateways whose selector labels the proxy carries, in config order.
pub fn selected_gateways<'a>(
    config: &'a ConfigSnapshot,
    proxy: &Proxy,
) -> Vec<Named<'a, mesh_api::GatewaySpec>> {
    config
        .gateways()
        .filter(|g| labels_match(&g.spec.selector, &proxy.labels))
        .collect()
}

/// Server ports of the proxy's Gateways that it serves as HTTP, by number.
pub fn gateway_http_ports(config: &ConfigSnapshot, proxy: &Proxy) -> BTreeMap<u32, Protocol> {
    let mut ports = BTreeMap::new();
    for gw in selected_gateways(config, proxy) {
        for server in &gw.spec.servers {
            let Some(port) = &server.port else { continue };
            let protocol = Protocol::parse(&port.protocol);
            if protocol.is_http() {
                ports.entry(port.number).or_insert(protocol);
            } else {
                tracing::debug!(
                    gateway = gw.name,
                    port = port.number,
                    "non-HTTP gateway server not served yet"
                );
            }
        }
    }
    ports
}

fn gateway(config: &ConfigSnapshot, proxy: &Proxy) -> Vec<Listener> {
    let bind_ip = match proxy.interception_mode {
        InterceptionMode::None => proxy.ip.to_string(),
        InterceptionMode::Redirect => "0.0.0.0".to_string(),
    };
    gateway_http_ports(config, proxy)
        .into_keys()
        .map(|port| {
            let bound = proxy.gateway_port(port);
            let name = format!("0.0.0.0_{bound}");
            Listener {
                name: name.clone(),
                address: Some(socket(&bind_ip, bound)),
                filter_chains: vec![chain(http_connection_manager(
                    &format!("outbound_{name}"),
                    Routes::Rds(names::gateway_route(port)),
                    false,
                ))],
                traffic_direction: TrafficDirection::Outbound as i32,
                ..Default::default()
            }
        })
        .collect()
}

//! LDS: the listeners of a sidecar in NONE (loopback) mode and of a
//! gateway, each the proxy's own (they are bound to its node IP and
//! ports); REDIRECT-mode sidecars get theirs from `capture.rs`.

use mesh_api::names;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::Listener;

use super::filters::{chain, http_connection_manager, socket, tcp_proxy, Routes};
use super::route::inbound_route_config;
use super::scope::GatewayScope;
use crate::proxy::{InterceptionMode, Proxy};
use crate::push::PushContext;

/// The listeners of a NONE-mode sidecar: the HTTP proxy listener on
/// `IP:HTTP_PROXY_PORT` and one per inbound port on the node IP.
pub fn sidecar_none(ctx: &PushContext, proxy: &Proxy) -> Vec<Listener> {
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
    for inbound in ctx.inbound_ports(&ip) {
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

/// The listeners of a gateway: `0.0.0.0_P'` per HTTP server port of the
/// Gateways that select it (P' the port P is bound to), on the node IP in
/// NONE mode, with RDS `http.P`.
pub fn gateway(proxy: &Proxy, scope: &GatewayScope) -> Vec<Listener> {
    let bind_ip = match proxy.interception_mode {
        InterceptionMode::None => proxy.ip.to_string(),
        InterceptionMode::Redirect => "0.0.0.0".to_string(),
    };
    scope
        .ports
        .iter()
        .map(|&(port, bound)| {
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

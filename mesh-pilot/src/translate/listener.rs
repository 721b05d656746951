//! LDS: the listeners of a sidecar in NONE (loopback) mode and of a
//! gateway, each the proxy's own (they are bound to its node IP and
//! ports); REDIRECT-mode sidecars get theirs from `capture.rs`.

use mesh_api::{hosts_overlap, names};

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};

use super::access_log::access_logs;
use super::filters::{
    chain, http_connection_manager, socket, tcp_proxy, tls_inspector, HcmOptions, Routes,
};
use super::gateways::ServerKind;
use super::route::inbound_route_config;
use super::scope::GatewayScope;
use super::tcp::{tcp_chains, tls_chains, L4Chain, L4Context};
use super::tls::downstream_tls;
use crate::proxy::{InterceptionMode, Proxy};
use crate::push::PushContext;

/// The listeners of a NONE-mode sidecar: the HTTP proxy listener on
/// `IP:HTTP_PROXY_PORT` and one per inbound port on the node IP.
pub fn sidecar_none(ctx: &PushContext, proxy: &Proxy) -> Vec<Listener> {
    let ip = proxy.ip.to_string();
    let logs = access_logs(&ctx.config.mesh);
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
                &HcmOptions {
                    absolute_urls: true,
                    access_log: logs.clone(),
                    ..HcmOptions::default()
                },
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
                Routes::Inline(Box::new(inbound_route_config(port, inbound.protocol))),
                &HcmOptions {
                    access_log: logs.clone(),
                    ..HcmOptions::default()
                },
            )
        } else {
            tcp_proxy(&cluster, &cluster, &logs)
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

/// The listeners of a gateway: `0.0.0.0_P'` per server port P of the
/// Gateways that select it (P' the port P is bound to, on the node IP in
/// NONE mode). Plain HTTP servers share one chain with RDS `http.P`; the
/// TLS servers of a port get a TLS inspector and chains by SNI: HTTPS
/// terminated here (RDS `https.P.NAME.GATEWAY.NS`), TLS terminated then
/// the VirtualServices' tcp routes, or TLS passed through to their tls
/// routes; TCP servers the tcp routes.
pub fn gateway(ctx: &PushContext, proxy: &Proxy, scope: &GatewayScope) -> Vec<Listener> {
    let logs = access_logs(&ctx.config.mesh);
    let hcm = HcmOptions {
        use_remote_address: true,
        access_log: logs.clone(),
        ..HcmOptions::default()
    };
    let bind_ip = match proxy.interception_mode {
        InterceptionMode::None => proxy.ip.to_string(),
        InterceptionMode::Redirect => "0.0.0.0".to_string(),
    };
    let servers = scope.servers(ctx);
    let mut out = Vec::new();
    let mut i = 0;
    while i < servers.len() {
        let port = servers[i].port;
        let end = servers[i..]
            .iter()
            .position(|s| s.port != port)
            .map_or(servers.len(), |n| i + n);
        let on_port = &servers[i..end];
        i = end;
        let bound = proxy.gateway_port(port);
        let name = format!("0.0.0.0_{bound}");
        let mut chains = Vec::new();
        let mut tls = false;
        if on_port.iter().any(|s| s.kind == ServerKind::Http) {
            chains.push(chain(http_connection_manager(
                &format!("outbound_{name}"),
                Routes::Rds(names::gateway_route(port)),
                &hcm,
            )));
        }
        for s in on_port.iter().filter(|s| s.kind != ServerKind::Http) {
            tls |= s.kind.is_tls();
            let l4 = L4Context {
                push: ctx,
                gateway: Some((s.gateway.gateway.namespace, s.gateway.gateway.name)),
                port,
                source: None,
                access_log: &logs,
            };
            let hosts: Vec<&str> = s
                .server
                .hosts
                .iter()
                .map(|h| h.split_once('/').map_or(h.as_str(), |(_, host)| host))
                .collect();
            let sni: Vec<String> = hosts
                .iter()
                .filter(|h| **h != "*")
                .map(|h| h.to_string())
                .collect();
            // A VirtualService serves a server whose hosts overlap its own.
            let vss: Vec<_> = ctx
                .gateway_virtual_services(s.gateway, &proxy.namespace)
                .into_iter()
                .filter(|b| {
                    b.hosts
                        .iter()
                        .any(|h| hosts.iter().any(|sh| hosts_overlap(sh, h)))
                })
                .collect();
            match s.kind {
                ServerKind::Https => {
                    let Some(socket) = s
                        .server
                        .tls
                        .as_ref()
                        .and_then(|t| downstream_tls(t, &["h2", "http/1.1"]))
                    else {
                        continue;
                    };
                    chains.push(FilterChain {
                        filter_chain_match: Some(FilterChainMatch {
                            server_names: sni,
                            ..Default::default()
                        }),
                        transport_socket: Some(socket),
                        ..chain(http_connection_manager(
                            &format!("outbound_{name}"),
                            Routes::Rds(s.https_route_name()),
                            &hcm,
                        ))
                    });
                }
                ServerKind::Tls => {
                    let Some(socket) = s.server.tls.as_ref().and_then(|t| downstream_tls(t, &[]))
                    else {
                        continue;
                    };
                    if let Some(route) = tcp_chains(&l4, &vss).into_iter().next() {
                        chains.push(FilterChain {
                            filter_chain_match: Some(FilterChainMatch {
                                server_names: sni,
                                ..Default::default()
                            }),
                            transport_socket: Some(socket),
                            filters: vec![route.filter],
                            ..Default::default()
                        });
                    }
                }
                ServerKind::Passthrough => {
                    chains.extend(
                        tls_chains(&l4, &vss, Some(&hosts))
                            .into_iter()
                            .map(L4Chain::into_chain),
                    );
                }
                ServerKind::Tcp => {
                    chains.extend(tcp_chains(&l4, &vss).into_iter().map(L4Chain::into_chain));
                }
                ServerKind::Http => {}
            }
        }
        if chains.is_empty() {
            continue;
        }
        out.push(Listener {
            name: name.clone(),
            address: Some(socket(&bind_ip, bound)),
            listener_filters: if tls {
                vec![tls_inspector()]
            } else {
                Vec::new()
            },
            filter_chains: chains,
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    out
}

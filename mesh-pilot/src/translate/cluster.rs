//! CDS: one cluster per (service port, subset) and Istio's
//! `BlackHoleCluster` / `PassthroughCluster`, the same for every proxy
//! (shared mesh-wide); inbound clusters to the sidecar's own app (plus
//! `InboundPassthroughCluster` for capturing sidecars), its own.

use mesh_api::names;
use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    socket_address, BindConfig, Http2ProtocolOptions, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::filters::{ads, seconds, socket, typed_config};
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::push::index::Subset;
use crate::push::PushContext;
use crate::registry::{labels_match, Discovery, Endpoint, Service, ServicePort};

/// Istio's default upstream connect timeout.
const CONNECT_TIMEOUT_SECS: i64 = 10;
/// Key of the upstream HTTP protocol options extension.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Source address of a capturing sidecar's connections to its own app; the
/// capture rules let it through (Istio's choice of address).
const INBOUND_SOURCE: &str = "127.0.0.6";

/// The outbound clusters every proxy gets: one per (service port, subset),
/// then `BlackHoleCluster` and `PassthroughCluster`. Shared mesh-wide.
pub fn outbound_clusters(ctx: &PushContext) -> Vec<Cluster> {
    let mut out = Vec::new();
    for svc in ctx.registry.services.values() {
        let subsets = ctx.subsets(&svc.hostname);
        for port in &svc.ports {
            out.push(outbound(svc, port, None));
            for s in subsets {
                out.push(outbound(svc, port, Some(s)));
            }
        }
    }
    out.push(Cluster {
        name: names::BLACKHOLE_CLUSTER.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECS)),
        ..Default::default()
    });
    out.push(Cluster {
        name: names::PASSTHROUGH_CLUSTER.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECS)),
        ..Default::default()
    });
    out
}

/// A sidecar's own clusters: `inbound|PORT||` to its app for each port it
/// receives, and `InboundPassthroughCluster` when it captures. Gateways
/// have none.
pub fn inbound_clusters(ctx: &PushContext, proxy: &Proxy) -> Vec<Cluster> {
    let mut out = Vec::new();
    if proxy.proxy_type != ProxyType::Sidecar {
        return out;
    }
    let capture = proxy.interception_mode == InterceptionMode::Redirect;
    // Captured traffic to the app must not be captured again.
    let bind = capture.then(|| BindConfig {
        source_address: Some(SocketAddress {
            address: INBOUND_SOURCE.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(0)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let app_ip = proxy.workload_ip().to_string();
    for inbound in ctx.inbound_ports(&proxy.ip.to_string()) {
        let name = names::inbound_cluster(inbound.port);
        let endpoints = vec![lb_endpoint(&app_ip, inbound.port, 1)];
        out.push(Cluster {
            name: name.clone(),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            )),
            connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECS)),
            load_assignment: Some(assignment(name, endpoints)),
            upstream_bind_config: bind.clone(),
            ..Default::default()
        });
    }
    if capture {
        out.push(Cluster {
            name: names::INBOUND_PASSTHROUGH_CLUSTER.to_string(),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            )),
            lb_policy: cluster::LbPolicy::ClusterProvided as i32,
            connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECS)),
            upstream_bind_config: bind,
            ..Default::default()
        });
    }
    out
}

fn outbound(svc: &Service, port: &ServicePort, subset: Option<&Subset>) -> Cluster {
    let name = names::outbound_cluster(
        port.number,
        subset.map_or("", |s| s.name.as_str()),
        &svc.hostname,
    );
    let mut c = Cluster {
        name: name.clone(),
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECS)),
        lb_policy: cluster::LbPolicy::RoundRobin as i32,
        ..Default::default()
    };
    let kind = match svc.discovery {
        Discovery::Eds => {
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads()),
                service_name: name.clone(),
            });
            cluster::DiscoveryType::Eds
        }
        Discovery::StrictDns | Discovery::LogicalDns => {
            let mut endpoints: Vec<LbEndpoint> = svc
                .endpoints
                .iter()
                .filter(|e| subset.is_none_or(|s| labels_match(&s.labels, &e.labels)))
                .filter_map(|e| endpoint_for(e, port.number))
                .collect();
            if endpoints.is_empty() && subset.is_none() && !svc.hostname.starts_with('*') {
                // A DNS ServiceEntry without endpoints resolves its own host.
                endpoints.push(lb_endpoint(
                    &svc.hostname,
                    port.target_port.unwrap_or(port.number),
                    1,
                ));
            }
            if svc.discovery == Discovery::LogicalDns {
                // LOGICAL_DNS takes exactly one endpoint.
                endpoints.truncate(1);
            }
            c.load_assignment = Some(assignment(name, endpoints));
            match svc.discovery {
                Discovery::LogicalDns => cluster::DiscoveryType::LogicalDns,
                _ => cluster::DiscoveryType::StrictDns,
            }
        }
    };
    c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(kind as i32));
    if port.protocol.is_http2() {
        let opts = HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions::default(),
                    )),
                },
            )),
            ..Default::default()
        };
        c.typed_extension_protocol_options =
            HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_string(), typed_config(&opts))]);
    }
    c
}

/// The LB endpoint of a registry endpoint for a service port, if the
/// endpoint serves that port.
pub fn endpoint_for(e: &Endpoint, service_port: u32) -> Option<LbEndpoint> {
    let port = *e.ports.get(&service_port)?;
    Some(lb_endpoint(&e.address, port, e.weight))
}

/// An LB endpoint at `address:port` with a weight.
pub fn lb_endpoint(address: &str, port: u32, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(socket(address, port)),
            ..Default::default()
        })),
        load_balancing_weight: Some(UInt32Value {
            value: weight.max(1),
        }),
        ..Default::default()
    }
}

/// A load assignment of one locality-less group of endpoints.
pub fn assignment(cluster_name: String, endpoints: Vec<LbEndpoint>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name,
        endpoints: if endpoints.is_empty() {
            Vec::new()
        } else {
            vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

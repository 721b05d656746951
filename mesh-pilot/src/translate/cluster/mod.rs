//! CDS: one cluster per (service port, subset) and Istio's
//! `BlackHoleCluster` / `PassthroughCluster`, the same for every proxy
//! (shared mesh-wide); inbound clusters to the sidecar's own app (plus
//! `InboundPassthroughCluster` for capturing sidecars), its own.
//!
//! ```text
//!  Service + port + subset ──► outbound(): discovery (EDS, DNS, ORIGINAL_DST)
//!                                 └─ DestinationRule policy ──► policy.rs (LB, pool, outlier)
//!                                                           └─► ../tls.rs (TLS origination)
//! ```

mod policy;

use mesh_api::names;
use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{socket_address, BindConfig, SocketAddress};
use envoy_types::pb::envoy::config::endpoint::v3::LbEndpoint;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::google::protobuf::Any;

use super::endpoint::{assignment, endpoint_for, lb_endpoint};
use super::filters::{ads, reason_metadata, seconds, typed_config};
use super::scope::ServiceView;
use crate::proxy::{InterceptionMode, Proxy, ProxyType};
use crate::push::destination::{Rule, Subset};
use crate::push::PushContext;
use crate::registry::{labels_match, Discovery, Service, ServicePort};

pub use policy::default_thresholds;

/// Why `BlackHoleCluster` drops a connection, in its metadata.
pub const BLACKHOLE_REASON: &str = "outboundTrafficPolicy REGISTRY_ONLY";

/// Istio's default upstream connect timeout.
const CONNECT_TIMEOUT_SECS: i64 = 10;

/// The connect timeout of clusters no DestinationRule sets one for:
/// MeshConfig `connectTimeout`, else Istio's 10 s.
fn connect_timeout(ctx: &PushContext) -> envoy_types::pb::google::protobuf::Duration {
    match ctx.config.mesh.connect_timeout {
        Some(t) => super::filters::duration(t.0),
        None => seconds(CONNECT_TIMEOUT_SECS),
    }
}
/// Key of the upstream HTTP protocol options extension.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Source address of a capturing sidecar's connections to its own app; the
/// capture rules let it through (Istio's choice of address).
const INBOUND_SOURCE: &str = "127.0.0.6";

/// The outbound clusters every proxy gets: one per (service port, subset),
/// then `BlackHoleCluster` and `PassthroughCluster`. Shared mesh-wide.
pub fn outbound_clusters(ctx: &PushContext, view: &ServiceView) -> Vec<Cluster> {
    let mut out = Vec::new();
    let timeout = connect_timeout(ctx);
    for svc in ctx.registry.services.values() {
        let rule = ctx.destination_rule(&svc.hostname);
        for port in svc
            .ports
            .iter()
            .filter(|p| view.sees_port(ctx, svc, p.number))
        {
            out.push(outbound(svc, port, rule, None, &timeout));
            for s in rule.map_or(&[][..], |r| r.subsets.as_slice()) {
                out.push(outbound(svc, port, rule, Some(s), &timeout));
            }
        }
    }
    out.push(Cluster {
        name: names::BLACKHOLE_CLUSTER.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(timeout),
        metadata: Some(reason_metadata(BLACKHOLE_REASON)),
        ..Default::default()
    });
    out.push(Cluster {
        name: names::PASSTHROUGH_CLUSTER.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        connect_timeout: Some(timeout),
        ..Default::default()
    });
    out
}

/// A sidecar's own clusters: `inbound|PORT||` to its app for each port it
/// receives, and `InboundPassthroughCluster` when it captures. Gateways
/// have none.
pub fn inbound_clusters(ctx: &PushContext, proxy: &Proxy) -> Vec<Cluster> {
    let timeout = connect_timeout(ctx);
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
        // The app of an HTTP2 or GRPC port speaks HTTP/2 (gRPC trailers
        // need it end to end).
        let options = inbound
            .protocol
            .is_http2()
            .then(policy::http2_protocol_options);
        out.push(Cluster {
            name: name.clone(),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32,
            )),
            connect_timeout: Some(timeout),
            load_assignment: Some(assignment(name, endpoints)),
            upstream_bind_config: bind.clone(),
            typed_extension_protocol_options: protocol_options(options),
            circuit_breakers: Some(
                envoy_types::pb::envoy::config::cluster::v3::CircuitBreakers {
                    thresholds: vec![default_thresholds()],
                    ..Default::default()
                },
            ),
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
            connect_timeout: Some(timeout),
            upstream_bind_config: bind,
            ..Default::default()
        });
    }
    out
}

fn outbound(
    svc: &Service,
    port: &ServicePort,
    rule: Option<&Rule>,
    subset: Option<&Subset>,
    timeout: &envoy_types::pb::google::protobuf::Duration,
) -> Cluster {
    let subset_name = subset.map_or("", |s| s.name.as_str());
    let name = names::outbound_cluster(port.number, subset_name, &svc.hostname);
    let mut c = Cluster {
        name: name.clone(),
        connect_timeout: Some(*timeout),
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
        Discovery::OriginalDst => {
            // Resolution NONE: forward to where the app meant to connect.
            c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
            cluster::DiscoveryType::OriginalDst
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
    let policy = rule.and_then(|r| r.policy(subset_name, port.number));
    let options = policy::apply(&mut c, policy.as_ref(), port);
    let http2 = options.as_ref().is_some_and(policy::is_http2);
    c.transport_socket = super::tls::upstream_tls(
        &svc.hostname,
        policy.as_ref().and_then(|p| p.tls.as_ref()),
        http2,
    );
    c.typed_extension_protocol_options = protocol_options(options);
    if let Some(rule) = rule {
        c.metadata = Some(super::filters::config_metadata(
            "DestinationRule",
            &rule.namespace,
            &rule.name,
        ));
    }
    c
}

/// The `typed_extension_protocol_options` map of a cluster with `options`;
/// Envoy requires the upstream protocol, HTTP/1.1 unless set.
fn protocol_options(options: Option<HttpProtocolOptions>) -> HashMap<String, Any> {
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    };
    let Some(mut o) = options else {
        return HashMap::new();
    };
    o.upstream_protocol_options.get_or_insert_with(|| {
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::HttpProtocolOptions(Default::default())),
        })
    });
    HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_string(), typed_config(&o))])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::mesh_config::MeshConfig;
    use crate::source::snapshot_from_str;

    const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
";

    fn timeouts(mesh: &str) -> Vec<(String, i64)> {
        let mut config = snapshot_from_str("t.yaml", SE).unwrap();
        config.mesh = MeshConfig::parse(mesh).unwrap();
        let ctx = PushContext::new(Arc::new(config));
        let view = ServiceView::new(&ctx, "default", None);
        outbound_clusters(&ctx, &view)
            .into_iter()
            .map(|c| (c.name, c.connect_timeout.map_or(0, |d| d.seconds)))
            .collect()
    }

    #[test]
    fn mesh_config_connect_timeout_sets_the_default_of_every_cluster() {
        for (name, secs) in timeouts("") {
            assert_eq!(secs, 10, "{name}: Istio's default");
        }
        for (name, secs) in timeouts("connectTimeout: 3s\n") {
            assert_eq!(secs, 3, "{name}");
        }
    }
}

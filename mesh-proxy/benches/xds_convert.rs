//! xDS conversion cost (ADS response ─► **decode + TryFrom** ─► model): one
//! resource as it arrives in a `DiscoveryResponse` (an `Any`) decoded and
//! converted, and converted alone, for CDS, EDS and RDS resources shaped
//! like the ones pilot sends a sidecar.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy as XdsLbPolicy},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, Address, HealthStatus, Http2ProtocolOptions, Locality, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint as XdsEndpoint, LbEndpoint,
    LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, route, route_action, route_match, weighted_cluster,
    HeaderMatcher, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    WeightedCluster,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;
use mesh_proxy::model::{Cluster, LoadAssignment, RouteConfig};
use mesh_proxy::xds::convert::unpack;
use mesh_proxy::xds::ConvertError;
use prost::Name;

fn seconds(seconds: i64) -> PbDuration {
    PbDuration { seconds, nanos: 0 }
}

/// An outbound EDS cluster of a gRPC service: HTTP/2 upstream through the
/// `HttpProtocolOptions` extension (a nested `Any` to decode as well).
fn cluster() -> XdsCluster {
    let name = "outbound|9080||reviews.default.svc.cluster.local";
    let http2 = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    XdsCluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            service_name: name.into(),
            eds_config: None,
        }),
        lb_policy: XdsLbPolicy::LeastRequest as i32,
        connect_timeout: Some(seconds(10)),
        typed_extension_protocol_options: [(HttpProtocolOptions::full_name(), pack_any(http2))]
            .into(),
        ..Default::default()
    }
}

/// `n` healthy pods of one service in one zone.
fn load_assignment(n: usize) -> ClusterLoadAssignment {
    let lb_endpoints = (0..n)
        .map(|i| LbEndpoint {
            health_status: HealthStatus::Healthy as i32,
            load_balancing_weight: Some(UInt32Value { value: 1 }),
            host_identifier: Some(HostIdentifier::Endpoint(XdsEndpoint {
                address: Some(Address {
                    address: Some(address::Address::SocketAddress(SocketAddress {
                        address: format!("10.1.{}.{}", i / 250, i % 250 + 1),
                        port_specifier: Some(socket_address::PortSpecifier::PortValue(9080)),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: "outbound|9080||reviews.default.svc.cluster.local".into(),
        endpoints: vec![LocalityLbEndpoints {
            locality: Some(Locality {
                region: "eu-west1".into(),
                zone: "eu-west1-b".into(),
                ..Default::default()
            }),
            lb_endpoints,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn forward(cluster_specifier: route_action::ClusterSpecifier) -> Option<route::Action> {
    Some(route::Action::Route(RouteAction {
        cluster_specifier: Some(cluster_specifier),
        timeout: Some(seconds(0)),
        ..Default::default()
    }))
}

fn regex(regex: &str) -> RegexMatcher {
    RegexMatcher {
        regex: regex.into(),
        engine_type: None,
    }
}

/// Pilot's `9080` outbound route configuration for `services` services:
/// Istio's six domain forms per virtual host, and four routes each (a
/// header match, a regex path, a weighted v1/v2 split, the default).
fn route_configuration(services: usize) -> RouteConfiguration {
    let virtual_hosts = (0..services)
        .map(|i| {
            let host = format!("svc{i}.default.svc.cluster.local");
            let short = format!("svc{i}");
            let cluster = |subset: &str| format!("outbound|9080|{subset}|{host}");
            let user = HeaderMatcher {
                name: "end-user".into(),
                header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(StringMatcher {
                    match_pattern: Some(MatchPattern::Exact("jason".into())),
                    ignore_case: false,
                })),
                ..Default::default()
            };
            let prefix = |p: &str| route_match::PathSpecifier::Prefix(p.into());
            let weighted = weighted_cluster::ClusterWeight {
                name: cluster("v1"),
                weight: Some(UInt32Value { value: 90 }),
                ..Default::default()
            };
            let routes = vec![
                Route {
                    name: "jason".into(),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(prefix("/")),
                        headers: vec![user],
                        ..Default::default()
                    }),
                    action: forward(route_action::ClusterSpecifier::Cluster(cluster("v2"))),
                    ..Default::default()
                },
                Route {
                    name: "items".into(),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(route_match::PathSpecifier::SafeRegex(regex(
                            "/items/[0-9]+",
                        ))),
                        ..Default::default()
                    }),
                    action: forward(route_action::ClusterSpecifier::Cluster(cluster("v1"))),
                    ..Default::default()
                },
                Route {
                    name: "canary".into(),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(prefix("/api")),
                        ..Default::default()
                    }),
                    action: forward(route_action::ClusterSpecifier::WeightedClusters(
                        WeightedCluster {
                            clusters: vec![
                                weighted,
                                weighted_cluster::ClusterWeight {
                                    name: cluster("v2"),
                                    weight: Some(UInt32Value { value: 10 }),
                                    ..Default::default()
                                },
                            ],
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                },
                Route {
                    name: "default".into(),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(prefix("/")),
                        ..Default::default()
                    }),
                    action: forward(route_action::ClusterSpecifier::Cluster(cluster(""))),
                    ..Default::default()
                },
            ];
            VirtualHost {
                name: format!("{host}:9080"),
                domains: vec![
                    host.clone(),
                    format!("{host}:9080"),
                    short.clone(),
                    format!("{short}:9080"),
                    format!("{short}.default"),
                    format!("{short}.default:9080"),
                ],
                routes,
                ..Default::default()
            }
        })
        .collect();
    RouteConfiguration {
        name: "9080".into(),
        virtual_hosts,
        ..Default::default()
    }
}

/// Two benches for one resource: from the wire (`unpack` as the ADS client
/// does, then `TryFrom`) and from the decoded proto (`TryFrom` alone).
fn decode_and_convert<P, M>(group: &mut BenchmarkGroup<'_, WallTime>, label: &str, proto: P)
where
    P: prost::Message + Name + Default + Clone,
    M: for<'a> TryFrom<&'a P, Error = ConvertError>,
{
    let any: Any = pack_any(proto.clone());
    // A bench that measures a NACK would be fast for the wrong reason.
    if let Err(error) = M::try_from(&unpack::<P>(&any).unwrap()) {
        panic!("{label} does not convert: {error}");
    }
    group.bench_function(format!("{label}/decode+convert"), |b| {
        b.iter(|| {
            let proto: P = unpack(black_box(&any)).unwrap();
            M::try_from(&proto)
        })
    });
    group.bench_function(format!("{label}/convert"), |b| {
        b.iter(|| M::try_from(black_box(&proto)))
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("xds_convert");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    decode_and_convert::<_, Cluster>(&mut group, "Cluster (EDS, HTTP/2)", cluster());
    decode_and_convert::<_, LoadAssignment>(
        &mut group,
        "ClusterLoadAssignment (10 endpoints)",
        load_assignment(10),
    );
    decode_and_convert::<_, RouteConfig>(
        &mut group,
        "RouteConfiguration (100 virtual hosts)",
        route_configuration(100),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

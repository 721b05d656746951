//! CDS and EDS conversion: discovery types, LB, timeouts, HTTP/2, endpoints.
//! Policies, breakers, outlier detection and TLS are in `cluster_policy`.

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy as XdsLb},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    HealthStatus, Http2ProtocolOptions, TransportSocket,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint as XdsEndpoint, LbEndpoint,
    LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::addr;
use crate::model::{Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment};

fn cluster(name: &str, kind: DiscoveryType) -> XdsCluster {
    XdsCluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        ..Default::default()
    }
}

fn convert(c: &XdsCluster) -> Result<Cluster, String> {
    Cluster::try_from(c).map_err(|e| e.to_string())
}

fn lb_endpoint(ip: &str, port: u32, weight: Option<u32>, health: HealthStatus) -> LbEndpoint {
    LbEndpoint {
        health_status: health as i32,
        load_balancing_weight: weight.map(|value| UInt32Value { value }),
        host_identifier: Some(HostIdentifier::Endpoint(XdsEndpoint {
            address: Some(addr(ip, port)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn cla(name: &str, groups: Vec<(u32, Vec<LbEndpoint>)>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: groups
            .into_iter()
            .map(|(priority, lb_endpoints)| LocalityLbEndpoints {
                priority,
                lb_endpoints,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn eds_service_name_defaults_to_cluster_name() {
    let name = "outbound|9080||messenger.default.svc.cluster.local";
    let got = convert(&cluster(name, DiscoveryType::Eds)).unwrap();
    assert!(matches!(&got.discovery, Discovery::Eds { service_name } if service_name == name));
    assert_eq!(got.lb_policy, LbPolicy::RoundRobin);
    assert_eq!(
        got.connect_timeout,
        Duration::from_secs(5),
        "Envoy's default"
    );
    assert!(!got.http2);

    let mut c = cluster(name, DiscoveryType::Eds);
    c.eds_cluster_config = Some(EdsClusterConfig {
        service_name: "svc".into(),
        eds_config: None,
    });
    c.connect_timeout = Some(PbDuration {
        seconds: 1,
        nanos: 0,
    });
    c.lb_policy = XdsLb::LeastRequest as i32;
    let got = convert(&c).unwrap();
    assert!(matches!(&got.discovery, Discovery::Eds { service_name } if service_name == "svc"));
    assert_eq!(got.connect_timeout, Duration::from_secs(1));
    assert_eq!(got.lb_policy, LbPolicy::LeastRequest);
}

#[test]
fn static_strict_dns_and_original_dst() {
    let mut c = cluster("inbound|9080||", DiscoveryType::Static);
    c.load_assignment = Some(cla(
        "inbound|9080||",
        vec![(
            0,
            vec![lb_endpoint("127.1.10.2", 9080, None, HealthStatus::Unknown)],
        )],
    ));
    let got = convert(&c).unwrap();
    let Discovery::Static(assignment) = &got.discovery else {
        panic!()
    };
    assert_eq!(
        assignment.endpoints,
        [Endpoint::new("127.1.10.2:9080".parse().unwrap(), 1)]
    );

    let black_hole = convert(&cluster("BlackHoleCluster", DiscoveryType::Static)).unwrap();
    assert!(matches!(&black_hole.discovery, Discovery::Static(a) if a.endpoints.is_empty()));

    let mut c = cluster("outbound|443||api.example.com", DiscoveryType::StrictDns);
    c.load_assignment = Some(cla(
        "x",
        vec![(
            0,
            vec![lb_endpoint(
                "api.example.com",
                443,
                None,
                HealthStatus::Unknown,
            )],
        )],
    ));
    c.lb_policy = XdsLb::Random as i32;
    let got = convert(&c).unwrap();
    let Discovery::StrictDns(dns) = &got.discovery else {
        panic!("{:?}", got.discovery)
    };
    assert_eq!(dns.hosts.len(), 1);
    assert_eq!(
        (dns.hosts[0].host.as_str(), dns.hosts[0].port),
        ("api.example.com", 443)
    );
    assert_eq!(dns.refresh_rate, Duration::from_secs(5));
    assert_eq!(dns.timeout, Duration::from_secs(5));
    assert_eq!(dns.family, crate::model::DnsLookupFamily::Auto);
    assert_eq!(got.lb_policy, LbPolicy::Random);

    let mut c = cluster("PassthroughCluster", DiscoveryType::OriginalDst);
    c.lb_policy = XdsLb::ClusterProvided as i32;
    assert!(matches!(
        convert(&c).unwrap().discovery,
        Discovery::OriginalDst
    ));
}

#[test]
fn unsupported_cluster_features_are_rejected() {
    let mut c = cluster("c", DiscoveryType::Eds);
    c.lb_policy = XdsLb::ClusterProvided as i32;
    assert!(convert(&c)
        .unwrap_err()
        .contains("unsupported lb_policy CLUSTER_PROVIDED"));
    let mut c = cluster("c", DiscoveryType::Eds);
    c.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: None,
    });
    assert!(convert(&c)
        .unwrap_err()
        .contains("transport_socket envoy.transport_sockets.alts"));
    let mut c = cluster("c", DiscoveryType::Eds);
    c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(42));
    assert!(convert(&c).unwrap_err().contains("invalid type"));
    assert!(convert(&cluster("", DiscoveryType::Eds))
        .unwrap_err()
        .contains("missing name"));
}

#[test]
fn http2_from_protocol_options() {
    let explicit = |config| HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(config),
            },
        )),
        ..Default::default()
    };
    let key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_owned();
    let mut c = cluster("grpc", DiscoveryType::Eds);
    c.typed_extension_protocol_options = HashMap::from([(
        key.clone(),
        pack_any(explicit(ProtocolConfig::Http2ProtocolOptions(
            Http2ProtocolOptions::default(),
        ))),
    )]);
    assert!(convert(&c).unwrap().http2);

    c.typed_extension_protocol_options = HashMap::from([(
        key,
        pack_any(explicit(ProtocolConfig::HttpProtocolOptions(
            Default::default(),
        ))),
    )]);
    assert!(!convert(&c).unwrap().http2);

    #[allow(deprecated)]
    let deprecated = XdsCluster {
        http2_protocol_options: Some(Http2ProtocolOptions::default()),
        ..cluster("old", DiscoveryType::Eds)
    };
    assert!(convert(&deprecated).unwrap().http2);
}

#[test]
fn load_assignment_endpoints() {
    let la = cla(
        "outbound|9080|v1|messenger",
        vec![
            (
                0,
                vec![
                    lb_endpoint("127.1.10.2", 9080, Some(3), HealthStatus::Healthy),
                    lb_endpoint("127.1.10.3", 9080, None, HealthStatus::Unhealthy),
                    lb_endpoint("127.1.10.4", 9080, None, HealthStatus::Draining),
                ],
            ),
            (
                1,
                vec![lb_endpoint("127.1.10.9", 9080, None, HealthStatus::Healthy)],
            ),
        ],
    );
    let got = LoadAssignment::try_from(&la).unwrap();
    assert_eq!(got.cluster_name, "outbound|9080|v1|messenger");
    // Unhealthy endpoints are kept (they count in their priority's total)
    // but marked; priority 1 is kept for failover.
    let seen: Vec<(String, u32, bool, u32)> = got
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.weight, e.healthy, e.priority))
        .collect();
    assert_eq!(
        seen,
        [
            ("127.1.10.2:9080".to_owned(), 3, true, 0),
            ("127.1.10.3:9080".to_owned(), 1, false, 0),
            ("127.1.10.4:9080".to_owned(), 1, false, 0),
            ("127.1.10.9:9080".to_owned(), 1, true, 1),
        ]
    );
    assert_eq!(got.overprovisioning_factor, 140);
    assert_eq!(got.localities.len(), 2);

    let bad = cla(
        "c",
        vec![(
            0,
            vec![lb_endpoint(
                "messenger.local",
                9080,
                None,
                HealthStatus::Healthy,
            )],
        )],
    );
    let err = LoadAssignment::try_from(&bad).unwrap_err().to_string();
    assert!(
        err.contains("endpoints[0].lb_endpoints[0]") && err.contains("not an IP address"),
        "{err}"
    );
    let zero = cla(
        "c",
        vec![(
            0,
            vec![lb_endpoint("127.0.0.1", 1, Some(0), HealthStatus::Healthy)],
        )],
    );
    assert!(LoadAssignment::try_from(&zero)
        .unwrap_err()
        .to_string()
        .contains("load_balancing_weight"));
    assert!(LoadAssignment::try_from(&cla("", vec![])).is_err());
}

#[test]
fn upstream_bind_config_gives_the_source_address() {
    use envoy_types::pb::envoy::config::core::v3::{BindConfig, SocketAddress};
    let mut c = cluster("InboundPassthroughCluster", DiscoveryType::OriginalDst);
    c.lb_policy = XdsLb::ClusterProvided as i32;
    assert_eq!(convert(&c).unwrap().upstream_bind, None);
    c.upstream_bind_config = Some(BindConfig {
        source_address: Some(SocketAddress {
            address: "127.0.0.6".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let got = convert(&c).unwrap();
    assert!(matches!(got.discovery, Discovery::OriginalDst));
    assert_eq!(got.upstream_bind, Some("127.0.0.6".parse().unwrap()));
    c.upstream_bind_config = Some(BindConfig::default());
    assert!(convert(&c).unwrap_err().contains("source_address"));
    c.upstream_bind_config = Some(BindConfig {
        source_address: Some(SocketAddress {
            address: "localhost".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(convert(&c).unwrap_err().contains("not an IP address"));
}

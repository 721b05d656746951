//! CDS conversion of policies: load balancing parameters, priorities and
//! localities, circuit breakers, outlier detection, DNS settings, pool
//! options, keepalive, metadata, and each NACK reason (TLS: `cluster_tls.rs`).

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::{thresholds::RetryBudget, Thresholds},
    cluster::{
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig, ZoneAwareLbConfig},
        ClusterDiscoveryType, CommonLbConfig, DiscoveryType, DnsLookupFamily as XdsFamily,
        LbConfig as XdsLbConfig, LbPolicy as XdsLb, LeastRequestLbConfig, MaglevLbConfig,
        RingHashLbConfig, RoundRobinLbConfig, SlowStartConfig,
    },
    CircuitBreakers as XdsBreakers, Cluster as XdsCluster, OutlierDetection as XdsOutlier,
    UpstreamConnectionOptions,
};
use envoy_types::pb::envoy::config::core::v3::{
    HealthCheck, HttpProtocolOptions as Common, Metadata, RoutingPriority, RuntimeDouble,
    TcpKeepalive,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    cluster_load_assignment::Policy, lb_endpoint::HostIdentifier, ClusterLoadAssignment,
    Endpoint as XdsEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, AutoHttpConfig, ExplicitHttpConfig,
        UpstreamProtocolOptions, UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{
    value::Kind, Duration as PbDuration, Struct, UInt32Value, UInt64Value, Value,
};
use envoy_types::util::pack_any;

use super::addr;
use crate::model::{Cluster, Discovery, DnsLookupFamily, LbPolicy, LoadAssignment};

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

fn nack(c: &XdsCluster, wanted: &str) {
    let err = convert(c).expect_err(wanted);
    assert!(err.contains(wanted), "{err:?} should name {wanted:?}");
}

fn secs(s: i64) -> PbDuration {
    PbDuration {
        seconds: s,
        nanos: 0,
    }
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

#[test]
fn hashing_policies_and_their_sizes() {
    let mut c = cluster("c", DiscoveryType::Eds);
    c.lb_policy = XdsLb::RingHash as i32;
    let got = convert(&c).unwrap();
    assert_eq!(got.lb_policy, LbPolicy::RingHash);
    assert_eq!((got.lb.ring_min, got.lb.ring_max), (1024, 8 << 20));
    c.lb_config = Some(XdsLbConfig::RingHashLbConfig(RingHashLbConfig {
        minimum_ring_size: Some(UInt64Value { value: 64 }),
        maximum_ring_size: Some(UInt64Value { value: 4096 }),
        hash_function: 0,
    }));
    assert_eq!(convert(&c).unwrap().lb.ring_min, 64);
    c.lb_config = Some(XdsLbConfig::RingHashLbConfig(RingHashLbConfig {
        hash_function: 1,
        ..Default::default()
    }));
    nack(&c, "MURMUR_HASH_2");
    c.lb_config = Some(XdsLbConfig::RingHashLbConfig(RingHashLbConfig {
        minimum_ring_size: Some(UInt64Value { value: 10 }),
        maximum_ring_size: Some(UInt64Value { value: 5 }),
        hash_function: 0,
    }));
    nack(&c, "ring sizes");

    let mut c = cluster("c", DiscoveryType::Eds);
    c.lb_policy = XdsLb::Maglev as i32;
    assert_eq!(convert(&c).unwrap().lb.maglev_table_size, 65537);
    c.lb_config = Some(XdsLbConfig::MaglevLbConfig(MaglevLbConfig {
        table_size: Some(UInt64Value { value: 251 }),
    }));
    assert_eq!(convert(&c).unwrap().lb.maglev_table_size, 251);
    c.lb_config = Some(XdsLbConfig::MaglevLbConfig(MaglevLbConfig {
        table_size: Some(UInt64Value { value: 250 }),
    }));
    nack(&c, "not a prime");
    // A config for another policy than the one chosen.
    c.lb_config = Some(XdsLbConfig::RingHashLbConfig(RingHashLbConfig::default()));
    nack(&c, "does not belong");
}

#[test]
fn least_request_round_robin_and_slow_start() {
    let mut c = cluster("c", DiscoveryType::Eds);
    c.lb_policy = XdsLb::LeastRequest as i32;
    assert_eq!(convert(&c).unwrap().lb.choice_count, 2);
    let slow = SlowStartConfig {
        slow_start_window: Some(secs(30)),
        aggression: Some(RuntimeDouble {
            default_value: 2.0,
            runtime_key: "k".into(),
        }),
        min_weight_percent: Some(Percent { value: 20.0 }),
    };
    c.lb_config = Some(XdsLbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
        choice_count: u32v(4),
        slow_start_config: Some(slow.clone()),
        ..Default::default()
    }));
    let got = convert(&c).unwrap();
    assert_eq!(got.lb.choice_count, 4);
    let s = got.lb.slow_start.unwrap();
    assert_eq!(
        (s.window, s.aggression, s.min_weight),
        (Duration::from_secs(30), 2.0, 0.2)
    );
    c.lb_config = Some(XdsLbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
        active_request_bias: Some(RuntimeDouble::default()),
        ..Default::default()
    }));
    nack(&c, "active_request_bias");

    let mut c = cluster("c", DiscoveryType::Eds);
    c.lb_config = Some(XdsLbConfig::RoundRobinLbConfig(RoundRobinLbConfig {
        slow_start_config: Some(SlowStartConfig {
            slow_start_window: Some(secs(10)),
            ..Default::default()
        }),
    }));
    let s = convert(&c).unwrap().lb.slow_start.unwrap();
    assert_eq!((s.aggression, s.min_weight), (1.0, 0.1), "Envoy's defaults");
}

#[test]
fn common_lb_config_panic_and_localities() {
    let mut c = cluster("c", DiscoveryType::Eds);
    assert_eq!(convert(&c).unwrap().lb.healthy_panic_threshold, 50.0);
    c.common_lb_config = Some(CommonLbConfig {
        healthy_panic_threshold: Some(Percent { value: 0.0 }),
        locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
            LocalityWeightedLbConfig {},
        )),
        ..Default::default()
    });
    let got = convert(&c).unwrap();
    assert_eq!(got.lb.healthy_panic_threshold, 0.0);
    assert!(got.lb.locality_weighted);
    c.common_lb_config = Some(CommonLbConfig {
        locality_config_specifier: Some(LocalityConfigSpecifier::ZoneAwareLbConfig(
            ZoneAwareLbConfig::default(),
        )),
        ..Default::default()
    });
    nack(&c, "zone_aware_lb_config");
    c.lb_policy = XdsLb::Maglev as i32;
    c.common_lb_config = Some(CommonLbConfig {
        locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
            LocalityWeightedLbConfig {},
        )),
        ..Default::default()
    });
    nack(&c, "locality_weighted_lb_config with RING_HASH or MAGLEV");
}

#[test]
fn load_assignment_priorities_localities_and_policy() {
    let group = |priority, zone: &str, weight: Option<u32>| LocalityLbEndpoints {
        priority,
        locality: Some(envoy_types::pb::envoy::config::core::v3::Locality {
            region: "r".into(),
            zone: zone.into(),
            sub_zone: String::new(),
        }),
        load_balancing_weight: weight.map(|value| UInt32Value { value }),
        lb_endpoints: vec![LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(XdsEndpoint {
                address: Some(addr("127.0.0.9", 80)),
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut la = ClusterLoadAssignment {
        cluster_name: "c".into(),
        endpoints: vec![group(0, "a", Some(3)), group(1, "b", None)],
        policy: Some(Policy {
            overprovisioning_factor: u32v(200),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = LoadAssignment::try_from(&la).unwrap();
    assert_eq!(got.overprovisioning_factor, 200);
    assert_eq!(got.localities[0].zone, "a");
    assert_eq!(got.localities[0].weight, 3);
    assert_eq!(got.localities[1].weight, 0);
    assert_eq!(
        (got.endpoints[1].priority, got.endpoints[1].locality),
        (1, 1)
    );
    la.policy = Some(Policy {
        drop_overloads: vec![Default::default()],
        ..Default::default()
    });
    let err = LoadAssignment::try_from(&la).unwrap_err().to_string();
    assert!(err.contains("policy.drop_overloads"), "{err}");
}

#[test]
fn circuit_breakers_default_istio_unset_and_refusals() {
    let mut c = cluster("c", DiscoveryType::Eds);
    let b = convert(&c).unwrap().circuit_breakers;
    assert_eq!(
        (
            b.max_connections,
            b.max_pending_requests,
            b.max_requests,
            b.max_retries
        ),
        (1024, 1024, 1024, 3)
    );
    let istio = |max_connections| Thresholds {
        max_connections: u32v(max_connections),
        max_pending_requests: u32v(u32::MAX),
        max_requests: u32v(u32::MAX),
        max_retries: u32v(u32::MAX),
        track_remaining: true,
        ..Default::default()
    };
    c.circuit_breakers = Some(XdsBreakers {
        thresholds: vec![
            istio(1),
            Thresholds {
                priority: RoutingPriority::High as i32,
                ..istio(7)
            },
        ],
        ..Default::default()
    });
    let b = convert(&c).unwrap().circuit_breakers;
    assert_eq!((b.max_connections, b.max_retries), (1, u32::MAX));
    c.circuit_breakers = Some(XdsBreakers {
        thresholds: vec![Thresholds {
            retry_budget: Some(RetryBudget::default()),
            ..Default::default()
        }],
        ..Default::default()
    });
    nack(&c, "retry_budget");
    c.circuit_breakers = Some(XdsBreakers {
        per_host_thresholds: vec![Thresholds::default()],
        ..Default::default()
    });
    nack(&c, "per_host_thresholds");
}

#[test]
fn outlier_detection_defaults_and_refusals() {
    let mut c = cluster("c", DiscoveryType::Eds);
    assert!(convert(&c).unwrap().outlier_detection.is_none());
    c.outlier_detection = Some(XdsOutlier::default());
    let o = convert(&c).unwrap().outlier_detection.unwrap();
    assert_eq!((o.consecutive_5xx, o.enforcing_consecutive_5xx), (5, 100));
    assert_eq!(
        (
            o.consecutive_gateway_failure,
            o.enforcing_consecutive_gateway_failure
        ),
        (5, 0)
    );
    assert_eq!(o.interval, Duration::from_secs(10));
    assert_eq!(o.base_ejection_time, Duration::from_secs(30));
    assert_eq!(o.max_ejection_time, Duration::from_secs(300));
    assert_eq!(o.max_ejection_percent, 10);
    assert_eq!(o.success_rate.enforcing, 100);
    assert_eq!(o.failure_percentage.enforcing, 0);
    // Istio's shape.
    c.outlier_detection = Some(XdsOutlier {
        consecutive_5xx: u32v(1),
        interval: Some(secs(1)),
        base_ejection_time: Some(secs(3)),
        max_ejection_percent: u32v(100),
        enforcing_success_rate: u32v(0),
        ..Default::default()
    });
    let o = convert(&c).unwrap().outlier_detection.unwrap();
    assert_eq!(
        (
            o.consecutive_5xx,
            o.max_ejection_percent,
            o.success_rate.enforcing
        ),
        (1, 100, 0)
    );
    c.outlier_detection = Some(XdsOutlier {
        max_ejection_percent: u32v(101),
        ..Default::default()
    });
    nack(&c, "max_ejection_percent");
    c.outlier_detection = Some(XdsOutlier {
        max_ejection_time_jitter: Some(secs(1)),
        ..Default::default()
    });
    nack(&c, "max_ejection_time_jitter");
    c.outlier_detection = Some(XdsOutlier {
        split_external_local_origin_errors: true,
        ..Default::default()
    });
    nack(&c, "enforcing_local_origin_success_rate");
}

#[test]
#[allow(deprecated)]
fn dns_clusters_logical_family_refresh_and_resolvers() {
    let dns_la = |hosts: &[&str]| ClusterLoadAssignment {
        cluster_name: "x".into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: hosts
                .iter()
                .map(|h| LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(XdsEndpoint {
                        address: Some(addr(h, 443)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut c = XdsCluster {
        load_assignment: Some(dns_la(&["api.example.com"])),
        dns_lookup_family: XdsFamily::V4Only as i32,
        dns_refresh_rate: Some(secs(30)),
        respect_dns_ttl: true,
        ..cluster("c", DiscoveryType::LogicalDns)
    };
    let got = convert(&c).unwrap();
    let Discovery::LogicalDns(dns) = &got.discovery else {
        panic!("LOGICAL_DNS is its own discovery: {:?}", got.discovery)
    };
    assert_eq!(dns.family, DnsLookupFamily::V4Only);
    assert_eq!(dns.refresh_rate, Duration::from_secs(30));
    assert!(dns.respect_ttl);
    c.load_assignment = Some(dns_la(&["a.example.com", "b.example.com"]));
    nack(&c, "exactly one host");
    let mut c = cluster("c", DiscoveryType::StrictDns);
    c.load_assignment = Some(dns_la(&["a.example.com"]));
    c.dns_resolvers = vec![addr("198.18.0.53", 53)];
    nack(&c, "dns_resolvers");
    c.dns_resolvers.clear();
    use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
    use envoy_types::pb::envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig;
    c.typed_dns_resolver_config = Some(TypedExtensionConfig {
        name: "envoy.network.dns_resolver.cares".into(),
        typed_config: Some(pack_any(CaresDnsResolverConfig {
            query_timeout_seconds: Some(UInt64Value { value: 2 }),
            ..Default::default()
        })),
    });
    let Discovery::StrictDns(dns) = convert(&c).unwrap().discovery else {
        panic!()
    };
    assert_eq!(dns.timeout, Duration::from_secs(2));
    c.typed_dns_resolver_config = Some(TypedExtensionConfig {
        name: "envoy.network.dns_resolver.cares".into(),
        typed_config: Some(pack_any(CaresDnsResolverConfig {
            resolvers: vec![addr("198.18.0.53", 53)],
            ..Default::default()
        })),
    });
    nack(&c, "resolvers");
}

#[test]
fn pool_options_protocols_and_keepalive() {
    let key = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_owned();
    let with = |opts: HttpProtocolOptions| {
        let mut c = cluster("c", DiscoveryType::Eds);
        c.typed_extension_protocol_options = HashMap::from([(key.clone(), pack_any(opts))]);
        c
    };
    let c = with(HttpProtocolOptions {
        common_http_protocol_options: Some(Common {
            idle_timeout: Some(secs(7)),
            max_connection_duration: Some(secs(60)),
            max_requests_per_connection: u32v(3),
            ..Default::default()
        }),
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    envoy_types::pb::envoy::config::core::v3::Http2ProtocolOptions {
                        max_concurrent_streams: u32v(2),
                        ..Default::default()
                    },
                )),
            },
        )),
        ..Default::default()
    });
    let got = convert(&c).unwrap();
    assert!(got.http2);
    assert_eq!(got.pool.idle_timeout, Some(Duration::from_secs(7)));
    assert_eq!(
        got.pool.max_connection_duration,
        Some(Duration::from_secs(60))
    );
    assert_eq!(got.pool.max_requests_per_connection, Some(3));
    assert_eq!(got.pool.max_concurrent_streams, 2);
    assert_eq!(
        convert(&cluster("c", DiscoveryType::Eds))
            .unwrap()
            .pool
            .idle_timeout,
        Some(Duration::from_secs(3600)),
        "Envoy's default idle timeout"
    );
    let downstream = convert(&with(HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(
            UseDownstreamHttpConfig::default(),
        )),
        ..Default::default()
    }))
    .unwrap();
    assert!(downstream.use_downstream_protocol);
    assert!(downstream.upstream_http2(http::Version::HTTP_2));
    assert!(!downstream.upstream_http2(http::Version::HTTP_11));
    nack(
        &with(HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::AutoConfig(
                AutoHttpConfig::default(),
            )),
            ..Default::default()
        }),
        "auto_config",
    );
    nack(
        &with(HttpProtocolOptions {
            common_http_protocol_options: Some(Common {
                max_stream_duration: Some(secs(1)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        "max_stream_duration",
    );

    let mut c = cluster("c", DiscoveryType::Eds);
    c.upstream_connection_options = Some(UpstreamConnectionOptions {
        tcp_keepalive: Some(TcpKeepalive {
            keepalive_probes: u32v(3),
            keepalive_time: u32v(60),
            keepalive_interval: u32v(5),
        }),
        ..Default::default()
    });
    let k = convert(&c).unwrap().tcp_keepalive.unwrap();
    assert_eq!(
        (k.probes, k.time, k.interval),
        (
            Some(3),
            Some(Duration::from_secs(60)),
            Some(Duration::from_secs(5))
        )
    );
}

#[test]
fn metadata_alt_stat_name_and_unimplemented_fields() {
    let mut c = cluster(
        "outbound|9080||reviews.default.svc.cluster.local",
        DiscoveryType::Eds,
    );
    c.alt_stat_name = "reviews_9080".into();
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.into())),
    };
    c.metadata = Some(Metadata {
        filter_metadata: HashMap::from([(
            "istio".to_owned(),
            Struct {
                fields: [(
                    "config".to_owned(),
                    string(
                        "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews",
                    ),
                )]
                .into(),
            },
        )]),
        ..Default::default()
    });
    let got = convert(&c).unwrap();
    assert_eq!(got.alt_stat_name.as_deref(), Some("reviews_9080"));
    assert_eq!(got.describe(), "DestinationRule default/reviews");
    assert_eq!(
        convert(&cluster("plain", DiscoveryType::Eds))
            .unwrap()
            .describe(),
        "cluster plain"
    );
    let mut c = cluster("c", DiscoveryType::Eds);
    c.health_checks = vec![HealthCheck::default()];
    nack(&c, "health_checks");
    let mut c = cluster("c", DiscoveryType::Eds);
    c.transport_socket_matches = vec![Default::default()];
    nack(&c, "transport_socket_matches");
}

#[test]
#[allow(deprecated)]
fn every_unimplemented_cluster_field_is_named_in_its_nack() {
    use envoy_types::pb::envoy::config::cluster::v3::{
        cluster::{LbSubsetConfig, OriginalDstLbConfig, PreconnectPolicy},
        Filter, LoadBalancingPolicy,
    };
    use envoy_types::pb::envoy::config::core::v3::{ConfigSource, TypedExtensionConfig};
    let base = || cluster("c", DiscoveryType::Eds);
    nack(
        &cluster("PassthroughCluster", DiscoveryType::OriginalDst),
        "ORIGINAL_DST clusters take only CLUSTER_PROVIDED",
    );
    let cases: Vec<(XdsCluster, &str)> = vec![
        (XdsCluster { health_checks: vec![HealthCheck::default()], ..base() }, "health_checks"),
        (XdsCluster { lb_subset_config: Some(LbSubsetConfig::default()), ..base() }, "lb_subset_config"),
        (
            XdsCluster { load_balancing_policy: Some(LoadBalancingPolicy::default()), ..base() },
            "load_balancing_policy",
        ),
        (XdsCluster { filters: vec![Filter::default()], ..base() }, "filters"),
        (XdsCluster { lrs_server: Some(ConfigSource::default()), ..base() }, "lrs_server"),
        (
            XdsCluster { preconnect_policy: Some(PreconnectPolicy::default()), ..base() },
            "preconnect_policy",
        ),
        (
            XdsCluster { upstream_config: Some(TypedExtensionConfig::default()), ..base() },
            "upstream_config",
        ),
        (XdsCluster { use_tcp_for_dns_lookups: true, ..base() }, "use_tcp_for_dns_lookups"),
        (XdsCluster { dns_jitter: Some(secs(1)), ..base() }, "dns_jitter"),
        (
            XdsCluster {
                lb_policy: XdsLb::ClusterProvided as i32,
                lb_config: Some(XdsLbConfig::OriginalDstLbConfig(OriginalDstLbConfig {
                    use_http_header: true,
                    ..Default::default()
                })),
                ..cluster("c", DiscoveryType::OriginalDst)
            },
            "original_dst_lb_config overrides",
        ),
        (
            XdsCluster {
                upstream_connection_options: Some(UpstreamConnectionOptions {
                    happy_eyeballs_config: Some(Default::default()),
                    ..Default::default()
                }),
                ..base()
            },
            "happy_eyeballs_config",
        ),
        (
            XdsCluster {
                typed_extension_protocol_options: HashMap::from([(
                    "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions".to_owned(),
                    Default::default(),
                )]),
                ..base()
            },
            "typed_extension_protocol_options[envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions]",
        ),
        (
            XdsCluster {
                common_lb_config: Some(CommonLbConfig {
                    consistent_hashing_lb_config: Some(Default::default()),
                    ..Default::default()
                }),
                ..base()
            },
            "consistent_hashing_lb_config",
        ),
        (
            XdsCluster {
                outlier_detection: Some(XdsOutlier {
                    monitors: vec![TypedExtensionConfig::default()],
                    ..Default::default()
                }),
                ..base()
            },
            "monitors",
        ),
        (
            XdsCluster {
                circuit_breakers: Some(XdsBreakers {
                    thresholds: vec![Thresholds {
                        max_connection_pools: u32v(1),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..base()
            },
            "max_connection_pools",
        ),
    ];
    for (c, field) in &cases {
        nack(c, field);
    }
}

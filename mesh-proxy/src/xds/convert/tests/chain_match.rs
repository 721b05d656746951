//! LDS conversion of filter chain matches and `tcp_proxy` settings.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::CidrRange as XdsCidr;
use envoy_types::pb::envoy::config::listener::v3::{
    filter, filter_chain_match::ConnectionSourceType, Filter, FilterChainMatch as XdsFcm,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::{ClusterSpecifier, TunnelingConfig},
    TcpProxy as XdsTcpProxy,
};
use envoy_types::pb::envoy::r#type::v3::{hash_policy, HashPolicy};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use envoy_types::util::pack_any;

use super::*;
use crate::model::{Listener, NetworkFilter, SourceType, TcpHashPolicy, TcpProxy};

fn cidr(address: &str, len: u32) -> XdsCidr {
    XdsCidr {
        address_prefix: address.into(),
        prefix_len: Some(UInt32Value { value: len }),
    }
}

fn tcp(proxy: XdsTcpProxy) -> Filter {
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(proxy))),
    }
}

fn to_c() -> XdsTcpProxy {
    XdsTcpProxy {
        stat_prefix: "c".into(),
        cluster_specifier: Some(ClusterSpecifier::Cluster("c".into())),
        ..Default::default()
    }
}

fn with_match(m: XdsFcm) -> Result<Listener, String> {
    let mut fc = chain("fc", vec![tcp(to_c())]);
    fc.filter_chain_match = Some(m);
    Listener::try_from(&listener("l", 27017, vec![fc])).map_err(|e| e.to_string())
}

fn with_tcp(proxy: XdsTcpProxy) -> Result<TcpProxy, String> {
    let l = Listener::try_from(&listener("l", 27017, vec![chain("fc", vec![tcp(proxy)])]))
        .map_err(|e| e.to_string())?;
    match &l.filter_chains[0].filter {
        NetworkFilter::Tcp(t) => Ok(t.clone()),
        NetworkFilter::Http(_) => panic!("not a tcp_proxy"),
    }
}

#[test]
fn every_match_field_converts() {
    let l = with_match(XdsFcm {
        prefix_ranges: vec![cidr("198.19.4.7", 24), cidr("2001:db8::", 32)],
        direct_source_prefix_ranges: vec![cidr("198.18.0.0", 16)],
        source_type: ConnectionSourceType::External as i32,
        source_prefix_ranges: vec![cidr("198.18.1.0", 24)],
        source_ports: vec![5000, 5001],
        ..Default::default()
    })
    .unwrap();
    let m = &l.filter_chains[0].matcher;
    let text = |r: &[crate::model::CidrRange]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(text(&m.prefix_ranges), ["198.19.4.0/24", "2001:db8::/32"]);
    assert_eq!(text(&m.direct_source_prefix_ranges), ["198.18.0.0/16"]);
    assert_eq!(m.source_type, SourceType::External);
    assert_eq!(text(&m.source_prefix_ranges), ["198.18.1.0/24"]);
    assert_eq!(m.source_ports, [5000, 5001]);
    let same = with_match(XdsFcm {
        source_type: ConnectionSourceType::SameIpOrLoopback as i32,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        same.filter_chains[0].matcher.source_type,
        SourceType::SameIpOrLoopback
    );
}

#[test]
fn bad_match_values_are_nacked_with_their_field() {
    let bad = |m: XdsFcm| with_match(m).unwrap_err();
    let e = bad(XdsFcm {
        prefix_ranges: vec![cidr("198.19.4.7", 33)],
        ..Default::default()
    });
    assert!(e.contains("prefix_ranges[0]") && e.contains("33"), "{e}");
    let e = bad(XdsFcm {
        source_prefix_ranges: vec![cidr("not-an-ip", 8)],
        ..Default::default()
    });
    assert!(e.contains("source_prefix_ranges[0]"), "{e}");
    let e = bad(XdsFcm {
        source_ports: vec![70000],
        ..Default::default()
    });
    assert!(e.contains("source_ports"), "{e}");
    let e = bad(XdsFcm {
        source_type: 7,
        ..Default::default()
    });
    assert!(e.contains("source_type"), "{e}");
}

#[test]
fn tcp_proxy_defaults_are_envoys() {
    let t = with_tcp(to_c()).unwrap();
    assert_eq!(t.idle_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(t.max_downstream_connection_duration, None);
    assert_eq!(t.max_connect_attempts, 1);
    assert_eq!(t.hash_policy, None);
}

#[test]
fn tcp_proxy_timeouts_attempts_and_hash_policy() {
    let t = with_tcp(XdsTcpProxy {
        idle_timeout: Some(PbDuration {
            seconds: 30,
            nanos: 0,
        }),
        max_downstream_connection_duration: Some(PbDuration {
            seconds: 600,
            nanos: 0,
        }),
        max_connect_attempts: Some(UInt32Value { value: 3 }),
        hash_policy: vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::SourceIp(
                hash_policy::SourceIp {},
            )),
        }],
        ..to_c()
    })
    .unwrap();
    assert_eq!(t.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        t.max_downstream_connection_duration,
        Some(Duration::from_secs(600))
    );
    assert_eq!(t.max_connect_attempts, 3);
    assert_eq!(t.hash_policy, Some(TcpHashPolicy::SourceIp));
    // 0s turns the idle timeout off.
    let off = with_tcp(XdsTcpProxy {
        idle_timeout: Some(PbDuration::default()),
        ..to_c()
    })
    .unwrap();
    assert_eq!(off.idle_timeout, None);
}

#[test]
fn tcp_proxy_features_it_cannot_honour_are_nacked() {
    let e = with_tcp(XdsTcpProxy {
        tunneling_config: Some(TunnelingConfig::default()),
        ..to_c()
    })
    .unwrap_err();
    assert!(e.contains("unsupported tunneling_config"), "{e}");
    let e = with_tcp(XdsTcpProxy {
        max_connect_attempts: Some(UInt32Value { value: 0 }),
        ..to_c()
    })
    .unwrap_err();
    assert!(e.contains("max_connect_attempts"), "{e}");
    let e = with_tcp(XdsTcpProxy {
        hash_policy: vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::FilterState(
                hash_policy::FilterState { key: "k".into() },
            )),
        }],
        ..to_c()
    })
    .unwrap_err();
    assert!(e.contains("filter_state"), "{e}");
    let e = with_tcp(XdsTcpProxy {
        metadata_match: Some(Default::default()),
        ..to_c()
    })
    .unwrap_err();
    assert!(e.contains("metadata_match"), "{e}");
    let e = with_tcp(XdsTcpProxy {
        on_demand: Some(Default::default()),
        ..to_c()
    })
    .unwrap_err();
    assert!(e.contains("on_demand"), "{e}");
}

#[test]
fn two_chains_accepting_the_same_connection_are_nacked_as_envoy_does() {
    let names = |n: &[&str]| {
        let mut fc = chain(n[0], vec![tcp(to_c())]);
        fc.filter_chain_match = Some(XdsFcm {
            server_names: n.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        fc
    };
    let convert =
        |chains| Listener::try_from(&listener("l", 443, chains)).map_err(|e| e.to_string());
    let e = convert(vec![
        names(&["a.example.com", "b.example.com"]),
        names(&["B.example.com"]),
    ])
    .unwrap_err();
    assert!(e.contains("same matching rules"), "{e}");
    convert(vec![names(&["a.example.com"]), names(&["b.example.com"])]).expect("disjoint");
    let e = convert(vec![
        chain("x", vec![tcp(to_c())]),
        chain("y", vec![tcp(to_c())]),
    ])
    .unwrap_err();
    assert!(e.contains("\"x\" and #1 \"y\""), "{e}");
}

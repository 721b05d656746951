//! LDS conversion: listeners, filter chains, HCM and TCP proxy.

use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChainMatch as XdsFcm, Listener as XdsListener,
    ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpFilter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy as XdsTcpProxy,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;

use super::*;
use crate::model::{
    ClusterTarget, HttpFilter as ModelHttpFilter, Listener, ListenerFilter as ModelListenerFilter,
    NetworkFilter, RouteAction, RouteSource, TrafficDirection,
};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection as XdsDirection;

fn convert(l: &XdsListener) -> Result<Listener, String> {
    Listener::try_from(l).map_err(|e| e.to_string())
}

fn tcp_filter(cluster: &str) -> Filter {
    let tcp = XdsTcpProxy {
        stat_prefix: "tcp".into(),
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(tcp))),
    }
}

#[test]
fn hcm_with_rds() {
    let l = listener(
        "127.0.0.1_15080",
        15080,
        vec![chain("c0", vec![hcm_filter(hcm(rds("http_proxy")))])],
    );
    let got = convert(&l).unwrap();
    assert_eq!(got.name, "127.0.0.1_15080");
    assert_eq!(got.address.to_string(), "127.0.0.1:15080");
    assert!(got.bind_to_port, "bind_to_port defaults to true");
    assert!(!got.use_original_dst);
    assert!(got.default_filter_chain.is_none());
    let NetworkFilter::Http(h) = &got.filter_chains[0].filter else {
        panic!("not HTTP")
    };
    assert!(matches!(&h.routes, RouteSource::Rds(n) if n == "http_proxy"));
    assert!(matches!(h.http_filters[..], [ModelHttpFilter::Router]));
}

#[test]
fn capture_listener_fields() {
    let mut l = listener(
        "virtualOutbound",
        15001,
        vec![chain("c0", vec![tcp_filter("PassthroughCluster")])],
    );
    l.use_original_dst = Some(BoolValue { value: true });
    l.bind_to_port = Some(BoolValue { value: false });
    l.filter_chains[0].filter_chain_match = Some(XdsFcm {
        destination_port: Some(UInt32Value { value: 9080 }),
        server_names: vec!["*.example.com".into()],
        transport_protocol: "raw_buffer".into(),
        application_protocols: vec!["http/1.1".into(), "h2c".into()],
        ..Default::default()
    });
    l.default_filter_chain = Some(chain("default", vec![tcp_filter("BlackHoleCluster")]));
    let got = convert(&l).unwrap();
    assert!(got.use_original_dst);
    assert!(!got.bind_to_port);
    let m = &got.filter_chains[0].matcher;
    assert_eq!(m.destination_port, Some(9080));
    assert_eq!(m.server_names, ["*.example.com"]);
    assert_eq!(m.transport_protocol.as_deref(), Some("raw_buffer"));
    assert_eq!(m.application_protocols, ["http/1.1", "h2c"]);
    let default = got.default_filter_chain.unwrap();
    assert!(
        matches!(&default.filter, NetworkFilter::Tcp(t) if matches!(&t.destination, ClusterTarget::Cluster(c) if c == "BlackHoleCluster"))
    );
}

#[test]
fn unknown_network_filter_names_filter_listener_and_chain() {
    let unknown = Filter {
        name: "envoy.filters.network.mongo_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(Any {
            type_url:
                "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"
                    .into(),
            value: Vec::new(),
        })),
    };
    let l = listener("db", 27017, vec![chain("mongo", vec![unknown])]);
    let err = convert(&l).unwrap_err();
    assert!(
        err.contains("unsupported filter envoy.filters.network.mongo_proxy"),
        "{err}"
    );
    assert!(err.contains("listener db chain \"mongo\""), "{err}");

    // A filter ahead of the terminal one is rejected too.
    let ahead = Filter {
        name: "istio.stats".into(),
        config_type: None,
    };
    let l = listener("l", 80, vec![chain("c", vec![ahead, tcp_filter("x")])]);
    assert!(convert(&l)
        .unwrap_err()
        .contains("unsupported filter istio.stats"));
}

#[test]
fn missing_address_and_empty_chains() {
    let mut l = listener("l", 80, vec![chain("c", vec![tcp_filter("x")])]);
    l.address = None;
    assert_eq!(convert(&l).unwrap_err(), "address: missing address");
    let l = listener("l", 80, Vec::new());
    assert!(convert(&l).unwrap_err().contains("missing filter_chains"));
    let l = listener("l", 80, vec![chain("c", Vec::new())]);
    assert!(convert(&l)
        .unwrap_err()
        .contains("filter_chains[0]: missing filters"));
    let mut l = listener("l", 80, vec![chain("c", vec![tcp_filter("x")])]);
    l.address = Some(addr("not-an-ip", 80));
    assert!(convert(&l).unwrap_err().contains("is not an IP address"));
    l.address = Some(addr("127.0.0.1", 70000));
    assert!(convert(&l).unwrap_err().contains("out of range"));
}

#[test]
fn detection_listener_filters_are_accepted() {
    let mut l = listener("l", 80, vec![chain("c", vec![tcp_filter("x")])]);
    l.listener_filters = vec![
        ListenerFilter {
            name: "envoy.filters.listener.original_dst".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                OriginalDst::default(),
            ))),
            ..Default::default()
        },
        ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            ..Default::default()
        },
        ListenerFilter {
            name: "envoy.filters.listener.http_inspector".into(),
            ..Default::default()
        },
    ];
    let got = convert(&l).unwrap();
    assert_eq!(
        got.listener_filters,
        [
            ModelListenerFilter::OriginalDst,
            ModelListenerFilter::TlsInspector,
            ModelListenerFilter::HttpInspector
        ]
    );
    assert_eq!(got.traffic_direction, None);
    l.traffic_direction = XdsDirection::Inbound as i32;
    assert_eq!(
        convert(&l).unwrap().traffic_direction,
        Some(TrafficDirection::Inbound)
    );
    l.listener_filters.push(ListenerFilter {
        name: "envoy.filters.listener.proxy_protocol".into(),
        ..Default::default()
    });
    assert!(convert(&l)
        .unwrap_err()
        .contains("listener filter envoy.filters.listener.proxy_protocol"));
}

#[test]
fn http_filters() {
    let with = |filters: Vec<HttpFilter>| {
        let mut h = hcm(rds("r"));
        h.http_filters = filters;
        convert(&listener("l", 80, vec![chain("c", vec![hcm_filter(h)])]))
    };
    let fault = |optional| HttpFilter {
        name: "envoy.filters.http.rbac".into(),
        is_optional: optional,
        ..Default::default()
    };
    let err = with(vec![fault(false), router_filter()]).unwrap_err();
    assert!(
        err.contains("http_filters[0]: unsupported HTTP filter envoy.filters.http.rbac"),
        "{err}"
    );
    with(vec![fault(true), router_filter()]).unwrap();
    assert!(with(vec![])
        .unwrap_err()
        .contains("last filter must be envoy.filters.http.router"));
    assert!(with(vec![router_filter(), router_filter()])
        .unwrap_err()
        .contains("after the router"));
    // A router named but without typed_config is still the router.
    with(vec![HttpFilter {
        name: "envoy.filters.http.router".into(),
        ..Default::default()
    }])
    .unwrap();
}

#[test]
fn inline_route_config() {
    let h = hcm(RouteSpecifier::RouteConfig(route_config(
        "inbound|9080||",
        vec![prefix_route("/", "inbound|9080||")],
    )));
    let got = convert(&listener(
        "127.0.0.1_9080",
        9080,
        vec![chain("c", vec![hcm_filter(h)])],
    ))
    .unwrap();
    let NetworkFilter::Http(h) = &got.filter_chains[0].filter else {
        panic!("not HTTP")
    };
    let RouteSource::Inline(rc) = &h.routes else {
        panic!("not inline")
    };
    assert_eq!(rc.name, "inbound|9080||");
    let RouteAction::Forward(f) = &rc.virtual_hosts[0].routes[0].action else {
        panic!()
    };
    assert!(matches!(&f.target, ClusterTarget::Cluster(c) if c == "inbound|9080||"));
    assert_eq!(f.timeout, Some(Duration::from_secs(15)));
}

#[test]
fn hcm_without_routes_or_with_scoped_routes() {
    let mut h = hcm(rds("r"));
    h.route_specifier = None;
    let err = convert(&listener("l", 80, vec![chain("c", vec![hcm_filter(h)])])).unwrap_err();
    assert!(err.contains("missing route_specifier"), "{err}");
    let err = convert(&listener(
        "l",
        80,
        vec![chain("c", vec![hcm_filter(hcm(rds("")))])],
    ))
    .unwrap_err();
    assert!(err.contains("missing rds.route_config_name"), "{err}");
}

#[test]
fn tcp_proxy() {
    let got = convert(&listener(
        "l",
        27017,
        vec![chain("c", vec![tcp_filter("outbound|27017||db")])],
    ))
    .unwrap();
    let NetworkFilter::Tcp(t) = &got.filter_chains[0].filter else {
        panic!("not TCP")
    };
    assert!(matches!(&t.destination, ClusterTarget::Cluster(c) if c == "outbound|27017||db"));
    let err = convert(&listener("l", 1, vec![chain("c", vec![tcp_filter("")])])).unwrap_err();
    assert!(err.contains("missing cluster"), "{err}");
}

#[test]
fn garbage_typed_config_is_an_error_not_a_panic() {
    let bad = Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(Any {
            type_url: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager".into(),
            value: vec![0xff, 0xff, 0xff],
        })),
    };
    let err = convert(&listener("l", 80, vec![chain("c", vec![bad])])).unwrap_err();
    assert!(err.contains("cannot decode"), "{err}");
}

//! The REDIRECT-mode xDS config of `capture_netns.rs`, shaped as
//! docs/architecture.md says pilot sends it: virtualOutbound, an HTTP port
//! listener `0.0.0.0_9080`, a server-first `VIP_3306`, virtualInbound with a
//! chain per port, and the clusters behind them.

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{BindConfig, SocketAddress, TrafficDirection};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use envoy_types::util::pack_any;

use crate::xds_support::*;

/// This pod's IP, on a veth inside the namespace.
pub const POD_IP: &str = "198.18.0.2";
/// Service VIPs: known to the mesh, assigned to no interface.
pub const HTTP_VIP: &str = "198.19.0.3";
pub const TCP_VIP: &str = "198.19.0.4";

pub const MESSENGER: &str = "outbound|9080||messenger.default.svc.cluster.local";
pub const MYSQL: &str = "outbound|3306||mysql.default.svc.cluster.local";

pub fn clusters() -> Vec<Any> {
    let original_dst = |name: &str, bind: Option<&str>| {
        pack_any(Cluster {
            name: name.into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(
                DiscoveryType::OriginalDst as i32,
            )),
            lb_policy: LbPolicy::ClusterProvided as i32,
            upstream_bind_config: bind.map(bind_config),
            ..Default::default()
        })
    };
    let inbound = |port: u32| {
        let name = format!("inbound|{port}||");
        pack_any(Cluster {
            name: name.clone(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
            load_assignment: Some(endpoints(&name, POD_IP, port)),
            upstream_bind_config: Some(bind_config("127.0.0.6")),
            ..Default::default()
        })
    };
    vec![
        eds_cluster(MESSENGER),
        eds_cluster(MYSQL),
        inbound(9080),
        inbound(3306),
        original_dst("PassthroughCluster", None),
        original_dst("InboundPassthroughCluster", Some("127.0.0.6")),
        pack_any(Cluster {
            name: "BlackHoleCluster".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
            ..Default::default()
        }),
    ]
}

fn bind_config(ip: &str) -> BindConfig {
    BindConfig {
        source_address: Some(SocketAddress {
            address: ip.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp(cluster: &str) -> Filter {
    network_filter(
        "envoy.filters.network.tcp_proxy",
        pack_any(TcpProxy {
            stat_prefix: cluster.into(),
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        }),
    )
}

fn inline_hcm(port: u32) -> Filter {
    let name = format!("inbound|{port}||");
    let hcm = HttpConnectionManager {
        stat_prefix: name.clone(),
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
            name: name.clone(),
            virtual_hosts: vec![VirtualHost {
                name: format!("inbound|http|{port}"),
                domains: vec!["*".into()],
                routes: vec![route(prefix("/"), &name)],
                ..Default::default()
            }],
            ..Default::default()
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    network_filter(
        "envoy.filters.network.http_connection_manager",
        pack_any(hcm),
    )
}

fn chain(name: &str, m: Option<FilterChainMatch>, filter: Filter) -> FilterChain {
    FilterChain {
        name: name.into(),
        filter_chain_match: m,
        filters: vec![filter],
        ..Default::default()
    }
}

fn listener_filter(name: &str) -> ListenerFilter {
    ListenerFilter {
        name: name.into(),
        ..Default::default()
    }
}

pub fn listeners() -> Vec<Any> {
    let port = |p: u32, protocols: &[&str]| FilterChainMatch {
        destination_port: Some(UInt32Value { value: p }),
        application_protocols: protocols.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let yes = Some(BoolValue { value: true });
    let no = Some(BoolValue { value: false });
    vec![
        pack_any(Listener {
            name: "virtualOutbound".into(),
            address: Some(sock("0.0.0.0", 15001)),
            use_original_dst: yes,
            traffic_direction: TrafficDirection::Outbound as i32,
            listener_filters: vec![listener_filter("envoy.filters.listener.original_dst")],
            default_filter_chain: Some(chain(
                "PassthroughCluster",
                None,
                tcp("PassthroughCluster"),
            )),
            ..Default::default()
        }),
        pack_any(Listener {
            name: "0.0.0.0_9080".into(),
            address: Some(sock("0.0.0.0", 9080)),
            bind_to_port: no,
            traffic_direction: TrafficDirection::Outbound as i32,
            listener_filters: vec![listener_filter("envoy.filters.listener.http_inspector")],
            filter_chains: vec![chain(
                "http",
                Some(FilterChainMatch {
                    application_protocols: vec!["http/1.1".into(), "h2c".into()],
                    ..Default::default()
                }),
                rds_hcm("9080"),
            )],
            default_filter_chain: Some(chain(
                "PassthroughCluster",
                None,
                tcp("PassthroughCluster"),
            )),
            ..Default::default()
        }),
        pack_any(Listener {
            name: format!("{TCP_VIP}_3306"),
            address: Some(sock(TCP_VIP, 3306)),
            bind_to_port: no,
            traffic_direction: TrafficDirection::Outbound as i32,
            filter_chains: vec![chain(MYSQL, None, tcp(MYSQL))],
            ..Default::default()
        }),
        pack_any(Listener {
            name: "virtualInbound".into(),
            address: Some(sock("0.0.0.0", 15006)),
            traffic_direction: TrafficDirection::Inbound as i32,
            listener_filters: vec![
                listener_filter("envoy.filters.listener.original_dst"),
                listener_filter("envoy.filters.listener.http_inspector"),
            ],
            filter_chains: vec![
                chain(
                    "inbound|9080||",
                    Some(port(9080, &["http/1.1", "h2c"])),
                    inline_hcm(9080),
                ),
                chain(
                    "inbound|3306||",
                    Some(port(3306, &[])),
                    tcp("inbound|3306||"),
                ),
            ],
            default_filter_chain: Some(chain(
                "InboundPassthroughCluster",
                None,
                tcp("InboundPassthroughCluster"),
            )),
            ..Default::default()
        }),
    ]
}

pub fn outbound_routes() -> Any {
    let domains = ["messenger", "messenger.default.svc.cluster.local", HTTP_VIP]
        .iter()
        .flat_map(|h| [h.to_string(), format!("{h}:9080")])
        .collect();
    pack_any(RouteConfiguration {
        name: "9080".into(),
        virtual_hosts: vec![
            VirtualHost {
                name: "messenger.default.svc.cluster.local:9080".into(),
                domains,
                routes: vec![route(prefix("/"), MESSENGER)],
                ..Default::default()
            },
            VirtualHost {
                name: "allow_any".into(),
                domains: vec!["*".into()],
                routes: vec![route(prefix("/"), "PassthroughCluster")],
                ..Default::default()
            },
        ],
        ..Default::default()
    })
}

//! Shared harness of the xDS integration tests: the workspace's fake pilot
//! (`mesh_test_support::fake_pilot`, an ADS server the test drives by
//! hand), the proxy's xDS client and admin server running against it, and
//! proto builders.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use mesh_api::node::{Node, NodeMetadata};
use mesh_proxy::admin::{self, AdminState};
use mesh_proxy::model::SnapshotStore;
use mesh_proxy::xds::{self, XdsConfig, XdsStatus};
pub use mesh_test_support::fake_pilot::{start_pilot, PilotStream, STEP};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const CDS: &str = mesh_api::names::CLUSTER_TYPE;
pub const EDS: &str = mesh_api::names::ENDPOINT_TYPE;
pub const LDS: &str = mesh_api::names::LISTENER_TYPE;
pub const RDS: &str = mesh_api::names::ROUTE_TYPE;

pub const NODE_ID: &str = "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local";

/// A fake pilot and a proxy (xDS client + admin) connected to it.
pub struct Harness {
    pub store: Arc<SnapshotStore>,
    pub status: Arc<XdsStatus>,
    pub admin: SocketAddr,
    pub client: JoinHandle<Result<(), xds::XdsError>>,
    pub shutdown: CancellationToken,
    streams: Mutex<mpsc::Receiver<PilotStream>>,
}

impl Harness {
    pub async fn start() -> Harness {
        let shutdown = CancellationToken::new();
        let (pilot_addr, streams) = start_pilot("127.0.0.1:0", shutdown.clone()).await;

        let store = Arc::new(SnapshotStore::new());
        let status = Arc::new(XdsStatus::new());
        let meta = NodeMetadata {
            labels: [("app".to_string(), "greeter".to_string())].into(),
            ..NodeMetadata::default()
        };
        let node = Node::parse(NODE_ID, &meta).unwrap();
        let config = XdsConfig {
            address: pilot_addr.to_string(),
            node,
        };
        let client = tokio::spawn(xds::run(
            config,
            store.clone(),
            status.clone(),
            shutdown.clone(),
        ));

        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let state = AdminState {
            store: store.clone(),
            status: status.clone(),
        };
        tokio::spawn(admin::serve(admin_listener, state, shutdown.clone()));

        Harness {
            store,
            status,
            admin,
            client,
            shutdown,
            streams: Mutex::new(streams),
        }
    }

    /// The next ADS stream the proxy opens.
    pub async fn next_stream(&self) -> PilotStream {
        let mut streams = self.streams.lock().await;
        tokio::time::timeout(STEP, streams.recv())
            .await
            .expect("timed out waiting for the proxy to connect")
            .expect("pilot stopped")
    }

    /// GET an admin path: status and body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("http://{}{path}", self.admin))
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// `/config_dump` as JSON.
    pub async fn config_dump(&self) -> serde_json::Value {
        let (code, body) = self.admin_get("/config_dump").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops the proxy and checks it stopped cleanly, without a panic.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(STEP, self.client)
            .await
            .expect("xDS client ignored shutdown");
        result
            .expect("xDS client panicked")
            .expect("xDS client failed");
    }
}

pub fn sock(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

pub fn eds_cluster(name: &str) -> Any {
    pack_any(Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        ..Default::default()
    })
}

pub fn static_cluster(name: &str, ip: &str, port: u32) -> Any {
    pack_any(Cluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        load_assignment: Some(endpoints(name, ip, port)),
        ..Default::default()
    })
}

pub fn endpoints(cluster: &str, ip: &str, port: u32) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                    address: Some(sock(ip, port)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn network_filter(name: &str, typed_config: Any) -> Filter {
    Filter {
        name: name.into(),
        config_type: Some(filter::ConfigType::TypedConfig(typed_config)),
    }
}

pub fn rds_hcm(route_config: &str) -> Filter {
    let hcm = HttpConnectionManager {
        stat_prefix: "outbound".into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route_config.into(),
            config_source: None,
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

pub fn listener(name: &str, port: u32, chain_name: &str, filters: Vec<Filter>) -> Any {
    pack_any(Listener {
        name: name.into(),
        address: Some(sock("127.0.10.1", port)),
        filter_chains: vec![FilterChain {
            name: chain_name.into(),
            filters,
            ..Default::default()
        }],
        ..Default::default()
    })
}

pub fn route(path: PathSpecifier, cluster: &str) -> Route {
    Route {
        name: format!("to {cluster}"),
        r#match: Some(RouteMatch {
            path_specifier: Some(path),
            ..Default::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn prefix(p: &str) -> PathSpecifier {
    PathSpecifier::Prefix(p.into())
}

pub fn regex(re: &str) -> PathSpecifier {
    PathSpecifier::SafeRegex(RegexMatcher {
        regex: re.into(),
        engine_type: None,
    })
}

pub fn route_config(name: &str, routes: Vec<Route>) -> Any {
    pack_any(route_config_proto(name, routes))
}

/// The route configuration [`route_config`] packs.
pub fn route_config_proto(name: &str, routes: Vec<Route>) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "messenger.default.svc.cluster.local:9080".into(),
            domains: vec!["messenger".into(), "messenger:9080".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

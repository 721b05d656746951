//! The ADS state machine, driven with made-up responses (no network).

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, Address, Node, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use envoy_types::util::pack_any;

use super::{AdsState, ResourceType};
use crate::model::SnapshotStore;
use crate::xds::status::XdsStatus;

const CDS: ResourceType = ResourceType::Cluster;
const EDS: ResourceType = ResourceType::Endpoint;
const LDS: ResourceType = ResourceType::Listener;
const RDS: ResourceType = ResourceType::Route;

struct Harness {
    state: AdsState,
    store: Arc<SnapshotStore>,
    status: Arc<XdsStatus>,
    nonce: u32,
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(SnapshotStore::new());
        let status = Arc::new(XdsStatus::new());
        let node = Node {
            id: "sidecar~127.0.0.1~a.default~default.svc.cluster.local".into(),
            ..Default::default()
        };
        let state = AdsState::new(node, store.clone(), status.clone());
        Self {
            state,
            store,
            status,
            nonce: 0,
        }
    }

    fn push(
        &mut self,
        ty: ResourceType,
        version: &str,
        resources: Vec<Any>,
    ) -> Vec<DiscoveryRequest> {
        self.nonce += 1;
        self.state.handle(DiscoveryResponse {
            version_info: version.into(),
            resources,
            type_url: ty.type_url().into(),
            nonce: self.nonce.to_string(),
            ..Default::default()
        })
    }
}

fn sock(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn eds_cluster(name: &str) -> Any {
    pack_any(XdsCluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        ..Default::default()
    })
}

fn cla(name: &str, port: u32) -> Any {
    pack_any(ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                    address: Some(sock("127.0.0.1", port)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn rds_listener(name: &str, route: &str) -> Any {
    let hcm = HttpConnectionManager {
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route.into(),
            config_source: None,
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    pack_any(Listener {
        name: name.into(),
        address: Some(sock("127.0.0.1", 15080)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn route_config(name: &str, cluster: &str) -> Any {
    pack_any(route_config_proto(name, cluster))
}

/// A route config that refuses routes to missing clusters
/// (`validate_clusters`), as Envoy then does.
fn validated_route_config(name: &str, cluster: &str) -> Any {
    pack_any(RouteConfiguration {
        validate_clusters: Some(BoolValue { value: true }),
        ..route_config_proto(name, cluster)
    })
}

fn route_config_proto(name: &str, cluster: &str) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(Action::Route(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn is_ack(r: &DiscoveryRequest, ty: ResourceType, version: &str) -> bool {
    r.type_url == ty.type_url() && r.version_info == version && r.error_detail.is_none()
}

#[test]
fn first_requests_are_wildcard_cds_and_lds_and_only_the_first_has_the_node() {
    let mut h = Harness::new();
    let reqs = h.state.start_stream();
    let types: Vec<&str> = reqs.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(types, [CDS.type_url(), LDS.type_url()]);
    assert!(reqs
        .iter()
        .all(|r| r.resource_names.is_empty() && r.version_info.is_empty()));
    let has_node = |r: &DiscoveryRequest| {
        r.node
            .as_ref()
            .is_some_and(|n| n.id.starts_with("sidecar~"))
    };
    assert!(has_node(&reqs[0]));
    assert!(reqs[1].node.is_none(), "the node goes once per stream");
    let acks = h.push(CDS, "c1", vec![eds_cluster("a")]);
    assert!(acks.iter().all(|r| r.node.is_none()), "{acks:?}");
    // A new stream sends it again, on its first request only.
    let reqs = h.state.start_stream();
    assert!(has_node(&reqs[0]));
    assert!(reqs[1..].iter().all(|r| r.node.is_none()));
    let reqs = h.state.handle(DiscoveryResponse {
        type_url: "type.googleapis.com/unknown".into(),
        ..Default::default()
    });
    assert!(reqs[0].node.is_none());
}

#[test]
fn cds_ack_subscribes_eds_and_publishes() {
    let mut h = Harness::new();
    h.state.start_stream();
    let generation = *h.store.subscribe().borrow();
    let reqs = h.push(
        CDS,
        "v1",
        vec![
            eds_cluster("outbound|9080||m"),
            eds_cluster("outbound|9080|v1|m"),
        ],
    );
    assert_eq!(reqs.len(), 2);
    assert!(is_ack(&reqs[0], CDS, "v1") && reqs[0].response_nonce == "1");
    assert_eq!(reqs[1].type_url, EDS.type_url());
    assert_eq!(
        reqs[1].resource_names,
        ["outbound|9080|v1|m", "outbound|9080||m"]
    );
    assert_eq!(h.store.load().clusters.len(), 2);
    assert_ne!(*h.store.subscribe().borrow(), generation);
    assert!(!h.status.ready(), "LDS not applied yet");

    let reqs = h.push(
        EDS,
        "e1",
        vec![cla("outbound|9080||m", 1), cla("outbound|9080|v1|m", 2)],
    );
    assert_eq!(reqs.len(), 1);
    assert!(is_ack(&reqs[0], EDS, "e1"));
    assert_eq!(
        reqs[0].resource_names.len(),
        2,
        "ACKs keep the subscription"
    );
    assert_eq!(h.store.load().endpoints.len(), 2);

    // The same CDS again: no new EDS request.
    assert_eq!(
        h.push(
            CDS,
            "v2",
            vec![
                eds_cluster("outbound|9080||m"),
                eds_cluster("outbound|9080|v1|m")
            ]
        )
        .len(),
        1
    );
    // A smaller CDS drops the subscription and the stale endpoints at once.
    let reqs = h.push(CDS, "v3", vec![eds_cluster("outbound|9080||m")]);
    assert_eq!(reqs[1].resource_names, ["outbound|9080||m"]);
    assert_eq!(reqs[1].version_info, "e1");
    assert_eq!(
        h.store.load().endpoints.keys().collect::<Vec<_>>(),
        ["outbound|9080||m"]
    );
}

#[test]
fn lds_then_rds_then_ready() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a")]);
    let reqs = h.push(LDS, "l1", vec![rds_listener("l", "http_proxy")]);
    assert!(is_ack(&reqs[0], LDS, "l1"));
    assert_eq!(reqs[1].type_url, RDS.type_url());
    assert_eq!(reqs[1].resource_names, ["http_proxy"]);
    assert!(
        !h.status.ready(),
        "the listener warms until its routes arrive"
    );
    assert!(h.store.load().listeners.is_empty(), "not served before RDS");
    assert_eq!(h.status.view().warming_listeners, ["l"]);
    let reqs = h.push(RDS, "r1", vec![route_config("http_proxy", "a")]);
    assert!(is_ack(&reqs[0], RDS, "r1"));
    assert!(h.store.load().route_configs.contains_key("http_proxy"));
    assert!(
        h.store.load().listeners.is_empty(),
        "and until the endpoints of the clusters they route to"
    );
    assert!(!h.status.ready());
    h.push(EDS, "e1", vec![cla("a", 1)]);
    assert!(h.store.load().listeners.contains_key("l"));
    assert!(h.status.view().warming_listeners.is_empty());
    assert!(h.status.ready());
}

#[test]
fn nack_keeps_the_snapshot_and_the_previous_version() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a")]);
    h.push(
        LDS,
        "l1",
        vec![rds_listener("l", "r"), rds_listener("l2", "other")],
    );
    h.push(RDS, "r1", vec![route_config("r", "a")]);
    let before = h.store.load();

    // One bad route config among good ones: the whole response is NACKed.
    let reqs = h.push(
        RDS,
        "r2",
        vec![
            route_config("r", "a"),
            validated_route_config("other", "missing"),
        ],
    );
    assert_eq!(reqs.len(), 1);
    let nack = &reqs[0];
    assert_eq!(
        (nack.version_info.as_str(), nack.response_nonce.as_str()),
        ("r1", "4")
    );
    let msg = &nack.error_detail.as_ref().unwrap().message;
    assert!(
        msg.contains("RouteConfiguration other: route to unknown cluster \"missing\""),
        "{msg}"
    );
    assert!(
        Arc::ptr_eq(&before, &h.store.load()),
        "the old snapshot keeps serving"
    );
    let view = h.status.view();
    assert_eq!(view.acked[RDS.type_url()], "r1");
    assert_eq!(view.last_nack.as_ref().unwrap().version, "r2");

    // Undecodable bytes are a NACK, not a panic.
    let garbage = Any {
        type_url: LDS.type_url().into(),
        value: vec![0xff; 7],
    };
    let reqs = h.push(LDS, "l2", vec![garbage, rds_listener("", "r")]);
    let msg = &reqs[0].error_detail.as_ref().unwrap().message;
    assert!(
        msg.contains("Listener #0: cannot decode") && msg.contains("Listener #1: missing name"),
        "{msg}"
    );
    assert_eq!(reqs[0].version_info, "l1");
    assert!(Arc::ptr_eq(&before, &h.store.load()));
}

/// As Envoy: a route configuration over RDS may name a cluster CDS has not
/// sent (yet); it is accepted and the route answers 503 `NC` until the
/// cluster arrives. Refusing it would freeze the listener's routes on a
/// VirtualService whose destination does not exist yet.
#[test]
fn rds_naming_a_cluster_not_there_is_acked() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a")]);
    h.push(LDS, "l1", vec![rds_listener("l", "r")]);
    let reqs = h.push(RDS, "r1", vec![route_config("r", "not-yet")]);
    assert!(is_ack(&reqs[0], RDS, "r1"), "{reqs:?}");
    assert!(h.store.load().route_configs.contains_key("r"));
}

#[test]
fn cds_removing_a_routed_cluster_is_not_a_cds_nack() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a"), eds_cluster("b")]);
    h.push(LDS, "l1", vec![rds_listener("l", "r")]);
    h.push(RDS, "r1", vec![route_config("r", "b")]);
    // Pilot sends CDS before the RDS that stops using "b".
    let reqs = h.push(CDS, "c2", vec![eds_cluster("a")]);
    assert!(is_ack(&reqs[0], CDS, "c2"));
    let reqs = h.push(RDS, "r2", vec![route_config("r", "a")]);
    assert!(is_ack(&reqs[0], RDS, "r2"));
}

#[test]
fn reconnect_resumes_with_versions_and_subscriptions() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a")]);
    h.push(EDS, "e1", vec![cla("a", 1)]);
    h.push(LDS, "l1", vec![rds_listener("l", "r")]);
    let reqs = h.state.start_stream();
    let got: Vec<(&str, &str, Vec<String>)> = reqs
        .iter()
        .map(|r| {
            (
                r.type_url.as_str(),
                r.version_info.as_str(),
                r.resource_names.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (CDS.type_url(), "c1", vec![]),
            (EDS.type_url(), "e1", vec!["a".to_owned()]),
            (LDS.type_url(), "l1", vec![]),
            (RDS.type_url(), "", vec!["r".to_owned()]),
        ]
    );
    assert!(reqs.iter().all(|r| r.response_nonce.is_empty()));
}

#[test]
fn unknown_type_is_nacked() {
    let mut h = Harness::new();
    let reqs = h.state.handle(DiscoveryResponse {
        type_url: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret".into(),
        nonce: "n".into(),
        ..Default::default()
    });
    assert!(reqs[0]
        .error_detail
        .as_ref()
        .unwrap()
        .message
        .contains("unsupported type"));
}

#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut h = Harness::new();
    h.state.start_stream();
    for round in 0..400 {
        let ty = ResourceType::ALL[round % 4];
        let len = rng.random_range(0..64);
        let value: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let any = Any {
            type_url: ty.type_url().into(),
            value,
        };
        let reqs = h.push(ty, "x", vec![any]);
        // Short inputs can decode to an empty message: accepted or NACKed,
        // either way answered, never a panic.
        assert_eq!(reqs[0].type_url, ty.type_url());
    }
}

#[test]
fn the_last_eds_name_going_sends_an_empty_list_and_means_none() {
    let mut h = Harness::new();
    h.state.start_stream();
    let reqs = h.push(CDS, "c1", vec![eds_cluster("a")]);
    assert_eq!(reqs[1].resource_names, ["a"]);
    h.push(EDS, "e1", vec![cla("a", 1)]);
    // No EDS cluster left: unsubscribe by sending the list without it.
    let reqs = h.push(CDS, "c2", vec![]);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].type_url, EDS.type_url());
    assert!(reqs[1].resource_names.is_empty());
    assert!(h.store.load().endpoints.is_empty());
    // A pilot that took the empty list for a wildcard: its resources are
    // ACKed but not kept.
    let reqs = h.push(EDS, "e2", vec![cla("a", 1), cla("b", 2)]);
    assert!(is_ack(&reqs[0], EDS, "e2"));
    assert!(
        reqs[0].resource_names.is_empty(),
        "still subscribed to none"
    );
    assert!(h.store.load().endpoints.is_empty());
    // Nor are names never asked for while others are.
    h.push(CDS, "c3", vec![eds_cluster("a")]);
    h.push(EDS, "e3", vec![cla("a", 1), cla("b", 2)]);
    let kept: Vec<String> = h.store.load().endpoints.keys().cloned().collect();
    assert_eq!(kept, ["a"]);
    // A new stream with no names asks for no EDS at all (an empty first
    // request would be a wildcard).
    h.push(CDS, "c4", vec![]);
    let reqs = h.state.start_stream();
    assert!(reqs.iter().all(|r| r.type_url != EDS.type_url()));
}

#[test]
fn a_changed_listener_warming_leaves_its_older_version_serving() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![eds_cluster("a")]);
    h.push(EDS, "e1", vec![cla("a", 1)]);
    h.push(LDS, "l1", vec![rds_listener("l", "r1")]);
    h.push(RDS, "r1", vec![route_config("r1", "a")]);
    assert!(h.status.ready());
    let serving = h.store.load().listeners["l"].clone();

    // The new version names a route config that has not arrived.
    let reqs = h.push(LDS, "l2", vec![rds_listener("l", "r2")]);
    assert_eq!(reqs[1].resource_names, ["r1", "r2"], "old and new routes");
    let snapshot = h.store.load();
    assert!(Arc::ptr_eq(&snapshot.listeners["l"], &serving));
    assert!(
        snapshot.route_configs.contains_key("r1"),
        "the old one's routes stay"
    );
    assert_eq!(h.status.view().warming_listeners, ["l"]);
    assert!(
        h.status.ready(),
        "a warming update does not unready the proxy"
    );

    let reqs = h.push(RDS, "r2", vec![route_config("r2", "a")]);
    assert!(is_ack(&reqs[0], RDS, "r2"));
    assert_eq!(
        reqs[1].resource_names,
        ["r2"],
        "the old routes unsubscribed"
    );
    let snapshot = h.store.load();
    assert!(
        !Arc::ptr_eq(&snapshot.listeners["l"], &serving),
        "new version serves"
    );
    assert!(
        !snapshot.route_configs.contains_key("r1"),
        "old routes let go"
    );
    assert!(h.status.view().warming_listeners.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_listener_whose_routes_never_come_serves_after_the_warming_timeout() {
    let mut h = Harness::new();
    h.state.start_stream();
    h.push(CDS, "c1", vec![]);
    h.push(LDS, "l1", vec![rds_listener("l", "never")]);
    let deadline = h.state.warming_deadline().expect("warming");
    assert_eq!(
        deadline,
        tokio::time::Instant::now() + super::WARMING_TIMEOUT
    );
    // A re-sent, unchanged listener keeps its clock.
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    h.push(LDS, "l2", vec![rds_listener("l", "never")]);
    assert_eq!(h.state.warming_deadline(), Some(deadline));
    assert!(h.state.expire_warming().is_empty());
    assert!(h.store.load().listeners.is_empty(), "not yet");
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    h.state.expire_warming();
    assert!(h.store.load().listeners.contains_key("l"));
    assert!(h.state.warming_deadline().is_none());
    assert!(h.status.ready());
    // It stays served through later pushes.
    h.push(LDS, "l3", vec![rds_listener("l", "never")]);
    assert!(h.store.load().listeners.contains_key("l"));
}

#[test]
fn a_cluster_sent_again_unchanged_keeps_its_model_and_a_changed_one_is_new() {
    let mut h = Harness::new();
    h.push(CDS, "1", vec![eds_cluster("a"), eds_cluster("b")]);
    let before = h.store.load();
    let mut changed = XdsCluster {
        name: "b".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        ..Default::default()
    };
    changed.connect_timeout = Some(envoy_types::pb::google::protobuf::Duration {
        seconds: 3,
        nanos: 0,
    });
    h.push(CDS, "2", vec![eds_cluster("a"), pack_any(changed)]);
    let after = h.store.load();
    assert!(
        Arc::ptr_eq(&before.clusters["a"], &after.clusters["a"]),
        "unchanged: the same model, its pools stay"
    );
    assert!(
        !Arc::ptr_eq(&before.clusters["b"], &after.clusters["b"]),
        "changed: a new model"
    );
    assert_eq!(
        after.clusters["b"].connect_timeout,
        std::time::Duration::from_secs(3)
    );
}

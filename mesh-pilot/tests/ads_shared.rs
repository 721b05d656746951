//! Pilot shares work across proxies (issue 6): 50 capturing sidecars of
//! one namespace on the in-process ADS server, each subscribed to CDS, EDS,
//! LDS and RDS. Per push, the outbound clusters and the route configs they
//! share are built once (as `/debug/pushz` counts them), while each sidecar
//! still gets its own inbound cluster and listener.

mod fake_proxy;

use std::fmt::Write as _;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use prost::Message;
use serde_json::json;
use tokio::sync::watch;

use fake_proxy::{node, push_context, FakeProxy};
use mesh_pilot::debug::pushz;
use mesh_pilot::xds::server::{AdsServer, SyncTable};
use mesh_pilot::xds::{CLUSTER_TYPE, ROUTE_TYPE};

const SIDECARS: usize = 50;

const SERVICES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: greeter}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: messenger, namespace: default}
spec:
  hosts: [messenger.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 198.18.2.1, labels: {version: v1}}, {address: 198.18.2.2, labels: {version: v2}}]
"#;

/// Sidecar `i`'s workload address.
fn ip(i: usize) -> String {
    format!("198.18.1.{}", i + 1)
}

/// The services, a WorkloadEntry per sidecar, and messenger's subsets and
/// route: `subsets` subset names, all traffic to `to`.
fn config(subsets: &[&str], to: &str) -> String {
    let mut yaml = SERVICES.to_string();
    for i in 0..SIDECARS {
        write!(
            yaml,
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: greeter-{i}, namespace: default}}\nspec: {{address: {}, labels: {{app: greeter}}}}\n",
            ip(i)
        )
        .unwrap();
    }
    let subsets: Vec<String> = subsets
        .iter()
        .map(|s| format!("{{name: {s}, labels: {{version: {s}}}}}"))
        .collect();
    write!(
        yaml,
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: messenger, namespace: default}}\nspec:\n  host: messenger\n  subsets: [{}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: messenger, namespace: default}}\nspec:\n  hosts: [messenger]\n  http: [{{route: [{{destination: {{host: messenger, subset: {to}}}}}]}}]\n",
        subsets.join(", ")
    )
    .unwrap();
    yaml
}

/// The one endpoint address of cluster `name` in a CDS response.
fn static_endpoint(cds: &DiscoveryResponse, name: &str) -> String {
    let cluster = cds
        .resources
        .iter()
        .filter_map(|a| Cluster::decode(a.value.as_slice()).ok())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"));
    let la = cluster.load_assignment.expect("a static load assignment");
    let ep = &la.endpoints[0].lb_endpoints[0];
    let Some(HostIdentifier::Endpoint(ep)) = &ep.host_identifier else {
        panic!("no endpoint")
    };
    match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
        Some(address::Address::SocketAddress(sa)) => {
            assert_eq!(
                sa.port_specifier,
                Some(socket_address::PortSpecifier::PortValue(9080))
            );
            sa.address.clone()
        }
        other => panic!("{other:?}"),
    }
}

/// Builds and hits of the latest push, per shared family, and own builds.
fn counts(doc: &serde_json::Value) -> serde_json::Value {
    let family = |f: &str| json!([doc["shared"][f]["builds"], doc["shared"][f]["hits"]]);
    json!({
        "version": doc["version"],
        "clusters": family("clusters"),
        "endpoints": family("endpoints"),
        "outbound_listeners": family("outbound_listeners"),
        "routes": family("routes"),
        "own": doc["own_builds"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sidecars_of_one_namespace_share_one_build_per_push() {
    let (push_tx, push_rx) = watch::channel(push_context(1, &config(&["v1", "v2"], "v1")));
    let (stop_tx, stop_rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ads = AdsServer::new(push_rx, SyncTable::default(), stop_rx);
    let caches = ads.caches();
    let server = tokio::spawn(ads.serve(listener));

    let mut proxies = Vec::new();
    let mut first_routes = Vec::new();
    for i in 0..SIDECARS {
        let id = format!(
            "sidecar~{}~greeter-{i}.default~default.svc.cluster.local",
            ip(i)
        );
        let mut p = FakeProxy::connect(addr, node(&id, &[("app", "greeter")], &[])).await;
        let [cds, _eds, lds, rds] =
            <[DiscoveryResponse; 4]>::try_from(p.subscribe_all(&["9080"]).await)
                .expect("four responses");
        // Its own inbound cluster reaches its own workload.
        assert_eq!(static_endpoint(&cds, "inbound|9080||"), ip(i));
        assert!(
            lds.resources.len() > 1,
            "virtualInbound and outbound listeners"
        );
        first_routes.push(rds.resources);
        proxies.push(p);
    }
    assert!(
        first_routes.windows(2).all(|w| w[0] == w[1]),
        "one route view"
    );
    assert_eq!(
        counts(&pushz(&caches)),
        json!({
            "version": "1",
            "clusters": [1, SIDECARS - 1],
            "endpoints": [1, SIDECARS - 1],
            "outbound_listeners": [1, SIDECARS - 1],
            "routes": [1, SIDECARS - 1],
            "own": SIDECARS,
        })
    );

    // A new subset (CDS) and a new route (RDS), pushed to all 50.
    push_tx.send_replace(push_context(2, &config(&["v1", "v2", "v3"], "v3")));
    for (i, p) in proxies.iter_mut().enumerate() {
        let cds = p.recv_type(CLUSTER_TYPE).await;
        assert_eq!(cds.version_info, "2");
        assert_eq!(static_endpoint(&cds, "inbound|9080||"), ip(i));
        let rds = p.recv_type(ROUTE_TYPE).await;
        let rc = envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
            rds.resources[0].value.as_slice(),
        )
        .unwrap();
        let messenger = rc
            .virtual_hosts
            .iter()
            .find(|v| v.name == "messenger.default.svc.cluster.local:9080")
            .expect("messenger's virtual host");
        assert!(format!("{:?}", messenger.routes[0].action).contains("outbound|9080|v3|messenger"));
    }
    assert_eq!(
        counts(&pushz(&caches)),
        json!({
            "version": "2",
            "clusters": [1, SIDECARS - 1],
            "endpoints": [1, SIDECARS - 1],
            "outbound_listeners": [1, SIDECARS - 1],
            "routes": [1, SIDECARS - 1],
            "own": SIDECARS,
        })
    );

    stop_tx.send_replace(true);
    drop(proxies);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops on shutdown")
        .expect("server task")
        .expect("server ok");
}

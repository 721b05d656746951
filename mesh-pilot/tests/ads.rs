//! The ADS server in-process (127.0.0.1:0) with tonic clients playing
//! proxies: subscribe to CDS/EDS/LDS/RDS and ACK; a config change pushes
//! only what changed, only to the proxies whose view changed; a NACK is
//! recorded in syncz with its reason and not answered with a resend.

mod fake_proxy;

use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use prost::Message;
use tokio::sync::watch;

use fake_proxy::{node, push_context, FakeProxy};
use mesh_pilot::xds::server::{AdsServer, SyncTable};
use mesh_pilot::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE};

const BASE: &str = r#"
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
  workloadSelector: {labels: {app: messenger}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-v1, namespace: default}
spec: {address: 127.0.30.1, labels: {app: greeter, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-v1, namespace: default}
spec: {address: 127.0.30.2, labels: {app: messenger, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-v2, namespace: default}
spec: {address: 127.0.30.3, labels: {app: messenger, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: messenger, namespace: default}
spec:
  host: messenger
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: greeter}}]}]
"#;

fn messenger_vs(subset: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: messenger, namespace: default}}\nspec:\n  hosts: [messenger]\n  http: [{{route: [{{destination: {{host: messenger, subset: {subset}}}}}]}}]\n"
    )
}

fn route_cluster(rds: &DiscoveryResponse, vhost: &str) -> String {
    let rc = RouteConfiguration::decode(rds.resources[0].value.as_slice()).expect("route config");
    let vh = rc
        .virtual_hosts
        .iter()
        .find(|v| v.name == vhost)
        .expect("virtual host");
    format!("{:?}", vh.routes[0].action)
}

async fn syncz_entry(sync: &SyncTable, node_id: &str) -> serde_json::Value {
    let all = mesh_pilot::debug::syncz(sync);
    all.as_array()
        .and_then(|a| a.iter().find(|p| p["node_id"] == node_id).cloned())
        .unwrap_or_else(|| panic!("{node_id} not in syncz: {all}"))
}

#[tokio::test]
async fn subscribe_push_nack_and_no_push_for_unchanged_views() {
    let (push_tx, push_rx) =
        watch::channel(push_context(1, &format!("{BASE}{}", messenger_vs("v1"))));
    let (stop_tx, stop_rx) = watch::channel(false);
    let sync = SyncTable::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(AdsServer::new(push_rx, sync.clone(), stop_rx).serve(listener));

    let greeter_id = "sidecar~127.0.30.1~greeter-v1.default~default.svc.cluster.local";
    let mut greeter = FakeProxy::connect(
        addr,
        node(
            greeter_id,
            &[("app", "greeter"), ("version", "v1")],
            &[("INTERCEPTION_MODE", "NONE"), ("HTTP_PROXY_PORT", "15080")],
        ),
    )
    .await;
    let gateway_id = "router~127.0.30.9~ingress.istio-system~istio-system.svc.cluster.local";
    let mut gateway = FakeProxy::connect(
        addr,
        node(
            gateway_id,
            &[("istio", "ingressgateway")],
            &[("MESH_GATEWAY_PORTS", "80=18080")],
        ),
    )
    .await;

    let first = greeter.subscribe_all(&["http_proxy"]).await;
    let vhost = "messenger.default.svc.cluster.local:9080";
    assert!(route_cluster(&first[3], vhost).contains("outbound|9080|v1|messenger"));
    gateway.subscribe_all(&["http.80"]).await;
    let st = syncz_entry(&sync, greeter_id).await;
    assert_eq!(st["connected"], true);
    assert_eq!(st["acked"][ROUTE_TYPE], "1");
    assert!(st["last_nack"].is_null());

    // A stale nonce is ignored: no answer.
    greeter.send(CLUSTER_TYPE, &[], "1", "no-such-nonce").await;
    greeter.expect_silence("stale nonce").await;

    // All to v2: only the sidecar's routes change; the gateway's view does not.
    push_tx.send_replace(push_context(2, &format!("{BASE}{}", messenger_vs("v2"))));
    let pushed = greeter.recv().await;
    assert_eq!(pushed.type_url, ROUTE_TYPE);
    assert_eq!(pushed.version_info, "2");
    assert!(route_cluster(&pushed, vhost).contains("outbound|9080|v2|messenger"));
    greeter.expect_silence("only RDS changed").await;
    gateway.expect_silence("gateway view unchanged").await;

    // The sidecar rejects it: recorded, stays on version 1, nothing resent.
    greeter
        .nack(&pushed, "1", "route http_proxy: no such cluster")
        .await;
    greeter.expect_silence("NACK is not answered").await;
    let st = syncz_entry(&sync, greeter_id).await;
    assert_eq!(st["acked"][ROUTE_TYPE], "1");
    assert_eq!(st["sent"][ROUTE_TYPE], "2");
    assert_eq!(st["last_nack"]["version"], "2");
    assert_eq!(st["last_nack"]["type_url"], ROUTE_TYPE);
    assert_eq!(
        st["last_nack"]["reason"],
        "route http_proxy: no such cluster"
    );

    // The same content under a new version is not pushed again.
    push_tx.send_replace(push_context(3, &format!("{BASE}{}", messenger_vs("v2"))));
    greeter.expect_silence("same content after a NACK").await;

    // New content is; the ACK clears nothing but moves the acked version.
    push_tx.send_replace(push_context(4, &format!("{BASE}{}", messenger_vs("v1"))));
    let pushed = greeter.recv().await;
    assert_eq!(
        (pushed.type_url.as_str(), pushed.version_info.as_str()),
        (ROUTE_TYPE, "4")
    );
    greeter.ack(&pushed, &["http_proxy"]).await;
    gateway.expect_silence("gateway view still unchanged").await;
    let st = syncz_entry(&sync, greeter_id).await;
    assert_eq!(st["acked"][ROUTE_TYPE], "4");

    // A new workload changes clusters' endpoints only: EDS to both proxies.
    let more = format!(
        "{BASE}{}---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: messenger-v1b, namespace: default}}\nspec: {{address: 127.0.30.4, labels: {{app: messenger, version: v1}}}}\n",
        messenger_vs("v1")
    );
    push_tx.send_replace(push_context(5, &more));
    for p in [&mut greeter, &mut gateway] {
        let pushed = p.recv().await;
        assert_eq!(pushed.type_url, ENDPOINT_TYPE);
        p.expect_silence("only EDS changed").await;
    }

    // Disconnect shows in syncz.
    drop(greeter);
    let mut disconnected = false;
    for _ in 0..50 {
        if syncz_entry(&sync, greeter_id).await["connected"] == false {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(disconnected, "greeter still shown as connected");

    stop_tx.send_replace(true);
    drop(gateway);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops on shutdown")
        .expect("server task")
        .expect("server ok");
}

#[tokio::test]
async fn a_stream_without_a_valid_node_is_refused() {
    let (_push_tx, push_rx) = watch::channel(push_context(1, BASE));
    let (_stop_tx, stop_rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(AdsServer::new(push_rx, SyncTable::default(), stop_rx).serve(listener));
    let mut p = FakeProxy::connect(addr, node("not-a-node-id", &[], &[])).await;
    p.send(CLUSTER_TYPE, &[], "", "").await;
    let got = tokio::time::timeout(Duration::from_secs(5), p.rx.message())
        .await
        .expect("answer");
    let status = got.expect_err("an error status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("not-a-node-id"),
        "{}",
        status.message()
    );
}

/// One message of a delta stream, within a few seconds.
async fn delta_recv(
    rx: &mut tonic::Streaming<
        envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse,
    >,
) -> envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse {
    tokio::time::timeout(Duration::from_secs(5), rx.message())
        .await
        .expect("a delta response in time")
        .expect("stream open")
        .expect("a response")
}

#[tokio::test]
async fn delta_ads_sends_only_changed_and_removed_resources() {
    use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

    let (push_tx, push_rx) =
        watch::channel(push_context(1, &format!("{BASE}{}", messenger_vs("v1"))));
    let (_stop_tx, stop_rx) = watch::channel(false);
    let sync = SyncTable::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(AdsServer::new(push_rx, sync.clone(), stop_rx).serve(listener));

    let id = "sidecar~127.0.30.1~greeter-v1.default~default.svc.cluster.local";
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let request = |type_url: &str, subscribe: Vec<String>, nonce: &str| DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names_subscribe: subscribe,
        response_nonce: nonce.to_string(),
        ..Default::default()
    };
    let mut first = request(CLUSTER_TYPE, vec![], "");
    first.node = Some(node(
        id,
        &[("app", "greeter"), ("version", "v1")],
        &[("INTERCEPTION_MODE", "NONE"), ("HTTP_PROXY_PORT", "15080")],
    ));
    tx.send(first).await.unwrap();
    let mut responses = client
        .delta_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    // Wildcard CDS: every cluster, each with a version.
    let cds = delta_recv(&mut responses).await;
    assert_eq!(cds.type_url, CLUSTER_TYPE);
    assert_eq!(cds.system_version_info, "1");
    let v1 = "outbound|9080|v1|messenger.default.svc.cluster.local";
    assert!(cds
        .resources
        .iter()
        .any(|r| r.name == v1 && !r.version.is_empty()));
    tx.send(request(CLUSTER_TYPE, vec![], &cds.nonce))
        .await
        .unwrap();
    // EDS for the messenger clusters only.
    let wanted: Vec<String> = cds
        .resources
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| n.starts_with("outbound|") && n.contains("messenger"))
        .collect();
    assert_eq!(wanted.len(), 3, "{wanted:?}");
    tx.send(request(ENDPOINT_TYPE, wanted.clone(), ""))
        .await
        .unwrap();
    let eds = delta_recv(&mut responses).await;
    assert_eq!(eds.type_url, ENDPOINT_TYPE);
    assert_eq!(eds.resources.len(), 3);
    tx.send(request(ENDPOINT_TYPE, vec![], &eds.nonce))
        .await
        .unwrap();

    // One more messenger v1 workload: the two CLAs it is in, nothing else.
    let more = format!(
        "{BASE}{}---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: messenger-v1b, namespace: default}}\nspec: {{address: 127.0.30.4, labels: {{app: messenger, version: v1}}}}\n",
        messenger_vs("v1")
    );
    push_tx.send_replace(push_context(2, &more));
    let eds = delta_recv(&mut responses).await;
    assert_eq!(eds.type_url, ENDPOINT_TYPE);
    let mut changed: Vec<&str> = eds.resources.iter().map(|r| r.name.as_str()).collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        [
            "outbound|9080|v1|messenger.default.svc.cluster.local",
            "outbound|9080||messenger.default.svc.cluster.local"
        ]
    );
    assert!(eds.removed_resources.is_empty());
    tx.send(request(ENDPOINT_TYPE, vec![], &eds.nonce))
        .await
        .unwrap();
    let mut acked = serde_json::Value::Null;
    for _ in 0..100 {
        acked = syncz_entry(&sync, id).await["acked"][ENDPOINT_TYPE].clone();
        if acked == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(acked, "2", "the EDS ACK shows in syncz");

    // The DestinationRule (and the route to its subset) go: the subset
    // clusters are removed by name.
    let no_subsets = more
        .split("---")
        .filter(|doc| !doc.contains("kind: DestinationRule") && !doc.contains("subset:"))
        .collect::<Vec<_>>()
        .join("---");
    push_tx.send_replace(push_context(3, &no_subsets));
    let cds = delta_recv(&mut responses).await;
    assert_eq!(cds.type_url, CLUSTER_TYPE);
    let mut removed = cds.removed_resources.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            "outbound|9080|v1|messenger.default.svc.cluster.local",
            "outbound|9080|v2|messenger.default.svc.cluster.local"
        ]
    );
}

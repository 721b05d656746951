//! Listener warming against a fake pilot, with the listener stage serving
//! from what the xDS client publishes: a listener is bound only once its
//! RDS arrived (so its first requests are never 404), a changed listener
//! keeps its older version serving while it warms, and a captured
//! connection for a warming `bind_to_port: false` listener takes the
//! capture listener's default chain. Also: the node goes on the first
//! request of the stream only.

mod data_common;
mod xds_support;

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier as TcpCluster, TcpProxy,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;
use mesh_proxy::listener::{CaptureOptions, OriginalDst};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xds_support::*;

/// A port on 127.0.10.1 that was free a moment ago.
fn free_port() -> u32 {
    let socket = std::net::TcpListener::bind("127.0.10.1:0").expect("bind");
    u32::from(socket.local_addr().expect("addr").port())
}

fn proxy_addr(port: u32) -> SocketAddr {
    SocketAddr::new([127, 0, 10, 1].into(), u16::try_from(port).expect("port"))
}

/// GET / with Host `messenger`: status and body.
async fn get(address: SocketAddr) -> (u16, String) {
    let client = data_common::client();
    let response = client
        .get(format!("http://{address}/"))
        .header("host", "messenger")
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn assert_ack(r: &envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest) {
    assert!(r.error_detail.is_none(), "NACK: {:?}", r.error_detail);
}

/// Opens the stream: CDS with the clusters of `upstreams`, each a STATIC
/// cluster of that name; checks the node goes on the first request only.
async fn open(h: &Harness, upstreams: &[(&str, SocketAddr)]) -> PilotStream {
    let mut stream = h.next_stream().await;
    let cds = stream.recv().await;
    assert_eq!(cds.type_url, CDS);
    assert_eq!(cds.node.as_ref().expect("node first").id, NODE_ID);
    let lds = stream.recv().await;
    assert_eq!(lds.type_url, LDS);
    assert!(
        lds.node.is_none(),
        "the node goes on the first request only"
    );
    let clusters = upstreams
        .iter()
        .map(|(name, address)| {
            static_cluster(name, &address.ip().to_string(), u32::from(address.port()))
        })
        .collect();
    let ack = stream.push_and_answer(CDS, "c1", clusters).await;
    assert_ack(&ack);
    assert!(ack.node.is_none());
    stream
}

#[tokio::test]
async fn a_listener_serves_only_once_its_routes_arrived_so_never_404() {
    let h = Harness::start().await;
    let app = data_common::upstream("app").await;
    let run = tokio::spawn(mesh_proxy::listener::run(
        h.store.clone(),
        h.shutdown.clone(),
    ));
    let mut stream = open(&h, &[("app", app)]).await;
    let port = free_port();
    let ack = stream
        .push_and_answer(
            LDS,
            "l1",
            vec![listener("l", port, "http", vec![rds_hcm("r")])],
        )
        .await;
    assert_ack(&ack);
    let rds = stream.recv().await;
    assert_eq!(
        (rds.type_url.as_str(), rds.resource_names.clone()),
        (RDS, vec!["r".to_owned()])
    );
    assert!(rds.node.is_none());

    // Warming: not bound, not ready, shown as warming.
    assert!(
        TcpStream::connect(proxy_addr(port)).await.is_err(),
        "bound before RDS"
    );
    assert_eq!(h.admin_get("/ready").await.0, 503);
    let dump = h.config_dump().await;
    assert_eq!(dump["warming_listeners"], serde_json::json!(["l"]));
    assert!(dump["snapshot"]["listeners"]
        .as_object()
        .is_some_and(|l| l.is_empty()));

    let ack = stream
        .push_and_answer(
            RDS,
            "r1",
            vec![route_config("r", vec![route(prefix("/"), "app")])],
        )
        .await;
    assert_ack(&ack);
    data_common::wait_listening(proxy_addr(port)).await;
    let (status, body) = get(proxy_addr(port)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("app "), "{body}");
    assert_eq!(h.admin_get("/ready").await.0, 200);
    let (_, listeners) = h.admin_get("/listeners").await;
    assert_eq!(listeners, format!("l::{}\n", proxy_addr(port)));
    h.shutdown.cancel();
    run.await.expect("run").expect("run ok");
}

#[tokio::test]
async fn a_changed_listener_keeps_its_old_version_serving_while_it_warms() {
    let h = Harness::start().await;
    let old = data_common::upstream("old").await;
    let new = data_common::upstream("new").await;
    let run = tokio::spawn(mesh_proxy::listener::run(
        h.store.clone(),
        h.shutdown.clone(),
    ));
    let mut stream = open(&h, &[("old", old), ("new", new)]).await;
    let port = free_port();
    let address = proxy_addr(port);
    assert_ack(
        &stream
            .push_and_answer(
                LDS,
                "l1",
                vec![listener("l", port, "http", vec![rds_hcm("r1")])],
            )
            .await,
    );
    stream.recv().await; // RDS [r1]
    let routes = vec![route_config("r1", vec![route(prefix("/"), "old")])];
    assert_ack(&stream.push_and_answer(RDS, "r1", routes).await);
    data_common::wait_listening(address).await;
    assert!(get(address).await.1.starts_with("old "));

    // v2 names route config r2, which pilot has not sent yet.
    assert_ack(
        &stream
            .push_and_answer(
                LDS,
                "l2",
                vec![listener("l", port, "http", vec![rds_hcm("r2")])],
            )
            .await,
    );
    let rds = stream.recv().await;
    assert_eq!(rds.resource_names, ["r1", "r2"]);
    for _ in 0..3 {
        let (status, body) = get(address).await;
        assert_eq!(status, 200, "the old version serves while v2 warms: {body}");
        assert!(body.starts_with("old "), "{body}");
    }
    let routes = vec![route_config("r2", vec![route(prefix("/"), "new")])];
    assert_ack(&stream.push_and_answer(RDS, "r2", routes).await);
    let unsubscribed = stream.recv().await;
    assert_eq!(unsubscribed.resource_names, ["r2"]);
    // The listener's config changed: its kept-alive connections drain, and
    // new ones see v2 at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(address).await;
        assert_eq!(status, 200, "{body}");
        if body.starts_with("new ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "v2 never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.shutdown.cancel();
    run.await.expect("run").expect("run ok");
}

fn tcp_proxy_to(cluster: &str) -> FilterChain {
    FilterChain {
        name: cluster.into(),
        filters: vec![network_filter(
            "envoy.filters.network.tcp_proxy",
            pack_any(TcpProxy {
                stat_prefix: cluster.into(),
                cluster_specifier: Some(TcpCluster::Cluster(cluster.into())),
                ..Default::default()
            }),
        )],
        ..Default::default()
    }
}

/// A TCP server that answers anything with `echo`.
async fn echo() -> SocketAddr {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = stream.write_all(b"echo").await;
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn a_capture_for_a_warming_listener_takes_the_default_chain() {
    let h = Harness::start().await;
    let app = data_common::upstream("app").await;
    let passthrough = echo().await;
    let capture = CaptureOptions {
        original_dst: OriginalDst::Fixed("198.19.0.3:9080".parse().expect("addr")),
        detection_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let run = tokio::spawn(mesh_proxy::listener::run_with(
        h.store.clone(),
        h.shutdown.clone(),
        capture,
    ));
    let mut stream = open(&h, &[("app", app), ("PassthroughCluster", passthrough)]).await;
    let port = free_port();
    let outbound = pack_any(Listener {
        name: "virtualOutbound".into(),
        address: Some(sock("127.0.10.1", port)),
        use_original_dst: Some(BoolValue { value: true }),
        default_filter_chain: Some(tcp_proxy_to("PassthroughCluster")),
        ..Default::default()
    });
    let service = pack_any(Listener {
        name: "0.0.0.0_9080".into(),
        address: Some(sock("0.0.0.0", 9080)),
        bind_to_port: Some(BoolValue { value: false }),
        filter_chains: vec![FilterChain {
            name: "http".into(),
            filters: vec![rds_hcm("9080")],
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_ack(
        &stream
            .push_and_answer(LDS, "l1", vec![outbound, service])
            .await,
    );
    stream.recv().await; // RDS [9080]
    let address = proxy_addr(port);
    data_common::wait_listening(address).await;
    // 0.0.0.0_9080 warms: as if it did not exist, the default chain relays.
    let mut raw = TcpStream::connect(address).await.expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\nhost: messenger\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut got))
        .await
        .expect("answer in time")
        .expect("read");
    assert_eq!(got, b"echo", "the passthrough default chain, not a 404");
    drop(raw);

    let routes = vec![route_config("9080", vec![route(prefix("/"), "app")])];
    assert_ack(&stream.push_and_answer(RDS, "r1", routes).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(address).await;
        if status == 200 && body.starts_with("app ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never routed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.shutdown.cancel();
    run.await.expect("run").expect("run ok");
}

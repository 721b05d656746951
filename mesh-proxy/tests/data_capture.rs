//! The REDIRECT-mode data path in process, with the original destination
//! injected (`OriginalDst::Fixed`) instead of read from iptables: dispatch
//! to `bind_to_port: false` listeners, routing by Host, Passthrough and
//! BlackHole, server-first TCP with and without detection, TLS by SNI, and
//! the inbound passthrough bound to 127.0.0.6. No root needed.

mod data_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use data_common::*;
use mesh_proxy::model::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const VIP: &str = "198.19.0.3";
/// Long enough that a connection which waited for detection is obvious.
const DETECTION: Duration = Duration::from_millis(400);

fn tcp_chain(cluster: &str, matcher: FilterChainMatch) -> FilterChain {
    FilterChain {
        name: cluster.into(),
        matcher,
        tls: None,
        filter: NetworkFilter::Tcp(TcpProxy::new(
            cluster,
            ClusterTarget::Cluster(cluster.into()),
        )),
    }
}

fn hcm_chain(routes: RouteSource, matcher: FilterChainMatch) -> FilterChain {
    FilterChain {
        name: "http".into(),
        matcher,
        tls: None,
        filter: NetworkFilter::Http(HttpConnectionManager::new("http", routes)),
    }
}

fn http_protocols() -> FilterChainMatch {
    FilterChainMatch {
        application_protocols: vec!["http/1.1".into(), "h2c".into()],
        ..Default::default()
    }
}

/// `virtualOutbound` on a free loopback port, default chain to `fallback`.
fn virtual_outbound(fallback: &str) -> Listener {
    Listener {
        name: "virtualOutbound".into(),
        address: free_addr(),
        bind_to_port: true,
        use_original_dst: true,
        listener_filters: vec![ListenerFilter::OriginalDst],
        traffic_direction: Some(TrafficDirection::Outbound),
        filter_chains: vec![],
        default_filter_chain: Some(tcp_chain(fallback, FilterChainMatch::default())),
    }
}

/// A listener reached only through dispatch.
fn service_listener(
    address: SocketAddr,
    filters: Vec<ListenerFilter>,
    chains: Vec<FilterChain>,
    default: Option<FilterChain>,
) -> Listener {
    Listener {
        name: format!("{}_{}", address.ip(), address.port()),
        address,
        bind_to_port: false,
        use_original_dst: false,
        listener_filters: filters,
        traffic_direction: Some(TrafficDirection::Outbound),
        filter_chains: chains,
        default_filter_chain: default,
    }
}

/// The outbound HTTP port shape: `0.0.0.0_PORT` with http_inspector, an HCM
/// chain on RDS `PORT` for HTTP, and non-HTTP bytes to `fallback`.
fn http_port_listener(port: u16, fallback: &str) -> Listener {
    service_listener(
        SocketAddr::from(([0, 0, 0, 0], port)),
        vec![ListenerFilter::HttpInspector],
        vec![hcm_chain(
            RouteSource::Rds(port.to_string()),
            http_protocols(),
        )],
        Some(tcp_chain(fallback, FilterChainMatch::default())),
    )
}

/// Route config `PORT`: messenger by name and VIP, then `allow_any`.
fn port_routes(port: u16) -> RouteConfig {
    let messenger = format!("outbound|{port}||messenger.default.svc.cluster.local");
    let domains: Vec<String> = ["messenger", VIP]
        .iter()
        .flat_map(|h| [h.to_string(), format!("{h}:{port}")])
        .collect();
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    route_config(
        &port.to_string(),
        vec![
            vhost(
                "messenger",
                &domains,
                vec![to_cluster(&messenger, prefix("/"))],
            ),
            vhost(
                "allow_any",
                &["*"],
                vec![to_cluster("PassthroughCluster", prefix("/"))],
            ),
        ],
    )
}

fn original_dst_cluster(name: &str, bind: Option<&str>) -> Cluster {
    Cluster {
        discovery: Discovery::OriginalDst,
        upstream_bind: bind.map(|b| b.parse().unwrap()),
        ..eds_cluster(name)
    }
}

fn add_cluster(snapshot: &mut Snapshot, cluster: Cluster) {
    snapshot
        .clusters
        .insert(cluster.name.clone(), Arc::new(cluster));
}

/// The mesh clusters every outbound test has.
fn outbound_snapshot(fallback: &str) -> (Snapshot, SocketAddr) {
    let mut snapshot = Snapshot::default();
    let capture = virtual_outbound(fallback);
    let address = capture.address;
    add_listener(&mut snapshot, capture);
    add_cluster(
        &mut snapshot,
        original_dst_cluster("PassthroughCluster", None),
    );
    add_cluster(&mut snapshot, static_cluster("BlackHoleCluster", &[]));
    (snapshot, address)
}

/// A TCP server that speaks first: `NAME peer=ADDR\n`, then echoes.
async fn greeter(name: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = socket.accept().await {
            tokio::spawn(async move {
                let hello = format!("{name} peer={}\n", peer.ip());
                if stream.write_all(hello.as_bytes()).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    address
}

/// Connect and read the first line the far side sends, without writing.
async fn first_line(address: SocketAddr, send_first: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(send_first).await.unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(Ok(1)) = tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    (
        String::from_utf8_lossy(&line).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn captured_http_is_routed_by_host_through_the_port_listener() {
    let messenger = upstream("messenger").await;
    let (mut snapshot, capture) = outbound_snapshot("PassthroughCluster");
    add_listener(
        &mut snapshot,
        http_port_listener(9080, "PassthroughCluster"),
    );
    add_route_config(&mut snapshot, port_routes(9080));
    add_eds(
        &mut snapshot,
        "outbound|9080||messenger.default.svc.cluster.local",
        &[messenger],
    );
    let original: SocketAddr = format!("{VIP}:9080").parse().unwrap();
    let proxy = Proxy::start_captured(snapshot, original, DETECTION).await;
    for host in ["messenger:9080", "198.19.0.3:9080", "messenger"] {
        let started = Instant::now();
        let response = client()
            .get(format!("http://{capture}/message"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        assert_eq!(response.headers()["x-upstream"], "messenger", "{host}");
        let body = response.text().await.unwrap();
        assert!(body.contains(&format!("/message host={host}")), "{body}");
        // The request line arrived at once, so detection did not wait.
        assert!(started.elapsed() < DETECTION, "{:?}", started.elapsed());
    }
    proxy.stop().await;
}

#[tokio::test]
async fn unknown_host_on_a_captured_port_passes_through_to_the_original_destination() {
    let elsewhere = upstream("elsewhere").await;
    let (mut snapshot, capture) = outbound_snapshot("PassthroughCluster");
    add_listener(
        &mut snapshot,
        http_port_listener(elsewhere.port(), "PassthroughCluster"),
    );
    add_route_config(&mut snapshot, port_routes(elsewhere.port()));
    add_eds(
        &mut snapshot,
        &format!(
            "outbound|{}||messenger.default.svc.cluster.local",
            elsewhere.port()
        ),
        &[],
    );
    let proxy = Proxy::start_captured(snapshot, elsewhere, DETECTION).await;
    let response = client()
        .get(format!("http://{capture}/x"))
        .header("host", "api.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "elsewhere");
    proxy.stop().await;
}

#[tokio::test]
async fn unknown_destination_passes_through_with_allow_any() {
    let server = greeter("outside").await;
    let (snapshot, capture) = outbound_snapshot("PassthroughCluster");
    let proxy = Proxy::start_captured(snapshot, server, DETECTION).await;
    let (line, _) = first_line(capture, b"").await;
    assert_eq!(line, "outside peer=127.0.0.1");
    proxy.stop().await;
}

#[tokio::test]
async fn unknown_destination_is_refused_with_registry_only() {
    let server = greeter("outside").await;
    let (snapshot, capture) = outbound_snapshot("BlackHoleCluster");
    let proxy = Proxy::start_captured(snapshot, server, DETECTION).await;
    let (line, waited) = first_line(capture, b"hello?").await;
    assert_eq!(line, "", "BlackHole must not reach the server");
    assert!(waited < WAIT, "closed rather than left hanging");
    proxy.stop().await;
}

#[tokio::test]
async fn server_first_tcp_is_not_delayed_without_detection() {
    let mysql = greeter("mysql").await;
    let (mut snapshot, capture) = outbound_snapshot("PassthroughCluster");
    let vip: SocketAddr = "198.19.0.4:3306".parse().unwrap();
    let cluster = "outbound|3306||mysql.default.svc.cluster.local";
    add_listener(
        &mut snapshot,
        service_listener(
            vip,
            vec![],
            vec![tcp_chain(cluster, FilterChainMatch::default())],
            None,
        ),
    );
    add_eds(&mut snapshot, cluster, &[mysql]);
    let proxy = Proxy::start_captured(snapshot, vip, DETECTION).await;
    let (line, waited) = first_line(capture, b"").await;
    assert_eq!(line, "mysql peer=127.0.0.1");
    assert!(waited < DETECTION / 2, "greeting took {waited:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn server_first_tcp_behind_a_detecting_listener_waits_only_the_timeout() {
    let mysql = greeter("mysql").await;
    let (mut snapshot, capture) = outbound_snapshot("PassthroughCluster");
    // An HTTP-shaped port whose non-HTTP bytes go to the server-first app.
    let cluster = "outbound|3306||mysql.default.svc.cluster.local";
    let mut port = http_port_listener(3306, cluster);
    port.name = "0.0.0.0_3306".into();
    add_listener(&mut snapshot, port);
    add_route_config(&mut snapshot, port_routes(3306));
    add_eds(&mut snapshot, cluster, &[mysql]);
    add_eds(
        &mut snapshot,
        "outbound|3306||messenger.default.svc.cluster.local",
        &[],
    );
    let vip: SocketAddr = "198.19.0.4:3306".parse().unwrap();
    let proxy = Proxy::start_captured(snapshot, vip, DETECTION).await;
    let (line, waited) = first_line(capture, b"").await;
    assert_eq!(line, "mysql peer=127.0.0.1");
    assert!(waited >= DETECTION, "{waited:?}");
    assert!(waited < DETECTION + Duration::from_secs(1), "{waited:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn tls_sni_picks_the_filter_chain() {
    let exact = greeter("exact").await;
    let wildcard = greeter("wildcard").await;
    let (mut snapshot, capture) = outbound_snapshot("PassthroughCluster");
    let sni = |names: &[&str]| FilterChainMatch {
        server_names: names.iter().map(|s| s.to_string()).collect(),
        transport_protocol: Some("tls".into()),
        ..Default::default()
    };
    let vip: SocketAddr = "198.19.0.9:443".parse().unwrap();
    add_listener(
        &mut snapshot,
        service_listener(
            vip,
            vec![ListenerFilter::TlsInspector],
            vec![
                tcp_chain("wildcard", sni(&["*.example.com"])),
                tcp_chain("exact", sni(&["api.example.com"])),
            ],
            Some(tcp_chain("BlackHoleCluster", FilterChainMatch::default())),
        ),
    );
    add_eds(&mut snapshot, "exact", &[exact]);
    add_eds(&mut snapshot, "wildcard", &[wildcard]);
    let proxy = Proxy::start_captured(snapshot, vip, DETECTION).await;
    for (name, expected) in [
        ("api.example.com", "exact peer=127.0.0.1"),
        ("web.example.com", "wildcard peer=127.0.0.1"),
        ("api.example.org", ""),
    ] {
        let (line, waited) = first_line(capture, &client_hello(name)).await;
        assert_eq!(line, expected, "{name}");
        assert!(waited < DETECTION, "{name}: {waited:?}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn inbound_chains_by_port_and_passthrough_from_127_0_0_6() {
    let app = upstream("app").await;
    let other = greeter("other-port").await;
    let inline = route_config(
        "inbound|9080||",
        vec![vhost(
            "inbound|http|9080",
            &["*"],
            vec![to_cluster("inbound|9080||", prefix("/"))],
        )],
    );
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        Listener {
            name: "virtualInbound".into(),
            address: free_addr(),
            bind_to_port: true,
            // As Istio sends it: the listener filter alone restores the
            // original destination; nothing is handed to another listener.
            use_original_dst: false,
            listener_filters: vec![ListenerFilter::OriginalDst],
            traffic_direction: Some(TrafficDirection::Inbound),
            filter_chains: vec![hcm_chain(
                RouteSource::Inline(Arc::new(inline)),
                FilterChainMatch {
                    destination_port: Some(app.port()),
                    ..Default::default()
                },
            )],
            default_filter_chain: Some(tcp_chain(
                "InboundPassthroughCluster",
                FilterChainMatch::default(),
            )),
        },
    );
    let inbound = Cluster {
        upstream_bind: Some("127.0.0.6".parse().unwrap()),
        ..static_cluster("inbound|9080||", &[app])
    };
    add_cluster(&mut snapshot, inbound);
    add_cluster(
        &mut snapshot,
        original_dst_cluster("InboundPassthroughCluster", Some("127.0.0.6")),
    );
    let listener = snapshot.listeners["virtualInbound"].address;

    // A declared port: the HCM with the inline inbound route.
    let proxy = Proxy::start_captured(snapshot.clone(), app, DETECTION).await;
    let response = client()
        .get(format!("http://{listener}/reviews/1"))
        .header("host", "reviews:9080")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-upstream"], "app");
    proxy.stop().await;

    // Any other port: InboundPassthroughCluster to the original destination,
    // from 127.0.0.6.
    let proxy = Proxy::start_captured(snapshot, other, DETECTION).await;
    let (line, waited) = first_line(listener, b"").await;
    assert_eq!(line, "other-port peer=127.0.0.6");
    assert!(waited < DETECTION / 2, "{waited:?}");
    proxy.stop().await;
}

/// A minimal TLS 1.3-style ClientHello with an SNI extension.
fn client_hello(server_name: &str) -> Vec<u8> {
    let name = server_name.as_bytes();
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut extensions = vec![0, 0];
    extensions.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    extensions.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[1; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![1];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

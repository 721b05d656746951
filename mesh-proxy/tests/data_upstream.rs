//! The upstream stage on loopback: circuit breakers (through the proxy and
//! at the pool), connection reuse and its limits, HTTP/2 stream limits,
//! WebSocket upgrades, tcp_proxy connection accounting, connect failures.

mod data_common;
mod upstream_support;

use std::sync::Arc;
use std::time::Duration;

use data_common::*;
use mesh_proxy::cluster::{ClusterManager, Limit, PickContext};
use mesh_proxy::error::ProxyError;
use mesh_proxy::model::*;
use mesh_proxy::upstream::UpstreamPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upstream_support::*;

const RULE: &str = "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews";

/// An EDS cluster `c` over `servers` with the DestinationRule metadata.
fn snapshot_with(cluster: Cluster, servers: &[std::net::SocketAddr]) -> (Snapshot, Cluster) {
    let mut snapshot = Snapshot::default();
    let cluster = Cluster {
        metadata: ConfigMetadata {
            config: Some(RULE.into()),
            reason: None,
        },
        ..cluster
    };
    snapshot
        .clusters
        .insert(cluster.name.clone(), Arc::new(cluster.clone()));
    snapshot.endpoints.insert(
        cluster.name.clone(),
        Arc::new(LoadAssignment::new(
            cluster.name.clone(),
            endpoints(servers),
        )),
    );
    (snapshot, cluster)
}

#[tokio::test]
async fn max_connections_and_pending_queue_overflow_through_the_proxy() {
    let (server, stats) = http_server("reviews", [127, 0, 0, 1]).await;
    let listener = free_addr();
    let mut cluster = eds_cluster("reviews");
    cluster.circuit_breakers.max_connections = 1;
    cluster.circuit_breakers.max_pending_requests = 1;
    // Istio's circuit-breaking task ejects after one 5xx: overflows are the
    // cluster's limit, not the endpoint's failure, and must not eject it.
    cluster.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: 1,
        interval: Duration::from_millis(100),
        base_ejection_time: Duration::from_secs(180),
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    });
    // As pilot sends it with outlier detection: no panic routing.
    cluster.lb.healthy_panic_threshold = 0.0;
    cluster.metadata.config = Some(RULE.into());
    let mut snapshot = Snapshot::default();
    snapshot
        .clusters
        .insert("reviews".into(), Arc::new(cluster));
    snapshot.endpoints.insert(
        "reviews".into(),
        Arc::new(LoadAssignment::new("reviews", endpoints(&[server]))),
    );
    add_listener(
        &mut snapshot,
        http_listener(
            "in",
            listener,
            RouteSource::Inline(Arc::new(route_config(
                "r",
                vec![vhost(
                    "all",
                    &["*"],
                    vec![to_cluster("reviews", prefix("/"))],
                )],
            ))),
        ),
    );
    let proxy = Proxy::start(snapshot).await;
    let client = client();
    let url = format!("http://{listener}/slow/300");
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    let (mut ok, mut overflow) = (0, 0);
    for r in requests {
        let (status, body) = r.await.expect("request task");
        match status {
            200 => ok += 1,
            503 => {
                assert_eq!(
                    body,
                    "upstream connect error or disconnect/reset before headers. reset reason: overflow"
                );
                overflow += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok + overflow, 20);
    assert!(ok >= 2, "the one in flight and the one queued: {ok}");
    assert!(overflow >= 1, "the rest overflow");
    assert_eq!(stats.get(&stats.max_open), 1, "never a second connection");
    // Past a few detection intervals, the endpoint still takes requests.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (status, body) = get(&client, &format!("http://{listener}/after")).await;
    assert_eq!(status, 200, "the endpoint was not ejected: {body}");
    proxy.stop().await;
}

#[tokio::test]
async fn overflow_reasons_name_the_rule_and_the_istio_field() {
    let (server, _) = http_server("reviews", [127, 0, 0, 1]).await;
    let mut cluster = eds_cluster("c");
    cluster.circuit_breakers.max_connections = 1;
    cluster.circuit_breakers.max_pending_requests = 0;
    let (snapshot, cluster) = snapshot_with(cluster, &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    let any = server;
    let first = manager
        .pick(&snapshot, &cluster, &PickContext::new(any, any))
        .await
        .unwrap();
    let held = pool
        .send(&first, &cluster, request_to("/slow/10", false))
        .await
        .unwrap();
    // The one connection is busy until `held`'s body is read.
    let error = attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap_err();
    assert_eq!(
        error.reason(),
        "UO overflow: DestinationRule default/reviews http1MaxPendingRequests=0"
    );
    assert_eq!(error.flag(), "UO");
    assert!(!error.retryable());
    drop(held);

    // max_requests (Istio http2MaxRequests).
    let mut cluster = cluster.clone();
    cluster.circuit_breakers = CircuitBreakers {
        max_requests: 1,
        ..CircuitBreakers::default()
    };
    let a = manager
        .pick(&snapshot, &cluster, &PickContext::new(any, any))
        .await
        .unwrap();
    let in_flight = pool
        .send(&a, &cluster, request_to("/", false))
        .await
        .unwrap();
    let error = attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap_err();
    assert_eq!(
        error.reason(),
        "UO overflow: DestinationRule default/reviews http2MaxRequests=1"
    );
    drop(in_flight);
    assert_eq!(
        attempt(&manager, &pool, &snapshot, &cluster, "/")
            .await
            .unwrap()
            .0,
        200,
        "the slot is back once the response is done"
    );

    // max_retries through begin_retry.
    cluster.circuit_breakers.max_retries = 2;
    let r1 = manager.begin_retry(&cluster).unwrap();
    let _r2 = manager.begin_retry(&cluster).unwrap();
    let error = manager.begin_retry(&cluster).unwrap_err();
    assert_eq!(
        error.reason(),
        "UO overflow: DestinationRule default/reviews maxRetries=2"
    );
    drop(r1);
    assert!(manager.begin_retry(&cluster).is_ok());
}

#[tokio::test]
async fn http1_connections_are_reused_up_to_max_requests_per_connection() {
    let (server, stats) = http_server("s", [127, 0, 0, 1]).await;
    let (snapshot, cluster) = snapshot_with(eds_cluster("c"), &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    for _ in 0..5 {
        assert_eq!(
            attempt(&manager, &pool, &snapshot, &cluster, "/")
                .await
                .unwrap()
                .0,
            200
        );
    }
    assert_eq!(stats.get(&stats.accepted), 1, "keep-alive: one connection");

    let (server, stats) = http_server("s", [127, 0, 0, 1]).await;
    let mut limited = eds_cluster("limited");
    limited.pool.max_requests_per_connection = Some(2);
    let (snapshot, cluster) = snapshot_with(limited, &[server]);
    for _ in 0..5 {
        assert_eq!(
            attempt(&manager, &pool, &snapshot, &cluster, "/")
                .await
                .unwrap()
                .0,
            200
        );
    }
    assert_eq!(stats.get(&stats.accepted), 3, "2 + 2 + 1 requests");
    assert_eq!(stats.get(&stats.requests), 5);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_close_after_the_idle_timeout() {
    let (server, stats) = http_server("s", [127, 0, 0, 1]).await;
    let mut cluster = eds_cluster("c");
    cluster.pool.idle_timeout = Some(Duration::from_secs(30));
    let (snapshot, cluster) = snapshot_with(cluster, &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap();
    assert_eq!(stats.get(&stats.accepted), 1, "reused within the timeout");
    tokio::time::sleep(Duration::from_secs(31)).await;
    // The server sees the close (bounded wait, virtual time).
    for _ in 0..100 {
        if stats.get(&stats.open) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats.get(&stats.open), 0, "closed by the idle timeout");
    attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap();
    assert_eq!(stats.get(&stats.accepted), 2);
}

#[tokio::test]
async fn http2_streams_fill_a_connection_before_another_opens() {
    let (server, stats) = http_server("h2", [127, 0, 0, 1]).await;
    let mut cluster = eds_cluster("c");
    cluster.http2 = true;
    cluster.pool.max_concurrent_streams = 2;
    let (snapshot, cluster) = snapshot_with(cluster, &[server]);
    let manager = Arc::new(ClusterManager::new());
    let pool = Arc::new(UpstreamPool::new());
    let snapshot = Arc::new(snapshot);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (m, p, s, c) = (
                manager.clone(),
                pool.clone(),
                snapshot.clone(),
                cluster.clone(),
            );
            tokio::spawn(async move { attempt(&m, &p, &s, &c, "/slow/300").await })
        })
        .collect();
    for t in tasks {
        let (status, _) = t.await.unwrap().unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(stats.get(&stats.accepted), 3, "5 streams, 2 per connection");
    assert!(stats.get(&stats.max_in_flight) >= 4);
    // Sequential requests share one connection.
    let before = stats.get(&stats.accepted);
    for _ in 0..4 {
        attempt(&manager, &pool, &snapshot, &cluster, "/")
            .await
            .unwrap();
    }
    assert_eq!(stats.get(&stats.accepted), before);
}

#[tokio::test]
async fn websocket_upgrades_get_their_own_counted_connection() {
    let (server, stats) = http_server("ws", [127, 0, 0, 1]).await;
    let (snapshot, cluster) = snapshot_with(eds_cluster("c"), &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    // A pooled connection first, idle afterwards.
    attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap();
    let any = server;
    let picked = manager
        .pick(&snapshot, &cluster, &PickContext::new(any, any))
        .await
        .unwrap();
    let mut request = request_to("/ws", false);
    request
        .headers_mut()
        .insert("connection", "upgrade".parse().unwrap());
    request
        .headers_mut()
        .insert("upgrade", "websocket".parse().unwrap());
    let mut response = pool.send(&picked, &cluster, request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(stats.get(&stats.accepted), 2, "not the idle pooled one");
    let upgraded = hyper::upgrade::on(&mut response).await.expect("upgrade");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    io.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    io.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    assert_eq!(picked.resources().in_use(Limit::Connections), 2);
    drop((io, response));
    for _ in 0..100 {
        if picked.resources().in_use(Limit::Connections) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        picked.resources().in_use(Limit::Connections),
        1,
        "the tunnel's slot is back"
    );
    // And the pooled connection is still the one used.
    attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap();
    assert_eq!(stats.get(&stats.accepted), 2);
}

#[tokio::test]
async fn tcp_proxy_connections_count_against_max_connections() {
    // An echo server counting its connections.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = upstream.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    let mut cluster = static_cluster("db", &[upstream_addr]);
    cluster.circuit_breakers.max_connections = 1;
    snapshot.clusters.insert("db".into(), Arc::new(cluster));
    add_listener(
        &mut snapshot,
        tcp_listener("tcp", listener, ClusterTarget::Cluster("db".into())),
    );
    let proxy = Proxy::start(snapshot).await;
    // Start-up probes may hold the one slot for a moment: retry (bounded)
    // until a connection is relayed end to end.
    let mut first = None;
    for _ in 0..50 {
        let mut c = tokio::net::TcpStream::connect(listener).await.unwrap();
        c.write_all(b"a").await.unwrap();
        let mut byte = [0u8; 1];
        if let Ok(Ok(1)) = tokio::time::timeout(WAIT, c.read(&mut byte)).await {
            first = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = first.expect("one connection relayed");
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    // The second connection overflows: closed without reaching upstream.
    let mut second = tokio::net::TcpStream::connect(listener).await.unwrap();
    let _ = second.write_all(b"b").await;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(WAIT, second.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "no second upstream connection"
    );
    drop(first);
    proxy.stop().await;
}

#[tokio::test]
async fn connect_failures_keep_the_os_reason() {
    let closed = free_addr();
    let (snapshot, cluster) = snapshot_with(eds_cluster("c"), &[closed]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    let error = attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::UpstreamConnect { .. }));
    assert_eq!(
        error.reason(),
        format!("UF connect failure: {closed}: connection refused")
    );
}

#[tokio::test]
async fn a_server_closing_kept_alive_connections_costs_no_request() {
    // Answers one request per connection as keep-alive, then hangs up.
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = socket.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-upstream: s\r\n\r\nok")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    let (snapshot, cluster) = snapshot_with(eds_cluster("c"), &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    for _ in 0..5 {
        let (status, _) = attempt(&manager, &pool, &snapshot, &cluster, "/")
            .await
            .expect("a closed pooled connection is replaced, not failed");
        assert_eq!(status, 200);
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[tokio::test]
async fn queued_requests_all_get_the_one_connection_in_turn() {
    let (server, stats) = http_server("s", [127, 0, 0, 1]).await;
    let mut cluster = eds_cluster("c");
    cluster.circuit_breakers.max_connections = 1;
    cluster.circuit_breakers.max_pending_requests = 10;
    let (snapshot, cluster) = snapshot_with(cluster, &[server]);
    let manager = Arc::new(ClusterManager::new());
    let pool = Arc::new(UpstreamPool::new());
    let snapshot = Arc::new(snapshot);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (m, p, s, c) = (
                manager.clone(),
                pool.clone(),
                snapshot.clone(),
                cluster.clone(),
            );
            tokio::spawn(async move {
                tokio::time::timeout(WAIT, attempt(&m, &p, &s, &c, "/slow/20")).await
            })
        })
        .collect();
    for t in tasks {
        let (status, _) = t.await.unwrap().expect("no request is forgotten").unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(
        stats.get(&stats.accepted),
        1,
        "one connection, reused in turn"
    );
    assert_eq!(stats.get(&stats.max_in_flight), 1);
}

#[tokio::test]
async fn use_downstream_protocol_follows_the_client() {
    let (server, _) = http_server("s", [127, 0, 0, 1]).await;
    let listener = free_addr();
    let mut cluster = eds_cluster("c");
    cluster.use_downstream_protocol = true;
    let mut snapshot = Snapshot::default();
    snapshot.clusters.insert("c".into(), Arc::new(cluster));
    snapshot.endpoints.insert(
        "c".into(),
        Arc::new(LoadAssignment::new("c", endpoints(&[server]))),
    );
    add_listener(
        &mut snapshot,
        http_listener(
            "in",
            listener,
            RouteSource::Inline(Arc::new(route_config(
                "r",
                vec![vhost("all", &["*"], vec![to_cluster("c", prefix("/"))])],
            ))),
        ),
    );
    let proxy = Proxy::start(snapshot).await;
    let (status, body) = get(&client(), &format!("http://{listener}/")).await;
    assert_eq!((status, body.as_str()), (200, "s HTTP/1.1"));
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(WAIT)
        .build()
        .expect("client");
    let (status, body) = get(&h2, &format!("http://{listener}/")).await;
    assert_eq!((status, body.as_str()), (200, "s HTTP/2.0"));
    proxy.stop().await;
}

#[tokio::test]
async fn a_changed_cluster_starts_new_connections_and_an_unchanged_one_keeps_them() {
    let (server, stats) = http_server("s", [127, 0, 0, 1]).await;
    let (snapshot, _) = snapshot_with(eds_cluster("c"), &[server]);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    let ok = |r: Result<(u16, String), ProxyError>| r.expect("answered").0;
    // The data path passes the snapshot's own model.
    let cluster = snapshot.clusters["c"].clone();
    assert_eq!(
        ok(attempt(&manager, &pool, &snapshot, &cluster, "/").await),
        200
    );
    // The same model again (CDS re-sent unchanged): the kept-alive
    // connection carries on.
    let same = snapshot.clone();
    pool.retain(&same);
    assert_eq!(
        ok(attempt(&manager, &pool, &same, &cluster, "/").await),
        200
    );
    assert_eq!(stats.get(&stats.accepted), 1);
    // A changed cluster (here: a new limit of requests per connection) is
    // a new model: a connection made under the old settings, though still
    // reusable under them, is not reused, whether its pool was made before
    // any snapshot change or after.
    for (round, accepted) in [(3, 2), (4, 3)] {
        let mut limited = (*cluster).clone();
        limited.pool.max_requests_per_connection = Some(round);
        let (changed, _) = snapshot_with(limited, &[server]);
        pool.retain(&changed);
        let limited = changed.clusters["c"].clone();
        for _ in 0..2 {
            assert_eq!(
                ok(attempt(&manager, &pool, &changed, &limited, "/").await),
                200
            );
        }
        assert_eq!(
            stats.get(&stats.accepted),
            accepted,
            "limit {round}: one new connection for both requests"
        );
    }
}

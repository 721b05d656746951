//! The relay on loopback sockets and in-memory pipes (paused clock).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::model::{
    Cluster, ClusterTarget, Discovery, Endpoint, LbPolicy, LoadAssignment, SnapshotStore,
};

#[tokio::test]
async fn relays_with_the_snapshot_of_its_chain_not_a_newer_one() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut snapshot = Snapshot::default();
    let cluster = Cluster::new(
        "c",
        Discovery::Static(Arc::new(LoadAssignment::new(
            "c",
            vec![Endpoint::new(upstream.local_addr().unwrap(), 1)],
        ))),
    );
    snapshot.clusters.insert("c".into(), Arc::new(cluster));
    // The store has moved on (here: to an empty snapshot) since the
    // connection's chain was chosen.
    let data_plane = DataPlane::new(Arc::new(SnapshotStore::new()));
    let filter = TcpProxy::new("c", ClusterTarget::Cluster("c".into()));
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(front.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, peer) = front.accept().await.unwrap();
    let local = accepted.local_addr().unwrap();
    let downstream = Downstream {
        peer,
        local,
        original_dst: local,
        tls: None,
    };
    let relay = tokio::spawn(async move {
        let snapshot = Arc::new(snapshot);
        relay(
            &data_plane,
            snapshot,
            &filter,
            accepted,
            downstream,
            CancellationToken::new(),
        )
        .await;
    });
    let (mut server, _) = tokio::time::timeout(Duration::from_secs(5), upstream.accept())
        .await
        .expect("the relay dials the cluster of its own snapshot")
        .unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
    drop((client, server));
    relay.await.unwrap();
}

fn filter_with(idle: Option<Duration>, max: Option<Duration>) -> TcpProxy {
    TcpProxy {
        idle_timeout: idle,
        max_downstream_connection_duration: max,
        ..TcpProxy::new("t", ClusterTarget::Cluster("c".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_relay_closes_after_idle_timeout_and_traffic_keeps_it_open() {
    let (mut client, proxy_down) = tokio::io::duplex(1024);
    let (proxy_up, mut server) = tokio::io::duplex(1024);
    let filter = filter_with(Some(Duration::from_secs(10)), None);
    let started = Instant::now();
    let relay =
        tokio::spawn(
            async move { pipe(proxy_down, proxy_up, &filter, CancellationToken::new()).await },
        );
    // Bytes every 6 s keep it open well past one idle timeout.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(6)).await;
        client.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await.unwrap();
    }
    assert!(!relay.is_finished(), "traffic resets the idle timer");
    let (end, _, _) = relay.await.unwrap();
    assert_eq!(end, RelayEnd::Idle);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(28) && elapsed < Duration::from_secs(29),
        "closed 10 s after the last byte, at {elapsed:?}"
    );
    // Both sides see the close.
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn max_downstream_connection_duration_closes_a_busy_relay() {
    let (mut client, proxy_down) = tokio::io::duplex(1024);
    let (proxy_up, mut server) = tokio::io::duplex(1024);
    let filter = filter_with(None, Some(Duration::from_secs(5)));
    let started = Instant::now();
    let relay =
        tokio::spawn(
            async move { pipe(proxy_down, proxy_up, &filter, CancellationToken::new()).await },
        );
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if client.write_all(b"busy").await.is_err() {
                break;
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while matches!(server.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let (end, _, _) = relay.await.unwrap();
    assert_eq!(end, RelayEnd::MaxDuration);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    reader.await.unwrap();
    writer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_idle_timeout_a_quiet_relay_stays_open() {
    let (client, proxy_down) = tokio::io::duplex(1024);
    let (proxy_up, server) = tokio::io::duplex(1024);
    let filter = filter_with(None, None);
    let relay =
        tokio::spawn(
            async move { pipe(proxy_down, proxy_up, &filter, CancellationToken::new()).await },
        );
    tokio::time::sleep(Duration::from_secs(7200)).await;
    assert!(!relay.is_finished());
    drop((client, server));
    assert_eq!(relay.await.unwrap().0, RelayEnd::Closed);
}

/// An address nothing listens on: bound, then closed.
fn dead_address() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

async fn connect_with_attempts(attempts: u32) -> (Result<SocketAddr, String>, Vec<SocketAddr>) {
    let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = dead_address();
    let mut snapshot = Snapshot::default();
    let endpoints = [dead, live.local_addr().unwrap()]
        .into_iter()
        .map(|address| Endpoint::new(address, 1))
        .collect();
    let cluster = Cluster {
        lb_policy: LbPolicy::RoundRobin,
        ..Cluster::new(
            "c",
            Discovery::Static(Arc::new(LoadAssignment::new("c", endpoints))),
        )
    };
    snapshot.clusters.insert("c".into(), Arc::new(cluster));
    let data_plane = DataPlane::new(Arc::new(SnapshotStore::new()));
    let filter = TcpProxy {
        max_connect_attempts: attempts,
        ..TcpProxy::new("c", ClusterTarget::Cluster("c".into()))
    };
    let local: SocketAddr = "127.0.0.1:15001".parse().unwrap();
    let downstream = Downstream {
        peer: "127.0.0.1:40000".parse().unwrap(),
        local,
        original_dst: local,
        tls: None,
    };
    let mut info = StreamInfo::new(downstream.local, downstream.peer);
    let result = connect(&data_plane, &snapshot, &filter, &downstream, &mut info)
        .await
        .map(|(stream, _)| stream.peer_addr().unwrap())
        .map_err(|e| e.to_string());
    (result, vec![dead, live.local_addr().unwrap()])
}

#[tokio::test]
async fn a_failed_connect_is_tried_again_on_another_endpoint() {
    // Round robin starts with the dead endpoint.
    let (result, endpoints) = connect_with_attempts(2).await;
    assert_eq!(
        result,
        Ok(endpoints[1]),
        "the second attempt reaches the live one"
    );
    let (result, endpoints) = connect_with_attempts(1).await;
    let error = result.expect_err("one attempt, on the dead endpoint");
    assert!(error.contains(&endpoints[0].to_string()), "{error}");
}

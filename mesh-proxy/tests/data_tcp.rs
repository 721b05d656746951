//! The tcp_proxy filter on loopback: bytes relayed both ways to an echo
//! server, weighted targets, and a closed connection when there is no
//! endpoint.

mod data_common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use data_common::*;
use mesh_proxy::model::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP server that answers each read with `NAME:` and the bytes read.
async fn echo(name: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let address = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = socket.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let mut reply = format!("{name}:").into_bytes();
                    reply.extend_from_slice(&buf[..n]);
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// Send `message`, read the echo (bounded), return it.
async fn round_trip(listener: SocketAddr, message: &str) -> String {
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    stream.write_all(message.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    let read = async {
        while !reply.ends_with(message.as_bytes()) {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("echo in time");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn tcp_proxy_relays_both_ways() {
    let server = echo("db").await;
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        tcp_listener("mongo", listener, ClusterTarget::Cluster("db".into())),
    );
    add_eds(&mut snapshot, "db", &[server]);
    let proxy = Proxy::start(snapshot).await;
    assert_eq!(round_trip(listener, "hello").await, "db:hello");
    // Several messages on one connection.
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    for i in 0..5 {
        let message = format!("m{i}");
        stream.write_all(message.as_bytes()).await.expect("write");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert_eq!(&buf[..n], format!("db:{message}").as_bytes());
    }
    // Closing our side ends the relay (otherwise shutdown waits out the
    // drain grace of an open relay).
    drop(stream);
    proxy.stop().await;
}

#[tokio::test]
async fn tcp_proxy_weighted_targets_reach_both() {
    let a = echo("a").await;
    let b = echo("b").await;
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    let target = ClusterTarget::Weighted(vec![
        WeightedCluster {
            name: "a".into(),
            weight: 50,
        },
        WeightedCluster {
            name: "b".into(),
            weight: 50,
        },
        WeightedCluster {
            name: "never".into(),
            weight: 0,
        },
    ]);
    add_listener(&mut snapshot, tcp_listener("t", listener, target));
    add_eds(&mut snapshot, "a", &[a]);
    add_eds(&mut snapshot, "b", &[b]);
    let proxy = Proxy::start(snapshot).await;
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let reply = round_trip(listener, "x").await;
        seen.insert(reply);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, HashSet::from(["a:x".to_owned(), "b:x".to_owned()]));
    proxy.stop().await;
}

#[tokio::test]
async fn tcp_proxy_without_endpoints_closes_the_connection() {
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        tcp_listener("t", listener, ClusterTarget::Cluster("db".into())),
    );
    snapshot
        .clusters
        .insert("db".into(), Arc::new(eds_cluster("db")));
    let proxy = Proxy::start(snapshot).await;
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    proxy.stop().await;
}

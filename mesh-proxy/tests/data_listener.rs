//! Listener lifecycle on loopback: an inbound listener in front of a local
//! app, snapshot swaps under in-flight requests, listeners removed and
//! re-bound, and bind failures that are retried rather than fatal.

mod data_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use data_common::*;
use mesh_proxy::model::*;
use tokio::net::TcpStream;

/// The inbound shape the translator sends for a sidecar in NONE mode: an
/// inline route config `inbound|PORT||`, domains `*`, prefix `/` to a STATIC
/// cluster with the app's address.
fn inbound_snapshot(listener: std::net::SocketAddr, app: std::net::SocketAddr) -> Snapshot {
    let name = format!("inbound|{}||", listener.port());
    let config = route_config(
        &name,
        vec![vhost(
            "inbound|http|9080",
            &["*"],
            vec![to_cluster(&name, prefix("/"))],
        )],
    );
    let mut snapshot = Snapshot::default();
    let listener_name = format!("{}_{}", listener.ip(), listener.port());
    add_listener(
        &mut snapshot,
        http_listener(
            &listener_name,
            listener,
            RouteSource::Inline(Arc::new(config)),
        ),
    );
    snapshot
        .clusters
        .insert(name.clone(), Arc::new(static_cluster(&name, &[app])));
    snapshot
}

#[tokio::test]
async fn inbound_listener_forwards_to_the_local_app() {
    let app = upstream("app").await;
    let listener = free_addr();
    let proxy = Proxy::start(inbound_snapshot(listener, app)).await;
    let client = client();
    let response = client
        .get(format!("http://{listener}/message"))
        .header("host", "messenger.default.svc.cluster.local:9080")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "app");
    let body = response.text().await.expect("body");
    assert!(
        body.contains("/message host=messenger.default.svc.cluster.local:9080"),
        "{body}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn snapshot_swap_does_not_break_an_in_flight_request() {
    let old = upstream("old").await;
    let new = upstream("new").await;
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        http_listener("l", listener, RouteSource::Rds("r".into())),
    );
    add_route_config(
        &mut snapshot,
        route_config(
            "r",
            vec![vhost("all", &["*"], vec![to_cluster("old", prefix("/"))])],
        ),
    );
    add_eds(&mut snapshot, "old", &[old]);
    let proxy = Proxy::start(snapshot).await;
    let client = client();

    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, &format!("http://{listener}/slow/600")).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Everything changes: route, cluster, endpoints. The old cluster is gone.
    let mut swapped = Snapshot::default();
    add_listener(
        &mut swapped,
        http_listener("l", listener, RouteSource::Rds("r".into())),
    );
    add_route_config(
        &mut swapped,
        route_config(
            "r",
            vec![vhost("all", &["*"], vec![to_cluster("new", prefix("/"))])],
        ),
    );
    add_eds(&mut swapped, "new", &[new]);
    proxy.publish(swapped).await;

    let (status, body) = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(status, 200);
    assert!(body.starts_with("old "), "{body}");
    // The next request, even on a kept-alive connection, sees the new route.
    let (status, body) = get(&client, &format!("http://{listener}/")).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("new "), "{body}");
    proxy.stop().await;
}

#[tokio::test]
async fn removed_listener_stops_accepting_and_kept_one_keeps_serving() {
    let app = upstream("app").await;
    let kept = free_addr();
    let removed = free_addr();
    let mut snapshot = inbound_snapshot(kept, app);
    let both = {
        let mut both = snapshot.clone();
        for listener in inbound_snapshot(removed, app).listeners.into_values() {
            both.listeners.insert(listener.name.clone(), listener);
        }
        both.clusters
            .extend(inbound_snapshot(removed, app).clusters);
        both
    };
    let proxy = Proxy::start(both).await;
    let client = client();
    assert_eq!(get(&client, &format!("http://{removed}/")).await.0, 200);

    // An open idle connection on the kept listener must survive the swap.
    let idle = TcpStream::connect(kept).await.expect("connect kept");
    snapshot.listeners.retain(|_, l| l.address == kept);
    proxy.store.publish(snapshot);

    let deadline = Instant::now() + WAIT;
    loop {
        if TcpStream::connect(removed).await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "removed listener still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&client, &format!("http://{kept}/")).await.0, 200);
    let mut buf = [0u8; 1];
    // Still open: a read would block (no EOF) for a short while.
    let read = tokio::time::timeout(Duration::from_millis(100), idle.peek(&mut buf)).await;
    assert!(
        read.is_err(),
        "idle connection on the kept listener was closed"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn bind_failure_is_retried_on_the_next_snapshot() {
    let app = upstream("app").await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = busy.local_addr().expect("addr");
    let good = free_addr();
    let mut snapshot = inbound_snapshot(address, app);
    for listener in inbound_snapshot(good, app).listeners.into_values() {
        snapshot.listeners.insert(listener.name.clone(), listener);
    }
    snapshot
        .clusters
        .extend(inbound_snapshot(good, app).clusters);

    // Start without waiting on the busy address: the good one still binds.
    let store = Arc::new(SnapshotStore::new());
    store.publish(snapshot.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(mesh_proxy::listener::run(store.clone(), shutdown.clone()));
    wait_listening(good).await;
    let client = client();
    assert_eq!(get(&client, &format!("http://{good}/")).await.0, 200);

    drop(busy);
    store.publish(snapshot);
    wait_listening(address).await;
    assert_eq!(get(&client, &format!("http://{address}/")).await.0, 200);
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))));
}

#[tokio::test]
async fn changed_inline_routes_reach_kept_alive_clients() {
    let first = upstream("first").await;
    let second = upstream("second").await;
    let listener = free_addr();
    let proxy = Proxy::start(inbound_snapshot(listener, first)).await;
    let client = client();
    let (_, body) = get(&client, &format!("http://{listener}/")).await;
    assert!(body.starts_with("first "), "{body}");

    // Same listener name and address, new inline route config: the socket
    // stays, the old connection drains, the client's next request is served
    // with the new config.
    proxy.store.publish(inbound_snapshot(listener, second));
    let deadline = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A request racing the drained connection's close may fail; the
        // client then reconnects on the next round.
        let body = match client.get(format!("http://{listener}/")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        if body.starts_with("second ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still served by the old config: {body}"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn removed_listener_lets_in_flight_requests_finish() {
    let app = upstream("app").await;
    let listener = free_addr();
    let proxy = Proxy::start(inbound_snapshot(listener, app)).await;
    let client = client();
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, &format!("http://{listener}/slow/500")).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.store.publish(Snapshot::default());

    let (status, body) = tokio::time::timeout(WAIT, in_flight)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(status, 200);
    assert!(body.starts_with("app "), "{body}");
    // And nothing new is accepted there.
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(listener).await.is_ok() {
        assert!(Instant::now() < deadline, "removed listener still accepts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.stop().await;
}

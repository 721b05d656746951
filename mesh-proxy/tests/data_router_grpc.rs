//! A real gRPC call through the proxy on loopback: tonic's health service
//! upstream (HTTP/2), tonic's client downstream; its trailers (status and
//! message) pass end to end, and the proxy's own answers reach a gRPC
//! client as gRPC statuses.

mod data_common;
mod router_common;

use std::sync::Arc;

use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use data_common::*;
use router_common::*;

async fn health_server() -> std::net::SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("reviews", tonic_health::ServingStatus::Serving)
        .await;
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = reporter;
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(socket))
            .await;
    });
    address
}

#[tokio::test]
async fn grpc_through_the_proxy_with_its_statuses() {
    let upstream = health_server().await;
    let listener = free_addr();
    let mut snapshot = snapshot_with(
        listener,
        vhost(
            "grpc",
            &["grpc", "grpc:*", "127.0.0.1:*"],
            vec![reviews_route("/", "health")],
        ),
        &[("health", &[upstream])],
        |_| {},
    );
    let mut cluster = (*snapshot.clusters["health"]).clone();
    cluster.http2 = true;
    snapshot.clusters.insert("health".into(), Arc::new(cluster));
    let proxy = Proxy::start(snapshot).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{listener}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let serving = client
        .check(HealthCheckRequest {
            service: "reviews".into(),
        })
        .await
        .expect("a call through the proxy");
    assert_eq!(serving.into_inner().status, ServingStatus::Serving as i32);
    // The upstream's own error status arrives in its trailers.
    let missing = client
        .check(HealthCheckRequest {
            service: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A local reply: no virtual host for this authority.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{listener}"))
        .unwrap()
        .origin("http://elsewhere:50051".parse().unwrap())
        .connect()
        .await
        .unwrap();
    let refused = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unimplemented,
        "404 is UNIMPLEMENTED: {refused:?}"
    );
    assert!(
        refused
            .metadata()
            .get("x-mesh-reason")
            .is_some_and(|r| r.to_str().unwrap().starts_with("NR no route")),
        "{refused:?}"
    );
    proxy.stop().await;
}

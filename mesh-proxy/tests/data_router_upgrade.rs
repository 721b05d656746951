//! Upgrades and trailers through the proxy on loopback: a WebSocket-style
//! HTTP/1.1 upgrade spliced both ways, an HTTP/2 extended CONNECT turned
//! into an HTTP/1.1 upgrade upstream, upgrades the HCM does not allow
//! refused, and gRPC-style trailers end to end over HTTP/2.

mod data_common;
mod router_common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_proxy::model::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use data_common::*;
use router_common::*;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// An upstream that accepts `Upgrade: websocket` with a 101 and then
/// echoes every byte, and answers gRPC-like requests with trailers.
async fn echo_upstream() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|mut request: Request<Incoming>| async move {
                    if request.headers().get("upgrade").is_some() {
                        let upgrade = hyper::upgrade::on(&mut request);
                        tokio::spawn(async move {
                            if let Ok(upgraded) = upgrade.await {
                                let mut io = TokioIo::new(upgraded);
                                let mut buf = [0u8; 1024];
                                while let Ok(n) = io.read(&mut buf).await {
                                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        });
                        let response = Response::builder()
                            .status(StatusCode::SWITCHING_PROTOCOLS)
                            .header("upgrade", "websocket")
                            .header("connection", "upgrade")
                            .body(Empty::new().boxed())
                            .unwrap();
                        return Ok::<_, Infallible>(response);
                    }
                    let frames = vec![
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
                        Ok(Frame::trailers({
                            let mut t = http::HeaderMap::new();
                            t.insert("grpc-status", "0".parse().unwrap());
                            t.insert("grpc-message", "fine".parse().unwrap());
                            t
                        })),
                    ];
                    let body: Body = StreamBody::new(futures::stream::iter(frames)).boxed();
                    Ok(Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap())
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

fn upgrade_snapshot(
    listener: SocketAddr,
    upstream: SocketAddr,
    upgrades: &[&str],
    http2_upstream: bool,
) -> Snapshot {
    let mut snapshot = snapshot_with(
        listener,
        any_vhost(vec![reviews_route("/", "up")]),
        &[("up", &[upstream])],
        |h| {
            h.options = Arc::new(HcmOptions {
                upgrades: upgrades.iter().map(|u| u.to_string()).collect(),
                http2_allow_connect: true,
                ..HcmOptions::default()
            });
        },
    );
    if http2_upstream {
        let mut cluster = (*snapshot.clusters["up"]).clone();
        cluster.http2 = true;
        snapshot.clusters.insert("up".into(), Arc::new(cluster));
    }
    snapshot
}

#[tokio::test]
async fn websocket_upgrade_is_spliced_over_http1() {
    let upstream = echo_upstream().await;
    let listener = free_addr();
    let proxy = Proxy::start(upgrade_snapshot(listener, upstream, &["websocket"], false)).await;
    let mut stream = TcpStream::connect(listener).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed in the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"ping"[..], b"a longer frame of bytes"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(WAIT, stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn upgrades_the_hcm_does_not_allow_are_refused() {
    let upstream = echo_upstream().await;
    let listener = free_addr();
    let proxy = Proxy::start(upgrade_snapshot(listener, upstream, &[], false)).await;
    let mut stream = TcpStream::connect(listener).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 403"), "{text}");
    assert!(
        text.contains("x-mesh-reason: upgrade \"websocket\" not allowed"),
        "{text}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn h2_extended_connect_becomes_an_http1_upgrade() {
    let upstream = echo_upstream().await;
    let listener = free_addr();
    let proxy = Proxy::start(upgrade_snapshot(listener, upstream, &["websocket"], false)).await;
    let stream = TcpStream::connect(listener).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method("CONNECT")
        .uri("http://reviews:9080/chat")
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    // The server must have announced extended CONNECT first.
    let mut response = None;
    for _ in 0..50 {
        match sender.send_request(clone_connect(&request)).await {
            Ok(r) => {
                response = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let mut response = response.expect("extended CONNECT accepted");
    assert_eq!(response.status(), 200, "101 from upstream is 200 on HTTP/2");
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"over h2").await.unwrap();
    let mut echoed = [0u8; 7];
    tokio::time::timeout(WAIT, io.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"over h2");
    // The client closes the tunnel, so the proxy has nothing left to drain.
    drop((io, sender));
    proxy.stop().await;
}

fn clone_connect(request: &Request<Empty<Bytes>>) -> Request<Empty<Bytes>> {
    let mut copy = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone())
        .body(Empty::new())
        .unwrap();
    *copy.headers_mut() = request.headers().clone();
    copy.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    copy
}

#[tokio::test]
async fn grpc_trailers_pass_end_to_end() {
    let upstream = echo_upstream().await;
    let listener = free_addr();
    let proxy = Proxy::start(upgrade_snapshot(listener, upstream, &[], true)).await;
    // HTTP/2 client.
    let stream = TcpStream::connect(listener).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::post("http://reviews/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers over h2");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "fine");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");
    // HTTP/1.1 client asking for trailers.
    let stream = TcpStream::connect(listener).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::post("/pkg.Svc/Call")
        .header("host", "reviews")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers over HTTP/1.1");
    assert_eq!(trailers["grpc-status"], "0");
    proxy.stop().await;
}

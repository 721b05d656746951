//! Hostile clients and stuck upstreams (the hardening issue): default
//! timeouts, header limits by bytes, client errors answered 400 without
//! touching the upstream, userinfo stripped, HTTP/1.1 to clients whatever
//! the upstream speaks, and upstream connections capped by the cluster's
//! circuit breaker. Raw sockets on loopback; every wait is bounded.

mod data_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use data_common::*;
use mesh_proxy::model::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that accepts, reads everything, and never answers. Counts
/// the connections it accepted and the ones the proxy has since closed.
struct Silent {
    address: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

async fn silent() -> Silent {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (a, c, b) = (accepted.clone(), closed.clone(), bytes.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (c, b) = (c.clone(), b.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            b.fetch_add(n, Ordering::SeqCst);
                        }
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Silent {
        address,
        accepted,
        closed,
        bytes,
    }
}

/// One listener with a catch-all route to cluster `up`, HCM options
/// changed by `options`, the cluster changed by `cluster`.
async fn proxy_to(
    up: std::net::SocketAddr,
    options: impl FnOnce(&mut HcmOptions),
    cluster: impl FnOnce(&mut Cluster),
) -> (Proxy, std::net::SocketAddr) {
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    let config = Arc::new(route_config(
        "inline",
        vec![vhost("all", &["*"], vec![to_cluster("up", prefix("/"))])],
    ));
    let mut l = http_listener("l", listener, RouteSource::Inline(config));
    if let NetworkFilter::Http(hcm) = &mut l.filter_chains[0].filter {
        let mut o = (*hcm.options).clone();
        options(&mut o);
        hcm.options = Arc::new(o);
    }
    add_listener(&mut snapshot, l);
    add_eds(&mut snapshot, "up", &[up]);
    let mut c = (*snapshot.clusters["up"]).clone();
    cluster(&mut c);
    snapshot.clusters.insert("up".into(), Arc::new(c));
    (Proxy::start(snapshot).await, listener)
}

/// Send `request` on a new connection and read until the proxy closes it
/// or `WAIT` passes.
async fn exchange(listener: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    stream.write_all(request).await.expect("write");
    read_all(&mut stream).await
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Read one HTTP/1.1 response (head and a Content-Length body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + length {
                return text;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return String::from_utf8_lossy(&out).into_owned(),
        }
    }
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn never_answering_upstream_gets_504_within_the_stream_idle_timeout() {
    let up = silent().await;
    let (proxy, listener) = proxy_to(
        up.address,
        |o| o.stream_idle_timeout = Some(Duration::from_millis(400)),
        |_| {},
    )
    .await;
    let started = Instant::now();
    let response = exchange(
        listener,
        b"GET /stuck HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(response.ends_with("stream timeout"), "{response}");
    let reason = header(&response, "x-mesh-reason").unwrap_or_default();
    assert!(reason.starts_with("SI "), "{response}");
    assert!(
        started.elapsed() < WAIT,
        "answered after {:?}",
        started.elapsed()
    );
    // The stuck upstream connection is let go, not kept for the pool.
    wait_for("the upstream connection to close", || {
        up.closed.load(Ordering::SeqCst) == up.accepted.load(Ordering::SeqCst)
    })
    .await;

    // An upload the client never finishes gets 408 (the request was not
    // whole), and the upstream connection carrying it is closed too.
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .expect("head");
    stream.write_all(&[b'x'; 65536]).await.expect("part");
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        up.bytes.load(Ordering::SeqCst) > 0,
        "the upload reached the upstream"
    );
    wait_for("the upload's upstream connection to close", || {
        up.closed.load(Ordering::SeqCst) == up.accepted.load(Ordering::SeqCst)
    })
    .await;
    proxy.stop().await;
}

#[tokio::test]
async fn silent_and_slow_downstream_connections_are_closed() {
    let ok = upstream("ok").await;
    let (proxy, listener) = proxy_to(
        ok,
        |o| {
            o.idle_timeout = Some(Duration::from_millis(300));
            o.request_headers_timeout = Some(Duration::from_millis(300));
        },
        |_| {},
    )
    .await;
    // Nothing sent at all: the idle timeout counts from the accept.
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    let started = Instant::now();
    let closed = read_all(&mut stream).await;
    assert!(closed.is_empty(), "{closed}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < WAIT,
        "closed after {waited:?}"
    );
    // A head that never ends (slowloris): the request headers timeout.
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: s\r\nX-Slow: 1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let _ = read_all(&mut stream).await;
    assert!(started.elapsed() < WAIT, "slow head still open");
    proxy.stop().await;
}

#[tokio::test]
async fn header_limit_counts_bytes_300_kb_in_30_headers_gets_431() {
    let ok = upstream("ok").await;
    let (proxy, listener) = proxy_to(ok, |_| {}, |_| {}).await;
    let mut request = String::from("GET /big HTTP/1.1\r\nHost: s\r\n");
    let value = "v".repeat(10 * 1024);
    for i in 0..30 {
        request.push_str(&format!("x-big-{i}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let response = exchange(listener, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");

    // Under the limit (59 KiB in 30 headers) passes.
    let mut request = String::from("GET /fits HTTP/1.1\r\nHost: s\r\n");
    let value = "v".repeat(1900);
    for i in 0..30 {
        request.push_str(&format!("x-fit-{i}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let response = exchange(listener, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Over 100 header fields, however small, is refused too.
    let mut request = String::from("GET /many HTTP/1.1\r\nHost: s\r\n");
    for i in 0..120 {
        request.push_str(&format!("x-{i}: 1\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let response = exchange(listener, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    proxy.stop().await;
}

#[tokio::test]
async fn malformed_chunked_body_gets_400_and_never_reaches_the_upstream() {
    let up = silent().await;
    let (proxy, listener) = proxy_to(up.address, |_| {}, |_| {}).await;
    let response = exchange(
        listener,
        b"POST /c HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        header(&response, "x-mesh-reason").is_some_and(|r| r.contains("DPE")),
        "{response}"
    );
    // Give a forwarded request time to arrive; none may.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        up.bytes.load(Ordering::SeqCst),
        0,
        "upstream saw the request"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn empty_or_invalid_host_gets_400() {
    let up = silent().await;
    let (proxy, listener) = proxy_to(up.address, |_| {}, |_| {}).await;
    for request in [
        &b"GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: bad/host\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let response = exchange(listener, request).await;
        assert!(
            response.starts_with("HTTP/1.1 400"),
            "{}: {response}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(up.bytes.load(Ordering::SeqCst), 0, "upstream saw a request");
    proxy.stop().await;
}

#[tokio::test]
async fn userinfo_is_stripped_from_absolute_form_uris() {
    let ok = upstream("ok").await;
    let (proxy, listener) = proxy_to(ok, |_| {}, |_| {}).await;
    let response = exchange(
        listener,
        b"GET http://user:pw@messenger:9080/m HTTP/1.1\r\nHost: messenger:9080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("host=messenger:9080"), "{response}");
    assert!(!response.contains("user"), "{response}");
    assert!(!response.contains("pw@"), "{response}");
    proxy.stop().await;
}

/// An upstream that answers every request in HTTP/1.0 and closes.
async fn http10_upstream() -> std::net::SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nold10")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

#[tokio::test]
async fn http10_upstream_behind_a_keep_alive_client_keeps_the_client_connection() {
    let old = http10_upstream().await;
    let (proxy, listener) = proxy_to(old, |_| {}, |_| {}).await;
    let mut stream = TcpStream::connect(listener).await.expect("connect");
    for i in 0..3 {
        stream
            .write_all(format!("GET /{i} HTTP/1.1\r\nHost: s\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let response = read_response(&mut stream).await;
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "request {i}: {response}"
        );
        assert!(response.ends_with("old10"), "{response}");
        assert!(
            !header(&response, "connection").is_some_and(|c| c.eq_ignore_ascii_case("close")),
            "{response}"
        );
    }
    proxy.stop().await;
}

/// An HTTP/1.1 upstream that counts its connections and answers after a
/// short pause, so that requests pile up behind the pool.
async fn counting_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, count)
}

#[tokio::test]
async fn h2_streams_open_at_most_the_clusters_connection_limit_upstream() {
    let (up, connections) = counting_upstream().await;
    let (proxy, listener) = proxy_to(
        up,
        |_| {},
        |c| {
            c.circuit_breakers.max_connections = 16;
            c.circuit_breakers.max_pending_requests = 1024;
        },
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // Four client connections, each with 200 concurrent streams.
        let client = reqwest::Client::builder()
            .no_proxy()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        for i in 0..200 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                client
                    .get(format!("http://{listener}/s/{i}"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.expect("task") == 200 {
            ok += 1;
        }
    }
    let opened = connections.load(Ordering::SeqCst);
    assert!(ok > 0, "some requests succeed");
    assert!(
        opened <= 16,
        "{opened} upstream connections for a limit of 16"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn connections_over_the_global_limit_are_closed_at_accept() {
    let ok = upstream("ok").await;
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    let config = Arc::new(route_config(
        "inline",
        vec![vhost("all", &["*"], vec![to_cluster("up", prefix("/"))])],
    ));
    add_listener(
        &mut snapshot,
        http_listener("l", listener, RouteSource::Inline(config)),
    );
    add_eds(&mut snapshot, "up", &[ok]);
    let store = Arc::new(SnapshotStore::new());
    store.publish(snapshot);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let capture = mesh_proxy::listener::CaptureOptions {
        max_downstream_connections: 2,
        ..Default::default()
    };
    let task = tokio::spawn(mesh_proxy::listener::run_with(
        store,
        shutdown.clone(),
        capture,
    ));
    // Two keep-alive connections hold both slots.
    let mut held = Vec::new();
    let deadline = Instant::now() + WAIT;
    while held.len() < 2 {
        assert!(Instant::now() < deadline, "listener never served");
        let Ok(mut stream) = TcpStream::connect(listener).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: s\r\n\r\n")
            .await
            .expect("write");
        let response = read_response(&mut stream).await;
        if response.starts_with("HTTP/1.1 200") {
            held.push(stream);
        }
    }
    // The third is closed without an answer.
    let mut third = TcpStream::connect(listener).await.expect("connect");
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: s\r\n\r\n").await;
    let answer = read_all(&mut third).await;
    assert!(answer.is_empty(), "{answer}");
    // A slot freed is a slot served again.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = TcpStream::connect(listener).await.expect("connect");
        let _ = stream
            .write_all(b"GET / HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
            .await;
        if read_all(&mut stream).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "freed slot never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    drop(held);
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
}

//! Route policies end to end on loopback: query matches with a regex
//! rewrite, weighted arms with their own headers and host, a route timeout
//! that also cuts a streaming body, the request timeout, the hash cookie a
//! route makes up, require_tls for external clients only, and tcp_proxy's
//! access log for a connection that found no upstream.

mod data_common;
mod router_common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_proxy::model::*;
use mesh_proxy::xds::convert::compile_whole_match;
use tokio::io::AsyncWriteExt;

use data_common::*;
use router_common::*;

#[tokio::test]
async fn query_match_then_regex_rewrite() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    route.matcher.query_parameters = vec![QueryParameterMatcher {
        name: "user".into(),
        kind: HeaderMatchKind::Regex(compile_whole_match("(?i:jason)").unwrap()),
    }];
    forward_of(&mut route).regex_rewrite = Some(RegexRewrite {
        regex: regex::Regex::new("^/service/([^/]+)(/.*)$").unwrap(),
        substitution: "${2}/instance/${1}".into(),
    });
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let (status, _) = get(
        &client(),
        &format!("http://{listener}/service/foo/v1/api?user=Jason"),
    )
    .await;
    assert_eq!(status, 200);
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.path, "/v1/api/instance/foo");
    assert_eq!(
        seen.headers["x-envoy-original-path"],
        "/service/foo/v1/api?user=Jason"
    );
    let (status, _) = get(
        &client(),
        &format!("http://{listener}/service/foo/v1?user=bob"),
    )
    .await;
    assert_eq!(status, 404, "the query does not match");
    proxy.stop().await;
}

#[tokio::test]
async fn weighted_arms_carry_their_own_headers_and_host() {
    let v1 = scripted("v1").await;
    let v2 = scripted("v2").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "unused");
    let arm = |version: &str| ClusterArm {
        headers: HeaderMutations {
            request_add: vec![HeaderAdd {
                name: "x-version".into(),
                value: Template::literal(version),
                action: AppendAction::OverwriteIfExistsOrAdd,
                keep_empty_value: false,
            }],
            ..HeaderMutations::default()
        },
        host_rewrite: Some(format!("reviews-{version}")),
    };
    let f = forward_of(&mut route);
    f.target = ClusterTarget::Weighted(vec![
        WeightedCluster {
            name: "v1".into(),
            weight: 50,
        },
        WeightedCluster {
            name: "v2".into(),
            weight: 50,
        },
    ]);
    f.arms = vec![arm("v1"), arm("v2")];
    f.append_x_forwarded_host = true;
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("v1", &[v1.address]), ("v2", &[v2.address])],
        |_| {},
    ))
    .await;
    for _ in 0..40 {
        let response = client()
            .get(format!("http://{listener}/"))
            .header("host", "reviews")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert!(v1.count() > 0 && v2.count() > 0);
    for (up, version) in [(&v1, "v1"), (&v2, "v2")] {
        for seen in up.seen() {
            assert_eq!(seen.headers["x-version"], version);
            assert_eq!(seen.headers["host"], format!("reviews-{version}"));
            assert_eq!(seen.headers["x-forwarded-host"], "reviews");
        }
    }
    proxy.stop().await;
}

/// An upstream whose response body sends one chunk, then waits `pause`,
/// then ends.
async fn slow_body(pause: Duration) -> std::net::SocketAddr {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |_| async move {
                    let chunks = futures::stream::unfold(0, move |n| async move {
                        match n {
                            0 => Some((
                                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first"))),
                                1,
                            )),
                            1 => {
                                tokio::time::sleep(pause).await;
                                Some((Ok(Frame::data(Bytes::from_static(b"second"))), 2))
                            }
                            _ => None,
                        }
                    });
                    Ok::<_, Infallible>(hyper::Response::new(StreamBody::new(chunks)))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

#[tokio::test]
async fn the_route_timeout_spans_the_response_body() {
    let slow = slow_body(Duration::from_secs(3)).await;
    let listener = free_addr();
    let mut route = reviews_route("/", "slow");
    forward_of(&mut route).timeout = Some(Duration::from_millis(300));
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("slow", &[slow])],
        |_| {},
    ))
    .await;
    let started = Instant::now();
    let response = client()
        .get(format!("http://{listener}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the headers came in time");
    let body = response.bytes().await;
    assert!(
        body.is_err(),
        "the body is cut off at the route timeout: {body:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    proxy.stop().await;
}

#[tokio::test]
async fn the_request_timeout_needs_the_whole_request() {
    let up = scripted("up").await;
    let listener = free_addr();
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![reviews_route("/", "up")]),
        &[("up", &[up.address])],
        |h| {
            h.options = Arc::new(HcmOptions {
                request_timeout: Some(Duration::from_millis(300)),
                ..HcmOptions::default()
            });
        },
    ))
    .await;
    let mut stream = tokio::net::TcpStream::connect(listener).await.unwrap();
    stream
        .write_all(b"POST /x HTTP/1.1\r\nHost: reviews\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut stream, &mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(
        text.contains("x-mesh-reason: request timeout: requesttimeout=300ms"),
        "{text}"
    );
    let (status, _) = get(&client(), &format!("http://{listener}/complete")).await;
    assert_eq!(status, 200);
    proxy.stop().await;
}

#[tokio::test]
async fn a_cookie_hash_policy_sets_its_cookie() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    forward_of(&mut route).hash_policy = vec![HashPolicy {
        kind: HashKind::Cookie {
            name: "sticky".into(),
            ttl: Some(Duration::from_secs(3600)),
            path: Some("/".into()),
            attributes: vec![],
        },
        terminal: false,
    }];
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let response = client()
        .get(format!("http://{listener}/"))
        .send()
        .await
        .unwrap();
    let cookie = header(&response, "set-cookie").unwrap().to_owned();
    assert!(
        cookie.starts_with("sticky=\"") && cookie.contains("Max-Age=3600; Path=/; HttpOnly"),
        "{cookie}"
    );
    let value = cookie.split('"').nth(1).unwrap();
    let response = client()
        .get(format!("http://{listener}/"))
        .header("cookie", format!("sticky={value}"))
        .send()
        .await
        .unwrap();
    assert!(
        header(&response, "set-cookie").is_none(),
        "a request with the cookie gets none"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn require_tls_for_external_clients_only() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut vh = any_vhost(vec![reviews_route("/", "up")]);
    vh.require_tls = TlsRequirement::ExternalOnly;
    let proxy = Proxy::start(snapshot_with(
        listener,
        vh,
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let plain = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Loopback is internal: served.
    let response = plain
        .get(format!("http://{listener}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Forwarded for a public address: external, redirected.
    let response = plain
        .get(format!("http://{listener}/x"))
        .header("host", "shop.example")
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(
        header(&response, "location"),
        Some("https://shop.example/x")
    );
    proxy.stop().await;
}

#[tokio::test]
async fn tcp_proxy_logs_each_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tcp.log");
    let listener = free_addr();
    let log = AccessLog {
        sink: LogSink::File(path.clone()),
        format: LogFormat::Text(Template {
            pieces: vec![
                Piece::Operator(Operator::ResponseFlags),
                Piece::Literal(" ".into()),
                Piece::Operator(Operator::UpstreamCluster),
                Piece::Literal(" ".into()),
                Piece::Operator(Operator::ConnectionTerminationDetails),
                Piece::Literal("\n".into()),
            ],
        }),
        filter: None,
    };
    let mut snapshot = Snapshot::default();
    let mut l = tcp_listener("tcp", listener, ClusterTarget::Cluster("empty".into()));
    if let Some(chain) = &mut l.default_filter_chain {
        if let NetworkFilter::Tcp(tcp) = &mut chain.filter {
            tcp.access_log = vec![log];
        }
    }
    add_listener(&mut snapshot, l);
    snapshot
        .clusters
        .insert("empty".into(), Arc::new(static_cluster("empty", &[])));
    let proxy = Proxy::start(snapshot).await;
    let mut stream = tokio::net::TcpStream::connect(listener).await.unwrap();
    let mut buf = [0u8; 1];
    let _ = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut stream, &mut buf)).await;
    let deadline = Instant::now() + WAIT;
    let mut text = String::new();
    while text.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        text = std::fs::read_to_string(&path).unwrap_or_default();
    }
    // Proxy::start's readiness probe is a connection too: every line is one.
    assert!(!text.is_empty());
    for line in text.lines() {
        assert_eq!(line, "UH empty UH no healthy upstream in cluster \"empty\"");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn grpc_timeout_is_honoured_as_the_stream_duration() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    forward_of(&mut route).grpc_timeout_header_max = Some(Duration::ZERO);
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let started = Instant::now();
    let response = client()
        .post(format!("http://{listener}/slow/3000"))
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "200m")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        response.status(),
        200,
        "a gRPC client gets a trailers-only answer"
    );
    assert!(header(&response, "grpc-status").is_some());
    assert_eq!(
        header(&response, "x-mesh-reason"),
        Some("DT max stream duration: VirtualService default/reviews maxStreamDuration=200ms")
    );
    proxy.stop().await;
}

#[tokio::test]
async fn an_idle_response_body_is_cut_at_the_idle_timeout() {
    let slow = slow_body(Duration::from_secs(3)).await;
    let listener = free_addr();
    let mut route = reviews_route("/", "slow");
    forward_of(&mut route).timeout = None;
    forward_of(&mut route).idle_timeout = Some(Duration::from_millis(200));
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("slow", &[slow])],
        |_| {},
    ))
    .await;
    let started = Instant::now();
    let response = client()
        .get(format!("http://{listener}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "cut while idle");
    assert!(started.elapsed() < Duration::from_secs(3));
    proxy.stop().await;
}

#[tokio::test]
async fn request_heads_past_the_limit_are_refused() {
    let up = scripted("up").await;
    let listener = free_addr();
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![reviews_route("/", "up")]),
        &[("up", &[up.address])],
        |h| {
            h.options = Arc::new(HcmOptions {
                max_request_headers_kb: 16,
                ..HcmOptions::default()
            });
        },
    ))
    .await;
    let big = "x".repeat(20 * 1024);
    let response = client()
        .get(format!("http://{listener}/"))
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(up.count(), 0);
    let small = "x".repeat(8 * 1024);
    let response = client()
        .get(format!("http://{listener}/"))
        .header("x-big", small)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    proxy.stop().await;
}

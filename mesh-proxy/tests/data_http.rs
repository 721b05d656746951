//! HTTP data path end to end on loopback: hand-built snapshots, the real
//! listener manager, real upstream servers. Routing, weights, round robin,
//! proxy-form requests, HTTP/2, and Envoy's error answers.

mod data_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use data_common::*;
use mesh_proxy::model::*;
use mesh_proxy::xds::convert::compile_whole_match;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client that sends everything through the proxy listener as an HTTP
/// proxy, like the sample apps with `HTTP_PROXY` set.
fn proxied(listener: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{listener}")).expect("proxy url"))
        .timeout(WAIT)
        .build()
        .expect("client")
}

fn upstream_name(body: &str) -> &str {
    body.split(' ').next().unwrap_or("")
}

#[tokio::test]
async fn routes_by_exact_regex_header_and_prefix() {
    let exact = upstream("exact").await;
    let regex = upstream("regex").await;
    let header = upstream("header").await;
    let prefix = upstream("prefix").await;
    let listener = free_addr();

    let mut header_route = to_cluster("header", prefix_path("/api"));
    header_route.matcher.headers = vec![HeaderMatcher::new(
        "user-agent",
        HeaderMatchKind::Regex(compile_whole_match(".*Firefox.*").expect("regex")),
    )];
    let routes = vec![
        to_cluster("exact", PathMatch::Exact("/message".into())),
        to_cluster(
            "regex",
            PathMatch::Regex(compile_whole_match("/items/[0-9]+").expect("regex")),
        ),
        header_route,
        to_cluster("prefix", prefix_path("/api")),
    ];
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        http_listener("proxy", listener, RouteSource::Rds("http_proxy".into())),
    );
    add_route_config(
        &mut snapshot,
        route_config(
            "http_proxy",
            vec![vhost(
                "messenger:9080",
                &["messenger", "messenger:9080"],
                routes,
            )],
        ),
    );
    for (name, address) in [
        ("exact", exact),
        ("regex", regex),
        ("header", header),
        ("prefix", prefix),
    ] {
        add_eds(&mut snapshot, name, &[address]);
    }
    let proxy = Proxy::start(snapshot).await;
    let client = proxied(listener);

    let cases = [
        ("/message", None, "exact"),
        ("/message?lang=en", None, "exact"),
        ("/items/17", None, "regex"),
        ("/api/v1", Some("Mozilla/5.0 Firefox/120"), "header"),
        ("/api/v1", Some("curl/8"), "prefix"),
    ];
    for (path, agent, expected) in cases {
        let mut request = client.get(format!("http://messenger:9080{path}"));
        if let Some(agent) = agent {
            request = request.header("user-agent", agent);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.expect("body");
        assert_eq!(upstream_name(&body), expected, "{path} {agent:?}: {body}");
        // Forwarded in origin-form with the original authority and a request id.
        assert!(
            body.contains(&format!(" {path} host=messenger:9080 request-id=true")),
            "{body}"
        );
    }
    // Items regex is a whole-path match; nothing else matches either.
    let response = client
        .get("http://messenger:9080/items/17/x")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    // Unknown authority: no virtual host.
    let response = client
        .get("http://nobody:9080/message")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    proxy.stop().await;
}

fn prefix_path(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

/// One listener, one catch-all virtual host with `routes`, and `clusters`.
async fn simple_proxy(
    routes: Vec<Route>,
    clusters: &[(&str, &[std::net::SocketAddr])],
) -> (Proxy, std::net::SocketAddr) {
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    let config = Arc::new(route_config("inline", vec![vhost("all", &["*"], routes)]));
    add_listener(
        &mut snapshot,
        http_listener("l", listener, RouteSource::Inline(config)),
    );
    for (name, addresses) in clusters {
        add_eds(&mut snapshot, name, addresses);
    }
    (Proxy::start(snapshot).await, listener)
}

#[tokio::test]
async fn weighted_clusters_split_80_20() {
    let v1 = upstream("v1").await;
    let v2 = upstream("v2").await;
    let route = Route::new(
        "split",
        matcher(prefix_path("/")),
        forward(ClusterTarget::Weighted(vec![
            WeightedCluster {
                name: "v1".into(),
                weight: 80,
            },
            WeightedCluster {
                name: "v2".into(),
                weight: 20,
            },
        ])),
    );
    let (proxy, listener) = simple_proxy(vec![route], &[("v1", &[v1]), ("v2", &[v2])]).await;
    let client = client();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..1000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "1000 requests took too long"
        );
        let (status, body) = get(&client, &format!("http://{listener}/message")).await;
        assert_eq!(status, 200);
        *counts.entry(upstream_name(&body).to_owned()).or_default() += 1;
    }
    let v1_share = counts.get("v1").copied().unwrap_or(0);
    assert_eq!(v1_share + counts.get("v2").copied().unwrap_or(0), 1000);
    assert!((750..=850).contains(&v1_share), "v1 got {v1_share} of 1000");
    proxy.stop().await;
}

#[tokio::test]
async fn round_robin_across_three_endpoints() {
    let endpoints = [
        upstream("r1").await,
        upstream("r2").await,
        upstream("r3").await,
    ];
    let (proxy, listener) = simple_proxy(
        vec![to_cluster("rr", prefix_path("/"))],
        &[("rr", &endpoints)],
    )
    .await;
    let client = client();
    let mut order = Vec::new();
    for _ in 0..30 {
        let (status, body) = get(&client, &format!("http://{listener}/")).await;
        assert_eq!(status, 200);
        order.push(upstream_name(&body).to_owned());
    }
    for name in ["r1", "r2", "r3"] {
        assert_eq!(order.iter().filter(|n| *n == name).count(), 10, "{order:?}");
    }
    // Strict rotation: no endpoint twice in a row.
    assert!(order.windows(2).all(|w| w[0] != w[1]), "{order:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn absolute_form_request_is_forwarded_in_origin_form() {
    let messenger = upstream("messenger").await;
    let listener = free_addr();
    let mut snapshot = Snapshot::default();
    add_listener(
        &mut snapshot,
        http_listener("proxy", listener, RouteSource::Rds("http_proxy".into())),
    );
    add_route_config(
        &mut snapshot,
        route_config(
            "http_proxy",
            vec![vhost(
                "m",
                &["messenger:9080"],
                vec![to_cluster("m", prefix_path("/"))],
            )],
        ),
    );
    add_eds(&mut snapshot, "m", &[messenger]);
    let proxy = Proxy::start(snapshot).await;

    let mut stream = TcpStream::connect(listener).await.expect("connect");
    // Host deliberately disagrees: the absolute URI wins (RFC 9112 §3.2.2).
    let request = "GET http://messenger:9080/message?x=1 HTTP/1.1\r\nHost: wrong\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("messenger HTTP/1.1 /message?x=1 host=messenger:9080"),
        "{response}"
    );
    assert!(response
        .to_ascii_lowercase()
        .contains("x-envoy-upstream-service-time"));
    proxy.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_both_sides() {
    let h1 = upstream("h1").await;
    let h2 = upstream("h2").await;
    let (proxy, listener) = simple_proxy(
        vec![
            to_cluster("h2", prefix_path("/h2")),
            to_cluster("h1", prefix_path("/")),
        ],
        &[("h1", &[h1]), ("h2", &[h2])],
    )
    .await;
    // Upgrade the h2 cluster to HTTP/2 upstream.
    let mut snapshot = (*proxy.store.load()).clone();
    let mut cluster = (*snapshot.clusters["h2"]).clone();
    cluster.http2 = true;
    snapshot.clusters.insert("h2".into(), Arc::new(cluster));
    proxy.publish(snapshot).await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(WAIT)
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{listener}/h2/x"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body = response.text().await.expect("body");
    assert!(
        body.starts_with(&format!("h2 HTTP/2.0 http://{listener}/h2/x")),
        "{body}"
    );
    // HTTP/2 downstream, HTTP/1.1 upstream.
    let response = client
        .get(format!("http://{listener}/plain"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body = response.text().await.expect("body");
    assert!(
        body.starts_with(&format!("h1 HTTP/1.1 /plain host={listener}")),
        "{body}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn errors_answer_like_envoy() {
    let ok = upstream("ok").await;
    let closed = free_addr(); // nothing listens here
    let mut slow_route = to_cluster("ok", PathMatch::Prefix("/slow".into()));
    if let RouteAction::Forward(forward) = &mut slow_route.action {
        forward.timeout = Some(Duration::from_millis(200));
    }
    let routes = vec![
        slow_route,
        to_cluster("empty", prefix_path("/empty")),
        to_cluster("missing", prefix_path("/missing")),
        to_cluster("refused", prefix_path("/refused")),
        Route::new(
            "direct",
            matcher(PathMatch::Exact("/direct".into())),
            RouteAction::DirectResponse {
                status: 418,
                body: Some("teapot".into()),
            },
        ),
        to_cluster("ok", PathMatch::Exact("/ok".into())),
    ];
    let (proxy, listener) = simple_proxy(
        routes,
        &[("ok", &[ok]), ("empty", &[]), ("refused", &[closed])],
    )
    .await;
    let client = client();
    let base = format!("http://{listener}");
    assert_eq!(get(&client, &format!("{base}/ok")).await.0, 200);
    assert_eq!(get(&client, &format!("{base}/nothing")).await.0, 404);
    assert_eq!(get(&client, &format!("{base}/missing")).await.0, 503);
    let (status, body) = get(&client, &format!("{base}/empty")).await;
    assert_eq!((status, body.as_str()), (503, "no healthy upstream"));
    let (status, body) = get(&client, &format!("{base}/refused")).await;
    assert_eq!(status, 503);
    assert!(body.contains("connection failure"), "{body}");
    let (status, body) = get(&client, &format!("{base}/slow/2000")).await;
    assert_eq!((status, body.as_str()), (504, "upstream request timeout"));
    assert_eq!(get(&client, &format!("{base}/slow/10")).await.0, 200);
    assert_eq!(
        get(&client, &format!("{base}/direct")).await,
        (418, "teapot".to_owned())
    );
    proxy.stop().await;
}

#[tokio::test]
async fn rewrites_prefix_and_host() {
    let app = upstream("app").await;
    let mut route = to_cluster("app", prefix_path("/api/v1"));
    if let RouteAction::Forward(forward) = &mut route.action {
        forward.prefix_rewrite = Some("/v2".into());
        forward.host_rewrite = Some("backend.internal".into());
    }
    let (proxy, listener) = simple_proxy(vec![route], &[("app", &[app])]).await;
    let (status, body) = get(&client(), &format!("http://{listener}/api/v1/items?q=1")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(" /v2/items?q=1 host=backend.internal"),
        "{body}"
    );
    proxy.stop().await;
}

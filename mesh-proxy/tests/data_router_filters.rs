//! The HCM's filters and route policies end to end on loopback: fault
//! abort and delay shares, mirrors, CORS, redirects and require_tls,
//! header mutations and their order, forwarded headers, gRPC local
//! replies, and access log lines.

mod data_common;
mod router_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use data_common::*;
use mesh_proxy::model::*;
use router_common::*;

fn literal(name: &str, value: &str, action: AppendAction) -> HeaderAdd {
    HeaderAdd {
        name: name.into(),
        value: Template::literal(value),
        action,
        keep_empty_value: false,
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .unwrap()
}

#[tokio::test]
async fn fault_abort_share_and_reason() {
    let up = scripted("up").await;
    let listener = free_addr();
    let half = Fraction {
        numerator: 50,
        denominator: 100,
    };
    let abort = Arc::new(FaultConfig {
        abort: Some(FaultAbort {
            status: AbortStatus::Http(503),
            percentage: half,
        }),
        ..FaultConfig::default()
    });
    let mut route = reviews_route("/", "up");
    route.filter_overrides.fault = Some(abort);
    let snapshot = snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |h| {
            h.http_filters = vec![
                HttpFilter::Fault(Arc::new(FaultConfig::default())),
                HttpFilter::Router,
            ];
        },
    );
    let proxy = Proxy::start(snapshot).await;
    let client = client();
    let mut aborted = 0;
    for _ in 0..400 {
        let response = client
            .get(format!("http://{listener}/x"))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            assert_eq!(
                header(&response, "x-mesh-reason"),
                Some("FI fault abort: VirtualService default/reviews")
            );
            assert_eq!(response.text().await.unwrap(), "fault filter abort");
            aborted += 1;
        }
    }
    assert!(
        (140..260).contains(&aborted),
        "{aborted} of 400 aborted at 50%"
    );
    assert_eq!(up.count(), 400 - aborted);
    proxy.stop().await;
}

#[tokio::test]
async fn fault_delay_and_access_log_flags() {
    let up = scripted("up").await;
    let listener = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let delay = Arc::new(FaultConfig {
        delay: Some(FaultDelay {
            delay: Duration::from_millis(150),
            percentage: Fraction::ALL,
        }),
        ..FaultConfig::default()
    });
    let template = |text: &str| -> Template {
        let mut pieces = Vec::new();
        for part in text.split('|') {
            pieces.push(match part {
                "FLAGS" => Piece::Operator(Operator::ResponseFlags),
                "CODE" => Piece::Operator(Operator::ResponseCode),
                "DETAILS" => Piece::Operator(Operator::ResponseCodeDetails),
                "CLUSTER" => Piece::Operator(Operator::UpstreamCluster),
                "REASON" => Piece::Operator(Operator::Response(HeaderLookup {
                    name: "x-mesh-reason".into(),
                    alternative: None,
                    max_length: None,
                })),
                "ROUTE" => Piece::Operator(Operator::RouteName),
                other => Piece::Literal(other.into()),
            });
        }
        Template { pieces }
    };
    let log = AccessLog {
        sink: LogSink::File(path.clone()),
        format: LogFormat::Text(template(
            "CODE| |FLAGS| |DETAILS| |CLUSTER| |ROUTE| \"|REASON|\"\n",
        )),
        filter: None,
    };
    let mut route = reviews_route("/", "up");
    route.filter_overrides.fault = Some(delay);
    let snapshot = snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |h| {
            h.http_filters = vec![
                HttpFilter::Fault(Arc::new(FaultConfig::default())),
                HttpFilter::Router,
            ];
            h.access_log = vec![log];
        },
    );
    let proxy = Proxy::start(snapshot).await;
    let started = Instant::now();
    let (status, _) = get(&client(), &format!("http://{listener}/x")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150), "delayed");
    let (status, _) = get(&client(), &format!("http://{listener}/status/503")).await;
    assert_eq!(status, 503);
    let lines = wait_lines(&path, 2).await;
    assert_eq!(lines[0], "200 DI via_upstream up reviews/ \"-\"");
    assert_eq!(lines[1], "503 DI via_upstream up reviews/ \"-\"");
    proxy.stop().await;
}

/// Lines of an access log once it has `n` (bounded wait).
async fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n || Instant::now() > deadline {
            assert!(lines.len() >= n, "only {lines:?}");
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn local_replies_are_logged_with_flag_and_reason() {
    let listener = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let log = AccessLog {
        sink: LogSink::File(path.clone()),
        format: LogFormat::Json {
            fields: vec![
                (
                    "code".into(),
                    JsonValue::Template(Template {
                        pieces: vec![Piece::Operator(Operator::ResponseCode)],
                    }),
                ),
                (
                    "flags".into(),
                    JsonValue::Template(Template {
                        pieces: vec![Piece::Operator(Operator::ResponseFlags)],
                    }),
                ),
                (
                    "details".into(),
                    JsonValue::Template(Template {
                        pieces: vec![Piece::Operator(Operator::ConnectionTerminationDetails)],
                    }),
                ),
                (
                    "host".into(),
                    JsonValue::Template(Template {
                        pieces: vec![Piece::Operator(Operator::UpstreamHost)],
                    }),
                ),
            ],
            omit_empty_values: true,
        },
        filter: Some(LogFilter::StatusCode {
            op: Comparison::Ge,
            value: 400,
        }),
    };
    let snapshot = snapshot_with(listener, vhost("only", &["only"], vec![]), &[], |h| {
        h.access_log = vec![log]
    });
    let proxy = Proxy::start(snapshot).await;
    let response = client()
        .get(format!("http://{listener}/"))
        .header("host", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let lines = wait_lines(&path, 1).await;
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["code"], 404);
    assert_eq!(line["flags"], "NR");
    assert_eq!(
        line["details"],
        "NR no route: no virtual host for \"other\""
    );
    assert!(line.get("host").is_none(), "empty values left out: {line}");
    proxy.stop().await;
}

#[tokio::test]
async fn mirrors_copy_a_share_and_the_client_sees_only_the_primary() {
    let primary = scripted("primary").await;
    let shadow = scripted("shadow").await;
    let listener = free_addr();
    let mut all = reviews_route("/all/", "primary");
    forward_of(&mut all).mirrors = vec![MirrorPolicy {
        cluster: "shadow".into(),
        fraction: Fraction::ALL,
        disable_shadow_host_suffix_append: false,
    }];
    let mut some = reviews_route("/some/", "primary");
    forward_of(&mut some).mirrors = vec![MirrorPolicy {
        cluster: "shadow".into(),
        fraction: Fraction {
            numerator: 2_500,
            denominator: 10_000,
        },
        disable_shadow_host_suffix_append: true,
    }];
    let snapshot = snapshot_with(
        listener,
        any_vhost(vec![all, some]),
        &[
            ("primary", &[primary.address]),
            ("shadow", &[shadow.address]),
        ],
        |_| {},
    );
    let proxy = Proxy::start(snapshot).await;
    let response = client()
        .post(format!("http://{listener}/all/x"))
        .header("host", "reviews:9080")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-upstream"), Some("primary"));
    assert_eq!(response.text().await.unwrap(), "primary len=5");
    let deadline = Instant::now() + WAIT;
    while shadow.count() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let copy = &shadow.seen()[0];
    assert_eq!(copy.headers["host"], "reviews-shadow:9080");
    assert_eq!((copy.path.as_str(), copy.body_len), ("/all/x", 5));
    for _ in 0..400 {
        let (status, body) = get(&client(), &format!("http://{listener}/some/y")).await;
        assert_eq!((status, body.as_str()), (200, "primary len=0"));
    }
    let deadline = Instant::now() + WAIT;
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = shadow.count();
        if now == last {
            break;
        }
        last = now;
    }
    let copies = shadow.count() - 1;
    assert!(
        (60..150).contains(&copies),
        "{copies} of 400 mirrored at 25%"
    );
    assert!(shadow.seen()[1..]
        .iter()
        .all(|s| !s.headers["host"].contains("-shadow")));
    proxy.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let up = scripted("up").await;
    let listener = free_addr();
    let policy = CorsPolicy {
        allow_origin: vec![HeaderMatchKind::Exact("https://shop.example".into())],
        allow_methods: Some("GET, POST".into()),
        allow_headers: Some("x-token".into()),
        expose_headers: Some("x-upstream".into()),
        max_age: Some("600".into()),
        allow_credentials: true,
        enabled: Fraction::ALL,
        shadow: None,
        allow_private_network_access: false,
        forward_not_matching_preflights: true,
    };
    let mut vh = any_vhost(vec![reviews_route("/", "up")]);
    vh.filter_overrides.cors = Some(Arc::new(policy));
    let snapshot = snapshot_with(listener, vh, &[("up", &[up.address])], |h| {
        h.http_filters = vec![HttpFilter::Cors, HttpFilter::Router];
    });
    let proxy = Proxy::start(snapshot).await;
    let client = client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("http://{listener}/api"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-headers"),
        Some("x-token")
    );
    assert_eq!(header(&preflight, "access-control-max-age"), Some("600"));
    assert_eq!(
        header(&preflight, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(up.count(), 0, "answered by the proxy");
    let actual = client
        .get(format!("http://{listener}/api"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&actual, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(
        header(&actual, "access-control-expose-headers"),
        Some("x-upstream")
    );
    let other = client
        .request(reqwest::Method::OPTIONS, format!("http://{listener}/api"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(header(&other, "access-control-allow-origin").is_none());
    assert_eq!(
        up.count(),
        2,
        "a preflight from another origin is forwarded"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn redirects_and_require_tls() {
    let listener = free_addr();
    let redirect = |name: &str, prefix: &str, r: Redirect| {
        Route::new(
            name,
            RouteMatch::path(PathMatch::Prefix(prefix.into())),
            RouteAction::Redirect(r),
        )
    };
    let base = Redirect {
        scheme: None,
        host: None,
        port: None,
        path: None,
        status: 301,
        strip_query: false,
    };
    let routes = vec![
        redirect(
            "host",
            "/host",
            Redirect {
                host: Some("new.example".into()),
                port: Some(8080),
                status: 302,
                ..base.clone()
            },
        ),
        redirect(
            "path",
            "/path",
            Redirect {
                path: Some(RedirectPath::Path("/moved".into())),
                status: 307,
                ..base.clone()
            },
        ),
        redirect(
            "prefix",
            "/old",
            Redirect {
                path: Some(RedirectPath::Prefix("/new".into())),
                status: 308,
                strip_query: true,
                ..base.clone()
            },
        ),
        redirect(
            "https",
            "/secure",
            Redirect {
                scheme: Some("https".into()),
                status: 303,
                ..base.clone()
            },
        ),
    ];
    let mut secure = vhost(
        "secure",
        &["secure.example"],
        vec![reviews_route("/", "up")],
    );
    secure.require_tls = TlsRequirement::All;
    let mut snapshot = snapshot_with(
        listener,
        any_vhost(routes),
        &[("up", &[free_addr()])],
        |_| {},
    );
    let rc = Arc::make_mut(snapshot.route_configs.get_mut("rc").unwrap());
    rc.virtual_hosts.insert(0, secure);
    let proxy = Proxy::start(snapshot).await;
    let client = no_redirects();
    let location = |host: &'static str, path: &'static str| {
        let url = format!("http://{listener}{path}");
        let client = client.clone();
        async move {
            let r = client.get(url).header("host", host).send().await.unwrap();
            (
                r.status().as_u16(),
                header(&r, "location").unwrap_or("").to_owned(),
            )
        }
    };
    assert_eq!(
        location("a.example:80", "/host/x?q=1").await,
        (302, "http://new.example:8080/host/x?q=1".into())
    );
    assert_eq!(
        location("a.example", "/path/x?q=1").await,
        (307, "http://a.example/moved?q=1".into())
    );
    assert_eq!(
        location("a.example", "/old/page?q=1").await,
        (308, "http://a.example/new/page".into())
    );
    assert_eq!(
        location("a.example:80", "/secure").await,
        (303, "https://a.example/secure".into())
    );
    assert_eq!(
        location("secure.example", "/cart?id=1").await,
        (301, "https://secure.example/cart?id=1".into())
    );
    proxy.stop().await;
}

#[tokio::test]
async fn header_mutations_at_every_level_in_envoys_order() {
    let up = scripted("up").await;
    let listener = free_addr();
    let level = |value: &str| HeaderMutations {
        request_add: vec![
            literal("x-level", value, AppendAction::OverwriteIfExistsOrAdd),
            literal(
                &format!("x-{value}"),
                "1",
                AppendAction::AppendIfExistsOrAdd,
            ),
        ],
        request_remove: vec!["x-drop".into()],
        response_add: vec![literal(
            "x-response-level",
            value,
            AppendAction::OverwriteIfExistsOrAdd,
        )],
        response_remove: vec!["x-upstream".into()],
    };
    let mut route = reviews_route("/", "up");
    route.headers = level("route");
    let peer = Template {
        pieces: vec![Piece::Operator(
            Operator::DownstreamRemoteAddressWithoutPort,
        )],
    };
    route.headers.request_add.push(HeaderAdd {
        name: "x-client".into(),
        value: peer,
        action: AppendAction::OverwriteIfExistsOrAdd,
        keep_empty_value: false,
    });
    let mut vh = any_vhost(vec![route]);
    vh.headers = level("vhost");
    let mut snapshot = snapshot_with(listener, vh, &[("up", &[up.address])], |_| {});
    Arc::make_mut(snapshot.route_configs.get_mut("rc").unwrap()).headers = level("config");
    proxy_check(snapshot.clone(), &up, listener, "config").await;
    Arc::make_mut(snapshot.route_configs.get_mut("rc").unwrap())
        .most_specific_header_mutations_wins = true;
    proxy_check(snapshot, &up, listener, "route").await;
}

async fn proxy_check(
    snapshot: Snapshot,
    up: &Scripted,
    listener: std::net::SocketAddr,
    winner: &str,
) {
    let proxy = Proxy::start(snapshot).await;
    let response = client()
        .get(format!("http://{listener}/x"))
        .header("x-drop", "1")
        .header("x-level", "client")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "x-response-level"), Some(winner));
    assert!(header(&response, "x-upstream").is_none());
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.headers["x-level"], winner);
    assert_eq!(seen.headers["x-client"], "127.0.0.1");
    for level in ["x-config", "x-vhost", "x-route"] {
        assert_eq!(seen.headers[level], "1", "{level}");
    }
    assert!(!seen.headers.contains_key("x-drop"));
    proxy.stop().await;
}

#[tokio::test]
async fn forwarded_headers_and_request_ids() {
    let up = scripted("up").await;
    let listener = free_addr();
    let snapshot = snapshot_with(
        listener,
        any_vhost(vec![reviews_route("/", "up")]),
        &[("up", &[up.address])],
        |h| {
            h.options = Arc::new(HcmOptions {
                use_remote_address: true,
                always_set_request_id_in_response: true,
                ..HcmOptions::default()
            });
        },
    );
    let proxy = Proxy::start(snapshot).await;
    let response = client()
        .get(format!("http://{listener}/x"))
        .header("x-forwarded-for", "198.18.0.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let seen = up.seen().pop().unwrap();
    assert_eq!(seen.headers["x-forwarded-for"], "198.18.0.9,127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-request-id"].len(), 36);
    assert_eq!(
        header(&response, "x-request-id"),
        Some(seen.headers["x-request-id"].as_str())
    );
    assert_eq!(header(&response, "server"), Some("envoy"));
    proxy.stop().await;
}

#[tokio::test]
async fn grpc_local_replies_are_trailers_only() {
    let listener = free_addr();
    let snapshot = snapshot_with(listener, vhost("only", &["only"], vec![]), &[], |_| {});
    let proxy = Proxy::start(snapshot).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(WAIT)
        .build()
        .unwrap();
    let response = h2
        .post(format!("http://{listener}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "grpc-status"),
        Some("12"),
        "404 is UNIMPLEMENTED"
    );
    assert_eq!(header(&response, "content-type"), Some("application/grpc"));
    assert!(header(&response, "x-mesh-reason")
        .unwrap()
        .starts_with("NR no route"));
    assert!(response.bytes().await.unwrap().is_empty());
    proxy.stop().await;
}

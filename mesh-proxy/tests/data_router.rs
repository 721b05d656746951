//! The router end to end on loopback: retries (conditions, attempt counts,
//! exhaustion, body replay and its limit, previous hosts), timeouts and
//! their reasons, and the `x-mesh-reason` of each kind of local reply.

mod data_common;
mod router_common;

use std::sync::Arc;
use std::time::Duration;

use data_common::*;
use mesh_proxy::model::*;
use router_common::*;

fn retry(on: RetryOn, num_retries: u32) -> Arc<RetryPolicy> {
    Arc::new(RetryPolicy {
        on,
        num_retries,
        per_try_timeout: None,
        per_try_idle_timeout: None,
        retriable_status_codes: vec![],
        retriable_headers: vec![],
        retriable_request_headers: vec![],
        previous_hosts: false,
        host_selection_max_attempts: 1,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    })
}

fn five_xx() -> RetryOn {
    RetryOn {
        server_error: true,
        ..RetryOn::default()
    }
}

#[tokio::test]
async fn retries_hide_a_flaky_upstream_and_count_attempts() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    forward_of(&mut route).retry_policy = Some(retry(five_xx(), 3));
    forward_of(&mut route).timeout = Some(Duration::from_secs(15));
    let mut vh = any_vhost(vec![route]);
    vh.include_request_attempt_count = true;
    vh.include_attempt_count_in_response = true;
    let proxy = Proxy::start(snapshot_with(
        listener,
        vh,
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let response = client()
        .post(format!("http://{listener}/flaky/2"))
        .body(vec![7u8; 1000])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-envoy-attempt-count"), Some("3"));
    assert_eq!(
        response.text().await.unwrap(),
        "up len=1000",
        "the body was replayed whole"
    );
    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    let counts: Vec<&str> = seen
        .iter()
        .map(|s| s.headers["x-envoy-attempt-count"].as_str())
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);
    let expected: u64 = seen[0].headers["x-envoy-expected-rq-timeout-ms"]
        .parse()
        .unwrap();
    assert!(
        expected > 0 && expected <= 15_000,
        "what is left of the route timeout: {expected}"
    );
    assert!(seen.iter().all(|s| s.body_len == 1000));
    proxy.stop().await;
}

#[tokio::test]
async fn exhausted_retries_return_the_last_answer_with_urx() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    forward_of(&mut route).retry_policy = Some(retry(five_xx(), 2));
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let response = client()
        .get(format!("http://{listener}/flaky/10"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        header(&response, "x-mesh-reason"),
        Some("URX retries exhausted: 2 retries, last 503: VirtualService default/reviews")
    );
    assert_eq!(
        header(&response, "x-upstream"),
        Some("up"),
        "the upstream's own answer"
    );
    assert_eq!(up.count(), 3);
    // A status the policy does not retry is returned at once.
    let response = client()
        .get(format!("http://{listener}/status/404"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(up.count(), 4);
    assert!(header(&response, "x-mesh-reason").is_none());
    proxy.stop().await;
}

#[tokio::test]
async fn retry_conditions_by_status() {
    let up = scripted("up").await;
    let listener = free_addr();
    let cases: Vec<(RetryOn, Vec<u16>, &str, bool)> = vec![
        (
            RetryOn {
                gateway_error: true,
                ..RetryOn::default()
            },
            vec![],
            "/status/502",
            true,
        ),
        (
            RetryOn {
                gateway_error: true,
                ..RetryOn::default()
            },
            vec![],
            "/status/500",
            false,
        ),
        (
            RetryOn {
                retriable_4xx: true,
                ..RetryOn::default()
            },
            vec![],
            "/status/409",
            true,
        ),
        (
            RetryOn {
                retriable_status_codes: true,
                ..RetryOn::default()
            },
            vec![418],
            "/status/418",
            true,
        ),
        (
            RetryOn {
                connect_failure: true,
                ..RetryOn::default()
            },
            vec![],
            "/status/503",
            false,
        ),
    ];
    let mut routes = Vec::new();
    for (i, (on, codes, _, _)) in cases.iter().enumerate() {
        let mut route = reviews_route(&format!("/case{i}/"), "up");
        let mut policy = (*retry(*on, 1)).clone();
        policy.retriable_status_codes = codes.clone();
        forward_of(&mut route).retry_policy = Some(Arc::new(policy));
        forward_of(&mut route).prefix_rewrite = Some("/".into());
        routes.push(route);
    }
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(routes),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    for (i, (_, _, path, retried)) in cases.iter().enumerate() {
        let before = up.count();
        let url = format!("http://{listener}/case{i}{path}");
        client().get(url).send().await.unwrap();
        let attempts = up.count() - before;
        assert_eq!(attempts, if *retried { 2 } else { 1 }, "case {i} {path}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn connect_failures_retry_on_another_host() {
    let up = scripted("up").await;
    let closed = free_addr();
    let listener = free_addr();
    let mut route = reviews_route("/", "pair");
    let mut policy = (*retry(
        RetryOn {
            connect_failure: true,
            ..RetryOn::default()
        },
        2,
    ))
    .clone();
    policy.previous_hosts = true;
    policy.host_selection_max_attempts = 5;
    forward_of(&mut route).retry_policy = Some(Arc::new(policy));
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("pair", &[closed, up.address])],
        |_| {},
    ))
    .await;
    for _ in 0..10 {
        let (status, body) = get(&client(), &format!("http://{listener}/x")).await;
        assert_eq!((status, body.as_str()), (200, "up len=0"));
    }
    proxy.stop().await;
}

#[tokio::test]
async fn bodies_past_the_buffer_limit_are_not_retried() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut route = reviews_route("/", "up");
    forward_of(&mut route).retry_policy = Some(retry(five_xx(), 3));
    route.buffer_limit = Some(100);
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![route]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let response = client()
        .post(format!("http://{listener}/flaky/1"))
        .body(vec![1u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "the first answer stands");
    assert!(
        header(&response, "x-mesh-reason").is_none(),
        "no retry was possible: no URX"
    );
    assert_eq!(up.count(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn timeouts_answer_504_with_their_rule() {
    let up = scripted("up").await;
    let listener = free_addr();
    let mut whole = reviews_route("/whole/", "up");
    forward_of(&mut whole).timeout = Some(Duration::from_millis(200));
    forward_of(&mut whole).prefix_rewrite = Some("/".into());
    let mut per_try = reviews_route("/try/", "up");
    let mut policy = (*retry(five_xx(), 1)).clone();
    policy.per_try_timeout = Some(Duration::from_millis(100));
    forward_of(&mut per_try).retry_policy = Some(Arc::new(policy));
    forward_of(&mut per_try).timeout = Some(Duration::from_secs(4));
    forward_of(&mut per_try).prefix_rewrite = Some("/".into());
    let proxy = Proxy::start(snapshot_with(
        listener,
        any_vhost(vec![whole, per_try]),
        &[("up", &[up.address])],
        |_| {},
    ))
    .await;
    let response = client()
        .get(format!("http://{listener}/whole/slow/3000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        header(&response, "x-mesh-reason"),
        Some("UT upstream timeout: VirtualService default/reviews timeout=200ms")
    );
    assert_eq!(response.text().await.unwrap(), "upstream request timeout");
    let before = up.count();
    let response = client()
        .get(format!("http://{listener}/try/slow/3000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        up.count() - before,
        2,
        "the per-try timeout was retried once"
    );
    let reason = header(&response, "x-mesh-reason").unwrap();
    assert_eq!(
        reason,
        "URX retries exhausted: 1 retries, last per-try timeout: VirtualService default/reviews"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn every_local_reply_says_why() {
    let up = scripted("up").await;
    let closed = free_addr();
    let listener = free_addr();
    let mut blocked = Route::new(
        "block_all",
        RouteMatch::path(PathMatch::Prefix("/blocked".into())),
        RouteAction::DirectResponse {
            status: 502,
            body: None,
        },
    );
    blocked.mesh_reason = Some("outboundTrafficPolicy REGISTRY_ONLY".into());
    let routes = vec![
        blocked,
        reviews_route("/missing", "no-such-cluster"),
        reviews_route("/empty", "empty"),
        reviews_route("/refused", "refused"),
        reviews_route("/ok", "up"),
    ];
    let vh = vhost("reviews", &["reviews"], routes);
    let mut snapshot = snapshot_with(
        listener,
        vh,
        &[
            ("up", &[up.address]),
            ("empty", &[]),
            ("refused", &[closed]),
        ],
        |_| {},
    );
    // The route to a missing cluster would be NACKed by conversion; the
    // snapshot here is hand-made to show the answer anyway.
    snapshot.clusters.remove("no-such-cluster");
    let proxy = Proxy::start(snapshot).await;
    let ask = |host: &'static str, path: &'static str| {
        let url = format!("http://{listener}{path}");
        async move {
            let response = client().get(url).header("host", host).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                header(&response, "x-mesh-reason").unwrap_or("").to_owned(),
            )
        }
    };
    assert_eq!(ask("reviews", "/ok").await, (200, String::new()));
    assert_eq!(
        ask("ratings:9080", "/").await,
        (
            404,
            "NR no route: no virtual host for \"ratings:9080\"".into()
        )
    );
    assert_eq!(
        ask("reviews", "/nothing").await,
        (
            404,
            "NR no route: no route of virtual host \"reviews\" matches".into()
        )
    );
    assert_eq!(
        ask("reviews", "/blocked").await,
        (
            502,
            "NR blocked: outboundTrafficPolicy REGISTRY_ONLY".into()
        )
    );
    assert_eq!(
        ask("reviews", "/missing").await,
        (
            503,
            "NC cluster \"no-such-cluster\" not found: VirtualService default/reviews".into()
        )
    );
    assert_eq!(
        ask("reviews", "/empty").await,
        (503, "UH no healthy upstream in cluster \"empty\"".into())
    );
    let (status, reason) = ask("reviews", "/refused").await;
    assert_eq!(status, 503);
    assert!(
        reason.starts_with(&format!("UF connect failure: {closed}")),
        "{reason}"
    );
    proxy.stop().await;
}

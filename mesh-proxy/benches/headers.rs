//! Per-request header work of the HTTP connection manager (HCM ─► headers,
//! authority, router): `x-request-id`, the authority, header conditions of
//! route rules, hop-by-hop removal and the path rewrite, on a browser-like
//! HTTP/1.1 request with 16 header fields.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::request::Parts;
use http::Request;
use mesh_proxy::hcm::authority::authority;
use mesh_proxy::hcm::headers::{ensure_request_id, remove_hop_by_hop};
use mesh_proxy::hcm::proxy::rewrite_path;
use mesh_proxy::hcm::router::{route_matches, select_route};
use mesh_proxy::model::*;
use mesh_proxy::xds::convert::compile_whole_match;

/// An origin-form request as a sidecar's outbound listener receives it:
/// authority in `Host`, tracing headers, a keep-alive `Connection` naming
/// one more hop-by-hop header, and `x-forwarded-for` sent twice.
fn request() -> Parts {
    Request::get("/api/v1/reviews/1?page=2&sort=desc")
        .header("host", "reviews:9080")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        )
        .header("accept", "application/json, text/plain, */*")
        .header("accept-encoding", "gzip, deflate, br")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("connection", "keep-alive, x-hop-debug")
        .header("keep-alive", "timeout=5, max=1000")
        .header("x-hop-debug", "1")
        .header("te", "trailers")
        .header("cookie", "session=6f1c0e2a; theme=dark; consent=yes")
        .header("end-user", "jason")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-for", "198.18.1.4")
        .header("x-forwarded-proto", "https")
        .header("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124")
        .header("x-b3-spanid", "a2fb4a1d1a96d312")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn header(name: &str, kind: HeaderMatchKind) -> HeaderMatcher {
    HeaderMatcher::new(name, kind)
}

fn route(name: &str, path: PathMatch, headers: Vec<HeaderMatcher>) -> Route {
    let mut forward = Forward::to(ClusterTarget::Cluster(name.into()));
    forward.prefix_rewrite = Some("/v2".into());
    Route::new(
        name,
        RouteMatch {
            headers,
            ..RouteMatch::path(path)
        },
        RouteAction::Forward(forward),
    )
}

/// The header conditions a VirtualService's `match` turns into: every
/// kind of condition, a pseudo-header and a repeated header (joined).
fn header_conditions() -> Vec<HeaderMatcher> {
    vec![
        header(":method", HeaderMatchKind::Exact("GET".into())),
        header("end-user", HeaderMatchKind::Exact("jason".into())),
        header(
            "user-agent",
            HeaderMatchKind::Regex(compile_whole_match(".*Chrome.*").unwrap()),
        ),
        header("cookie", HeaderMatchKind::Contains("session=".into())),
        header("x-forwarded-for", HeaderMatchKind::Prefix("203.0.".into())),
        header("x-b3-spanid", HeaderMatchKind::Suffix("d312".into())),
        header("x-canary", HeaderMatchKind::Present(false)),
    ]
}

/// A virtual host in the shape of an Istio VirtualService with header
/// routing: a canary rule that does not hold, then the rule that does.
fn vhost() -> VirtualHost {
    let canary = vec![header("x-canary", HeaderMatchKind::Exact("always".into()))];
    VirtualHost {
        name: "reviews.default.svc.cluster.local:9080".into(),
        domains: vec!["reviews".into(), "reviews:9080".into()],
        routes: vec![
            route("canary", PathMatch::Prefix("/api/v1".into()), canary),
            route(
                "jason",
                PathMatch::Prefix("/api/v1".into()),
                header_conditions(),
            ),
            route("default", PathMatch::Prefix("/".into()), vec![]),
        ],
        ..VirtualHost::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let request = request();
    assert_eq!(request.headers.len(), 16);

    group.bench_function("ensure_request_id/absent", |b| {
        b.iter_batched_ref(
            || request.headers.clone(),
            |headers| ensure_request_id(black_box(headers)),
            BatchSize::SmallInput,
        )
    });
    let mut with_id = request.headers.clone();
    ensure_request_id(&mut with_id);
    group.bench_function("ensure_request_id/present", |b| {
        b.iter_batched_ref(
            || with_id.clone(),
            |headers| ensure_request_id(black_box(headers)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("remove_hop_by_hop/16 headers", |b| {
        b.iter_batched_ref(
            || request.headers.clone(),
            |headers| remove_hop_by_hop(black_box(headers)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("authority/host header", |b| {
        b.iter(|| authority(black_box(&request)))
    });

    let conditions = route(
        "jason",
        PathMatch::Prefix("/api".into()),
        header_conditions(),
    );
    assert!(route_matches(&conditions.matcher, &request));
    group.bench_function("route_matches/7 header conditions hold", |b| {
        b.iter(|| route_matches(black_box(&conditions.matcher), black_box(&request)))
    });

    // What the HCM does to a request head before it is sent upstream,
    // from the public steps of `hcm::proxy` (the Host and URI rebuild of
    // its private `upstream_request` is left out).
    let vhost = vhost();
    group.bench_function(
        "request head/id, authority, route, hop-by-hop, rewrite",
        |b| {
            b.iter_batched(
                || request.clone(),
                |mut parts| {
                    ensure_request_id(&mut parts.headers);
                    let authority = authority(&parts).map(str::to_owned);
                    let route = select_route(black_box(&vhost), &parts).unwrap();
                    remove_hop_by_hop(&mut parts.headers);
                    let RouteAction::Forward(forward) = &route.action else {
                        unreachable!("every route of the bench forwards")
                    };
                    let path = rewrite_path(
                        &parts.uri,
                        &route.matcher.path,
                        forward.prefix_rewrite.as_deref(),
                    );
                    (authority, path, parts)
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

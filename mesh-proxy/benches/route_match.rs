//! Route selection cost on the request path: virtual host by authority and
//! first matching route, over a route config shaped like the sidecar's
//! `http_proxy` (many services, each with several domains and routes).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use mesh_proxy::hcm::router::{select_route, select_virtual_host};
use mesh_proxy::model::*;
use mesh_proxy::xds::convert::compile_whole_match;

fn route(name: &str, path: PathMatch, headers: Vec<HeaderMatcher>) -> Route {
    Route::new(
        name,
        RouteMatch {
            headers,
            ..RouteMatch::path(path)
        },
        RouteAction::Forward(Forward::to(ClusterTarget::Cluster(name.into()))),
    )
}

/// `services` virtual hosts with Istio's domain forms and four routes each.
fn config(services: usize) -> RouteConfig {
    let virtual_hosts = (0..services)
        .map(|i| {
            let host = format!("svc{i}.default.svc.cluster.local");
            let short = format!("svc{i}");
            let domains = [
                host.clone(),
                format!("{host}:9080"),
                short.clone(),
                format!("{short}:9080"),
                format!("{short}.default"),
                format!("{short}.default:9080"),
            ];
            VirtualHost {
                name: format!("{host}:9080"),
                domains: domains.to_vec(),
                routes: vec![
                    route("exact", PathMatch::Exact("/healthz".into()), vec![]),
                    route(
                        "firefox",
                        PathMatch::Prefix("/".into()),
                        vec![HeaderMatcher::new(
                            "user-agent",
                            HeaderMatchKind::Regex(compile_whole_match(".*Firefox.*").unwrap()),
                        )],
                    ),
                    route(
                        "regex",
                        PathMatch::Regex(compile_whole_match("/items/[0-9]+").unwrap()),
                        vec![],
                    ),
                    route("default", PathMatch::Prefix("/".into()), vec![]),
                ],
                ..VirtualHost::default()
            }
        })
        .collect();
    RouteConfig {
        name: "http_proxy".into(),
        virtual_hosts,
        ..RouteConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let config = config(100);
    let request = Request::get("http://svc77:9080/reviews/1?x=1")
        .header("user-agent", "Mozilla/5.0 Chrome/120")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    c.bench_function("select_virtual_host/100 services", |b| {
        b.iter(|| select_virtual_host(black_box(&config), black_box("svc77:9080")))
    });
    c.bench_function("select_virtual_host/catch-all miss", |b| {
        b.iter(|| select_virtual_host(black_box(&config), black_box("unknown.example:80")))
    });
    let vhost = select_virtual_host(&config, "svc77:9080").unwrap();
    c.bench_function("select_route/header regex miss then prefix", |b| {
        b.iter(|| select_route(black_box(vhost), black_box(&request)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

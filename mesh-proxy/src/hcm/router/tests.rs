use super::*;
use crate::model::{ClusterTarget, Forward, RouteAction};
use crate::xds::convert::compile_whole_match;

fn vhost(name: &str, domains: &[&str]) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..VirtualHost::default()
    }
}

fn config(vhosts: Vec<VirtualHost>) -> RouteConfig {
    RouteConfig {
        name: "test".into(),
        virtual_hosts: vhosts,
        ..RouteConfig::default()
    }
}

fn chosen(config: &RouteConfig, authority: &str) -> Option<String> {
    select_virtual_host(config, authority).map(|vh| vh.name.clone())
}

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut request = http::Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

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

fn header(name: &str, kind: HeaderMatchKind, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        invert,
        ..HeaderMatcher::new(name, kind)
    }
}

#[test]
fn virtual_host_order_is_exact_suffix_prefix_catch_all() {
    let config = config(vec![
        vhost("any", &["*"]),
        vhost("prefix", &["api.*"]),
        vhost("longer-prefix", &["api.example.*"]),
        vhost("suffix", &["*.com"]),
        vhost("longer-suffix", &["*.example.com"]),
        vhost("exact", &["api.example.com"]),
    ]);
    assert_eq!(chosen(&config, "api.example.com").as_deref(), Some("exact"));
    assert_eq!(
        chosen(&config, "www.example.com").as_deref(),
        Some("longer-suffix")
    );
    assert_eq!(chosen(&config, "foo.com").as_deref(), Some("suffix"));
    assert_eq!(
        chosen(&config, "api.example.org").as_deref(),
        Some("longer-prefix")
    );
    assert_eq!(chosen(&config, "api.other").as_deref(), Some("prefix"));
    assert_eq!(chosen(&config, "elsewhere").as_deref(), Some("any"));
    // Wildcards stand for at least one character.
    let config2 = super::tests::config(vec![vhost("suffix", &["*.com"])]);
    assert_eq!(chosen(&config2, ".com"), None);
}

#[test]
fn virtual_host_matches_with_and_without_port_ignoring_case() {
    let config = config(vec![
        vhost("bare", &["messenger"]),
        vhost("ported", &["greeter:8080"]),
        vhost("any", &["*"]),
    ]);
    assert_eq!(chosen(&config, "Messenger:9080").as_deref(), Some("bare"));
    assert_eq!(chosen(&config, "messenger").as_deref(), Some("bare"));
    assert_eq!(chosen(&config, "greeter:8080").as_deref(), Some("ported"));
    assert_eq!(chosen(&config, "greeter").as_deref(), Some("any"));
    // An exact domain without port beats a wildcard that matches with port.
    let config = super::tests::config(vec![
        vhost("wild", &["messenger:*"]),
        vhost("bare", &["messenger"]),
    ]);
    assert_eq!(chosen(&config, "messenger:9080").as_deref(), Some("bare"));
    assert_eq!(strip_port("[::1]:80"), "[::1]");
    assert_eq!(strip_port("[::1]"), "[::1]");
}

#[test]
fn no_catch_all_means_no_virtual_host() {
    let config = config(vec![vhost("only", &["messenger"])]);
    assert_eq!(chosen(&config, "greeter"), None);
}

#[test]
fn path_matches_ignore_the_query() {
    let mut vh = vhost("vh", &["*"]);
    vh.routes = vec![
        route("exact", PathMatch::Exact("/message".into()), vec![]),
        route(
            "regex",
            PathMatch::Regex(compile_whole_match("/items/[0-9]+").unwrap()),
            vec![],
        ),
        route("prefix", PathMatch::Prefix("/api".into()), vec![]),
    ];
    let pick = |uri: &str| select_route(&vh, &parts(uri, &[])).map(|r| r.name.clone());
    assert_eq!(pick("/message?x=1").as_deref(), Some("exact"));
    assert_eq!(pick("/message/more"), None);
    assert_eq!(pick("/items/42?y").as_deref(), Some("regex"));
    // The regex must match the whole path, not a part of it.
    assert_eq!(pick("/items/42/x"), None);
    assert_eq!(pick("/api/v1").as_deref(), Some("prefix"));
    assert_eq!(pick("/API/v1"), None);
}

#[test]
fn case_insensitive_paths() {
    let mut r = route("p", PathMatch::Prefix("/Api".into()), vec![]);
    r.matcher.case_sensitive = false;
    assert!(route_matches(&r.matcher, &parts("/api/x", &[])));
    r.matcher.path = PathMatch::Exact("/Message".into());
    assert!(route_matches(&r.matcher, &parts("/MESSAGE", &[])));
    assert!(!route_matches(&r.matcher, &parts("/MESSAGES", &[])));
    r.matcher.path = PathMatch::PathSeparatedPrefix("/Api".into());
    assert!(route_matches(&r.matcher, &parts("/api/x", &[])));
    assert!(route_matches(&r.matcher, &parts("/API?q", &[])));
    assert!(!route_matches(&r.matcher, &parts("/apis", &[])));
    r.matcher.case_sensitive = true;
    assert!(!route_matches(&r.matcher, &parts("/api/x", &[])));
    assert!(route_matches(&r.matcher, &parts("/Api/x", &[])));
}

#[test]
fn header_kinds() {
    let request = parts(
        "http://reviews:9080/reviews/1",
        &[
            ("user-agent", "Mozilla/5.0 Firefox/120"),
            ("end-user", "jason"),
        ],
    );
    let holds = |kind, invert| header_matches(&header("user-agent", kind, invert), &request);
    assert!(holds(
        HeaderMatchKind::Regex(compile_whole_match(".*Firefox.*").unwrap()),
        false
    ));
    assert!(!holds(
        HeaderMatchKind::Regex(compile_whole_match("Firefox").unwrap()),
        false
    ));
    assert!(holds(HeaderMatchKind::Prefix("Mozilla".into()), false));
    assert!(holds(HeaderMatchKind::Suffix("/120".into()), false));
    assert!(holds(HeaderMatchKind::Contains("Firefox".into()), false));
    assert!(holds(
        HeaderMatchKind::Exact("Mozilla/5.0 Firefox/120".into()),
        false
    ));
    assert!(!holds(HeaderMatchKind::Exact("Mozilla".into()), false));
    assert!(holds(HeaderMatchKind::Exact("Mozilla".into()), true));
    assert!(holds(HeaderMatchKind::Present(true), false));
    assert!(!holds(HeaderMatchKind::Present(false), false));
    let pseudo = header(
        ":authority",
        HeaderMatchKind::Exact("reviews:9080".into()),
        false,
    );
    assert!(header_matches(&pseudo, &request));
    let method = header(":method", HeaderMatchKind::Exact("GET".into()), false);
    assert!(header_matches(&method, &request));
}

#[test]
fn absent_headers_follow_envoy() {
    let request = parts("/", &[]);
    let holds = |kind, invert| header_matches(&header("x-missing", kind, invert), &request);
    assert!(!holds(HeaderMatchKind::Exact("a".into()), false));
    // Inverting a value condition does not make an absent header match.
    assert!(!holds(HeaderMatchKind::Exact("a".into()), true));
    assert!(!holds(HeaderMatchKind::Present(true), false));
    assert!(holds(HeaderMatchKind::Present(true), true));
    assert!(holds(HeaderMatchKind::Present(false), false));
    assert!(!holds(HeaderMatchKind::Present(false), true));
}

#[test]
fn repeated_headers_are_joined() {
    let request = parts("/", &[("x-tag", "a"), ("x-tag", "b")]);
    let joined = header("x-tag", HeaderMatchKind::Exact("a,b".into()), false);
    assert!(header_matches(&joined, &request));
}

#[test]
fn all_header_conditions_must_hold_and_first_route_wins() {
    let mut vh = vhost("vh", &["*"]);
    vh.routes = vec![
        route(
            "v2",
            PathMatch::Prefix("/".into()),
            vec![
                header("end-user", HeaderMatchKind::Exact("jason".into()), false),
                header("x-debug", HeaderMatchKind::Present(true), false),
            ],
        ),
        route("v1", PathMatch::Prefix("/".into()), vec![]),
    ];
    let pick =
        |headers: &[(&str, &str)]| select_route(&vh, &parts("/", headers)).map(|r| r.name.clone());
    assert_eq!(
        pick(&[("end-user", "jason"), ("x-debug", "1")]).as_deref(),
        Some("v2")
    );
    assert_eq!(pick(&[("end-user", "jason")]).as_deref(), Some("v1"));
}

#[test]
fn query_parameters_and_missing_headers_as_empty() {
    use crate::model::QueryParameterMatcher;
    let mut r = route("q", PathMatch::Prefix("/".into()), vec![]);
    r.matcher.query_parameters = vec![
        QueryParameterMatcher {
            name: "debug".into(),
            kind: HeaderMatchKind::Present(true),
        },
        QueryParameterMatcher {
            name: "user".into(),
            kind: HeaderMatchKind::Regex(compile_whole_match("(?i:JASON)").unwrap()),
        },
    ];
    assert!(route_matches(
        &r.matcher,
        &parts("/x?debug&user=jason", &[])
    ));
    assert!(!route_matches(
        &r.matcher,
        &parts("/x?user=Jason%20&debug=1&user=bob", &[])
    ));
    assert!(route_matches(
        &r.matcher,
        &parts("/x?debug=1&user=Jason&user=bob", &[])
    ));
    assert!(!route_matches(&r.matcher, &parts("/x?user=jason", &[])));
    assert!(!route_matches(&r.matcher, &parts("/x", &[])));

    let mut empty = header("x-env", HeaderMatchKind::Exact(String::new()), false);
    assert!(!header_matches(&empty, &parts("/", &[])));
    empty.treat_missing_as_empty = true;
    assert!(header_matches(&empty, &parts("/", &[])));
    assert!(!header_matches(&empty, &parts("/", &[("x-env", "prod")])));
}

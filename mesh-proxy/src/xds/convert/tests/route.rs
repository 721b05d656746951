//! RDS conversion: matches (whole-string regex), header matchers, actions.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, route, route_action, route_match, weighted_cluster,
    DirectResponseAction, HeaderMatcher as XdsHeaderMatcher, RedirectAction, Route as XdsRoute,
    RouteConfiguration, WeightedCluster as XdsWeighted,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};

use super::*;
use crate::model::{ClusterTarget, HeaderMatchKind, PathMatch, RouteAction, RouteConfig};

fn convert(rc: &RouteConfiguration) -> Result<RouteConfig, String> {
    RouteConfig::try_from(rc).map_err(|e| e.to_string())
}

fn one_route(r: XdsRoute) -> Result<crate::model::Route, String> {
    convert(&route_config("rc", vec![r])).map(|rc| rc.virtual_hosts[0].routes[0].clone())
}

fn with_path(p: route_match::PathSpecifier) -> XdsRoute {
    let mut r = prefix_route("/", "c");
    r.r#match.as_mut().unwrap().path_specifier = Some(p);
    r
}

fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.into(),
        engine_type: None,
    }
}

fn path_matches(p: &PathMatch, path: &str) -> bool {
    match p {
        PathMatch::Prefix(x) => path.starts_with(x.as_str()),
        PathMatch::Exact(x) => path == x,
        PathMatch::Regex(re) => re.is_match(path),
        PathMatch::PathSeparatedPrefix(x) => path
            .strip_prefix(x.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
    }
}

#[test]
fn path_kinds() {
    let r = one_route(prefix_route("/api", "c")).unwrap();
    assert!(matches!(&r.matcher.path, PathMatch::Prefix(p) if p == "/api"));
    assert!(r.matcher.case_sensitive);
    let r = one_route(with_path(route_match::PathSpecifier::Path("/exact".into()))).unwrap();
    assert!(matches!(&r.matcher.path, PathMatch::Exact(p) if p == "/exact"));
}

#[test]
fn safe_regex_matches_the_whole_path() {
    let r = one_route(with_path(route_match::PathSpecifier::SafeRegex(regex(
        "/api/v[0-9]+",
    ))))
    .unwrap();
    assert!(path_matches(&r.matcher.path, "/api/v12"));
    assert!(
        !path_matches(&r.matcher.path, "/api/v1/more"),
        "RE2 safe_regex is anchored at the end"
    );
    assert!(
        !path_matches(&r.matcher.path, "/x/api/v1"),
        "and at the start"
    );
    // Alternation stays inside the anchors.
    let r = one_route(with_path(route_match::PathSpecifier::SafeRegex(regex(
        "/a|/b",
    ))))
    .unwrap();
    assert!(path_matches(&r.matcher.path, "/b"));
    assert!(!path_matches(&r.matcher.path, "/bx"));
    // Leftmost-first would find "a" in "ab"; anchored, the whole text matches.
    let re = crate::xds::convert::compile_whole_match("a|ab").unwrap();
    assert!(re.is_match("ab") && !re.is_match("abc"));
}

#[test]
fn path_separated_prefix() {
    let r = one_route(with_path(route_match::PathSpecifier::PathSeparatedPrefix(
        "/api.v1".into(),
    )))
    .unwrap();
    for (path, want) in [
        ("/api.v1", true),
        ("/api.v1/x", true),
        ("/api.v1x", false),
        ("/apixv1", false),
    ] {
        assert_eq!(path_matches(&r.matcher.path, path), want, "{path}");
    }
    assert!(matches!(&r.matcher.path, PathMatch::PathSeparatedPrefix(p) if p == "/api.v1"));
}

#[test]
fn invalid_regex_names_where_it_is() {
    let err = one_route(with_path(route_match::PathSpecifier::SafeRegex(regex(
        "/api/(unclosed",
    ))))
    .unwrap_err();
    assert!(
        err.starts_with("virtual_hosts[0] (\"vh\").routes[0].match.safe_regex: invalid regex \"/api/(unclosed\""),
        "{err}"
    );
}

#[test]
fn header_matchers() {
    let mut r = prefix_route("/", "c");
    let h = |name: &str, spec| XdsHeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(spec),
        ..Default::default()
    };
    let sm = |pattern, ignore_case| {
        HeaderMatchSpecifier::StringMatch(StringMatcher {
            ignore_case,
            match_pattern: Some(pattern),
        })
    };
    r.r#match.as_mut().unwrap().headers = vec![
        h(
            "User-Agent",
            sm(MatchPattern::SafeRegex(regex(".*Firefox.*")), false),
        ),
        h("end-user", sm(MatchPattern::Exact("jason".into()), false)),
        h("x-prefix", sm(MatchPattern::Prefix("ab".into()), true)),
        h("x-present", HeaderMatchSpecifier::PresentMatch(true)),
        XdsHeaderMatcher {
            name: "x-any".into(),
            invert_match: true,
            ..Default::default()
        },
    ];
    let got = one_route(r).unwrap().matcher.headers;
    assert_eq!(got[0].name, "user-agent", "names are lower-cased");
    let HeaderMatchKind::Regex(ua) = &got[0].kind else {
        panic!("{:?}", got[0])
    };
    assert!(ua.is_match("Mozilla/5.0 Firefox/120.0"));
    assert!(!ua.is_match("Chrome"));
    assert!(matches!(&got[1].kind, HeaderMatchKind::Exact(v) if v == "jason"));
    let HeaderMatchKind::Regex(ci) = &got[2].kind else {
        panic!("ignore_case becomes a regex")
    };
    assert!(ci.is_match("ABc") && !ci.is_match("xab"));
    assert!(matches!(got[3].kind, HeaderMatchKind::Present(true)));
    assert!(matches!(got[4].kind, HeaderMatchKind::Present(true)) && got[4].invert);

    let mut r = prefix_route("/", "c");
    r.r#match.as_mut().unwrap().headers =
        vec![h("ua", sm(MatchPattern::SafeRegex(regex("*bad")), false))];
    let err = one_route(r).unwrap_err();
    assert!(
        err.contains("match.headers[0].string_match.safe_regex: invalid regex \"*bad\""),
        "{err}"
    );
}

#[test]
fn weighted_clusters_and_timeouts() {
    let arm = |name: &str, w| weighted_cluster::ClusterWeight {
        name: name.into(),
        weight: Some(UInt32Value { value: w }),
        ..Default::default()
    };
    let mut r = prefix_route("/", "c");
    let Some(route::Action::Route(ra)) = r.action.as_mut() else {
        unreachable!()
    };
    ra.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
        XdsWeighted {
            clusters: vec![arm("v1", 80), arm("v2", 20)],
            ..Default::default()
        },
    ));
    ra.timeout = Some(PbDuration {
        seconds: 0,
        nanos: 0,
    });
    ra.prefix_rewrite = "/new".into();
    let got = one_route(r.clone()).unwrap();
    let RouteAction::Forward(f) = &got.action else {
        panic!()
    };
    let ClusterTarget::Weighted(arms) = &f.target else {
        panic!()
    };
    assert_eq!(
        (arms[0].name.as_str(), arms[0].weight, arms[1].weight),
        ("v1", 80, 20)
    );
    assert_eq!(f.timeout, None, "0s disables the timeout");
    assert_eq!(f.prefix_rewrite.as_deref(), Some("/new"));

    let Some(route::Action::Route(ra)) = r.action.as_mut() else {
        unreachable!()
    };
    ra.timeout = Some(PbDuration {
        seconds: 3,
        nanos: 500_000_000,
    });
    let RouteAction::Forward(f) = one_route(r.clone()).unwrap().action else {
        panic!()
    };
    assert_eq!(f.timeout, Some(Duration::from_millis(3500)));

    let Some(route::Action::Route(ra)) = r.action.as_mut() else {
        unreachable!()
    };
    ra.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
        XdsWeighted {
            clusters: vec![arm("v1", 0)],
            ..Default::default()
        },
    ));
    assert!(one_route(r).unwrap_err().contains("total weight is 0"));
}

#[test]
fn direct_response_and_unsupported_actions() {
    let mut r = prefix_route("/", "c");
    r.action = Some(route::Action::DirectResponse(DirectResponseAction {
        status: 503,
        body: Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString("down".into())),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let got = one_route(r.clone()).unwrap();
    assert!(
        matches!(got.action, RouteAction::DirectResponse { status: 503, body: Some(ref b) } if b == "down")
    );

    r.action = Some(route::Action::Redirect(RedirectAction {
        response_code: 99,
        ..Default::default()
    }));
    assert!(one_route(r.clone())
        .unwrap_err()
        .contains("redirect: invalid response_code: 99"));
    r.action = None;
    assert!(one_route(r.clone()).unwrap_err().contains("missing action"));
    let mut r = prefix_route("/", "c");
    r.r#match.as_mut().unwrap().path_specifier = None;
    assert!(one_route(r).unwrap_err().contains("missing path specifier"));
}

#[test]
fn virtual_host_needs_domains() {
    let mut rc = route_config("rc", vec![prefix_route("/", "c")]);
    rc.virtual_hosts[0].domains.clear();
    assert!(convert(&rc).unwrap_err().contains("missing domains"));
}

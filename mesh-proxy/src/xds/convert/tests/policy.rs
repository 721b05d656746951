//! RDS conversion of route policies: header mutations, retries, mirrors,
//! hashing, redirects, query matches, per-filter configs, metadata, and
//! the NACK of what the proxy does not do.

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption, Metadata,
    RuntimeFractionalPercent,
};
use envoy_types::pb::envoy::config::route::v3::{
    query_parameter_matcher::QueryParameterMatchSpecifier, redirect_action, retry_policy, route,
    route_action, HedgePolicy, QueryParameterMatcher, RedirectAction, RetryPolicy,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatchAndSubstitute, RegexMatcher, StringMatcher,
};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, UInt32Value, Value};
use envoy_types::util::pack_any;

use super::*;
use crate::model::{AbortStatus, AppendAction, RedirectPath, RouteAction as Action};

fn convert(rc: &RouteConfiguration) -> Result<crate::model::RouteConfig, String> {
    crate::model::RouteConfig::try_from(rc).map_err(|e| e.to_string())
}

fn one(r: Route) -> Result<crate::model::Route, String> {
    convert(&route_config("rc", vec![r])).map(|rc| rc.virtual_hosts[0].routes[0].clone())
}

fn with_action(f: impl FnOnce(&mut RouteAction)) -> Route {
    let mut r = prefix_route("/", "c");
    let Some(route::Action::Route(ra)) = r.action.as_mut() else {
        unreachable!()
    };
    f(ra);
    r
}

fn forward(r: &crate::model::Route) -> &crate::model::Forward {
    match &r.action {
        Action::Forward(f) => f,
        other => panic!("{other:?}"),
    }
}

fn add(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

#[test]
fn header_mutations_at_every_level_with_formatters() {
    let mut rc = route_config("rc", vec![prefix_route("/", "c")]);
    rc.request_headers_to_add = vec![add(
        "X-Peer",
        "%DOWNSTREAM_REMOTE_ADDRESS%",
        HeaderAppendAction::OverwriteIfExistsOrAdd,
    )];
    rc.virtual_hosts[0].response_headers_to_remove = vec!["Server".into()];
    rc.virtual_hosts[0].routes[0].request_headers_to_add =
        vec![add("x-route", "1", HeaderAppendAction::AddIfAbsent)];
    let got = convert(&rc).unwrap();
    assert_eq!(got.headers.request_add[0].name, "x-peer");
    assert_eq!(
        got.headers.request_add[0].action,
        AppendAction::OverwriteIfExistsOrAdd
    );
    assert_eq!(got.virtual_hosts[0].headers.response_remove, ["server"]);
    assert_eq!(
        got.virtual_hosts[0].routes[0].headers.request_add[0].action,
        AppendAction::AddIfAbsent
    );

    let mut rc = route_config("rc", vec![prefix_route("/", "c")]);
    rc.response_headers_to_add = vec![add(
        "x-meta",
        "%DYNAMIC_METADATA(a:b)%",
        HeaderAppendAction::AppendIfExistsOrAdd,
    )];
    let err = convert(&rc).unwrap_err();
    assert!(
        err.contains("response_headers_to_add[0].header.value: unsupported format operator %DYNAMIC_METADATA%"),
        "{err}"
    );
    let mut rc = route_config("rc", vec![prefix_route("/", "c")]);
    rc.request_headers_to_remove = vec![":path".into()];
    assert!(convert(&rc).unwrap_err().contains("cannot be removed"));
}

#[test]
fn retry_policy_as_istio_sends_it() {
    let r = with_action(|ra| {
        ra.retry_policy = Some(RetryPolicy {
            retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
                .into(),
            num_retries: Some(UInt32Value { value: 2 }),
            retry_host_predicate: vec![retry_policy::RetryHostPredicate {
                name: "envoy.retry_host_predicates.previous_hosts".into(),
                ..Default::default()
            }],
            host_selection_retry_max_attempts: 5,
            retriable_status_codes: vec![503],
            ..Default::default()
        })
    });
    let got = one(r).unwrap();
    let p = forward(&got).retry_policy.clone().unwrap();
    assert!(p.on.connect_failure && p.on.refused_stream && p.on.grpc_unavailable);
    assert!(p.on.grpc_cancelled && p.on.retriable_status_codes && !p.on.server_error);
    assert_eq!((p.num_retries, p.host_selection_max_attempts), (2, 5));
    assert!(p.previous_hosts);
    assert_eq!(p.retriable_status_codes, [503]);
    assert_eq!(p.backoff_base.as_millis(), 25);
    assert_eq!(p.backoff_max.as_millis(), 250);
    let default = one(with_action(|ra| {
        ra.retry_policy = Some(RetryPolicy::default())
    }))
    .unwrap();
    assert_eq!(
        forward(&default).retry_policy.as_ref().unwrap().num_retries,
        1
    );

    for (what, policy) in [
        (
            "retry_priority",
            RetryPolicy {
                retry_priority: Some(Default::default()),
                ..Default::default()
            },
        ),
        (
            "rate_limited_retry_back_off",
            RetryPolicy {
                rate_limited_retry_back_off: Some(Default::default()),
                ..Default::default()
            },
        ),
        (
            "retry_on \"sometimes\"",
            RetryPolicy {
                retry_on: "5xx,sometimes".into(),
                ..Default::default()
            },
        ),
    ] {
        let err = one(with_action(|ra| ra.retry_policy = Some(policy))).unwrap_err();
        assert!(
            err.contains(&format!("retry_policy: unsupported {what}")),
            "{err}"
        );
    }
    let err = one(with_action(|ra| {
        ra.hedge_policy = Some(HedgePolicy::default())
    }))
    .unwrap_err();
    assert!(err.contains("unsupported hedge_policy"), "{err}");
}

#[test]
fn rewrites_mirrors_hashes_and_timeouts() {
    let r = with_action(|ra| {
        ra.regex_rewrite = Some(RegexMatchAndSubstitute {
            pattern: Some(RegexMatcher {
                regex: "^/service/([^/]+)(/.*)$".into(),
                engine_type: None,
            }),
            substitution: "\\2/instance/\\1".into(),
        });
        ra.request_mirror_policies = vec![route_action::RequestMirrorPolicy {
            cluster: "shadow".into(),
            runtime_fraction: Some(RuntimeFractionalPercent {
                default_value: Some(FractionalPercent {
                    numerator: 25,
                    denominator: DenominatorType::TenThousand as i32,
                }),
                runtime_key: String::new(),
            }),
            ..Default::default()
        }];
        ra.hash_policy = vec![route_action::HashPolicy {
            policy_specifier: Some(route_action::hash_policy::PolicySpecifier::Header(
                route_action::hash_policy::Header {
                    header_name: "X-User".into(),
                    regex_rewrite: None,
                },
            )),
            terminal: true,
        }];
        ra.cluster_not_found_response_code =
            route_action::ClusterNotFoundResponseCode::NotFound as i32;
        ra.append_x_forwarded_host = true;
    });
    let got = one(r).unwrap();
    let f = forward(&got);
    let re = f.regex_rewrite.as_ref().unwrap();
    assert_eq!(
        re.regex
            .replace_all("/service/foo/v1", re.substitution.as_str()),
        "/v1/instance/foo"
    );
    assert_eq!(f.mirrors[0].cluster, "shadow");
    assert_eq!(
        (
            f.mirrors[0].fraction.numerator,
            f.mirrors[0].fraction.denominator
        ),
        (25, 10_000)
    );
    assert!(f.hash_policy[0].terminal);
    assert_eq!(f.cluster_not_found_status, 404);
    assert!(f.append_x_forwarded_host);
    assert_eq!(
        f.timeout.unwrap().as_secs(),
        15,
        "Envoy's default route timeout"
    );
    let bad = with_action(|ra| {
        ra.regex_rewrite = Some(RegexMatchAndSubstitute {
            pattern: Some(RegexMatcher {
                regex: "^/a$".into(),
                engine_type: None,
            }),
            substitution: "\\3".into(),
        })
    });
    assert!(one(bad).unwrap_err().contains("names no group"));
}

#[test]
fn redirects() {
    let mut r = prefix_route("/old", "c");
    r.action = Some(route::Action::Redirect(RedirectAction {
        host_redirect: "new.example".into(),
        port_redirect: 8443,
        response_code: redirect_action::RedirectResponseCode::PermanentRedirect as i32,
        strip_query: true,
        scheme_rewrite_specifier: Some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(
            true,
        )),
        path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PrefixRewrite(
            "/new".into(),
        )),
    }));
    let got = one(r).unwrap();
    let Action::Redirect(rd) = &got.action else {
        panic!("{:?}", got.action)
    };
    assert_eq!(rd.scheme.as_deref(), Some("https"));
    assert_eq!(
        (rd.host.as_deref(), rd.port, rd.status, rd.strip_query),
        (Some("new.example"), Some(8443), 308, true)
    );
    assert!(matches!(&rd.path, Some(RedirectPath::Prefix(p)) if p == "/new"));
}

#[test]
fn query_matches_and_partial_runtime_fractions() {
    let mut r = prefix_route("/", "c");
    let m = r.r#match.as_mut().unwrap();
    m.query_parameters = vec![
        QueryParameterMatcher {
            name: "user".into(),
            query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::StringMatch(
                StringMatcher {
                    ignore_case: true,
                    match_pattern: Some(MatchPattern::Exact("Jason".into())),
                },
            )),
        },
        QueryParameterMatcher {
            name: "debug".into(),
            query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::PresentMatch(true)),
        },
    ];
    let got = one(r.clone()).unwrap();
    assert_eq!(got.matcher.query_parameters.len(), 2);
    r.r#match.as_mut().unwrap().runtime_fraction = Some(RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 50,
            denominator: DenominatorType::Hundred as i32,
        }),
        runtime_key: String::new(),
    });
    assert!(one(r)
        .unwrap_err()
        .contains("unsupported runtime_fraction below 100%"));
}

#[test]
fn per_filter_configs_and_metadata() {
    let mut r = prefix_route("/", "c");
    r.typed_per_filter_config.insert(
        "envoy.filters.http.fault".into(),
        pack_any(HttpFault {
            abort: Some(FaultAbort {
                percentage: Some(FractionalPercent {
                    numerator: 50,
                    denominator: DenominatorType::Hundred as i32,
                }),
                error_type: Some(fault_abort::ErrorType::HttpStatus(503)),
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.into())),
    };
    let mut metadata = Metadata::default();
    metadata.filter_metadata.insert(
        "istio".into(),
        Struct {
            fields: [(
                "config".to_owned(),
                string("/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"),
            )]
            .into(),
        },
    );
    metadata.filter_metadata.insert(
        "mesh".into(),
        Struct {
            fields: [(
                "reason".to_owned(),
                string("outboundTrafficPolicy REGISTRY_ONLY"),
            )]
            .into(),
        },
    );
    r.metadata = Some(metadata);
    let got = one(r.clone()).unwrap();
    let fault = got.filter_overrides.fault.unwrap();
    let abort = fault.abort.as_ref().unwrap();
    assert!(matches!(abort.status, AbortStatus::Http(503)));
    assert_eq!(abort.percentage.numerator, 50);
    assert_eq!(got.rule.as_deref(), Some("VirtualService default/reviews"));
    assert_eq!(
        got.mesh_reason.as_deref(),
        Some("outboundTrafficPolicy REGISTRY_ONLY")
    );

    r.typed_per_filter_config.insert(
        "envoy.filters.http.rbac".into(),
        pack_any(HttpFault::default())
            .tap_type("type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"),
    );
    assert!(one(r)
        .unwrap_err()
        .contains("unsupported per-route config of envoy.filters.http.rbac"));
}

trait TapType {
    fn tap_type(self, url: &str) -> Self;
}

impl TapType for envoy_types::pb::google::protobuf::Any {
    fn tap_type(mut self, url: &str) -> Self {
        self.type_url = url.into();
        self
    }
}

//! VirtualService rules taken from Istio's validation: shape of the
//! object, HTTP route policies, matches and header operations.

use super::{check, one, paths, vs};
use crate::error::ErrorKind;

/// The errors of one HTTP route with `route` (flow YAML mapping entries)
/// added beside its destination.
fn route(extra: &str) -> Vec<(ErrorKind, String)> {
    paths(&vs(&format!(
        "  hosts: [reviews]\n  http:\n  - route: [{{destination: {{host: reviews}}}}]\n    {extra}\n"
    )))
}

fn invalid(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::InvalidValue, path)
}

#[test]
fn a_virtual_service_needs_routes() {
    assert_eq!(
        paths(&vs("  hosts: [reviews]\n")),
        one(ErrorKind::MissingField, "spec.http")
    );
}

#[test]
fn hosts_may_not_overlap() {
    assert_eq!(
        paths(&vs("  hosts: [a.example.com, '*.example.com']\n  http: [{route: [{destination: {host: a}}]}]\n")),
        invalid("spec.hosts[1]")
    );
    // Compared case-sensitively, as Istio does.
    assert_eq!(
        paths(&vs("  hosts: [A.example.com, a.example.com]\n  http: [{route: [{destination: {host: a}}]}]\n")),
        vec![]
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [198.18.0.1]\n  http: [{route: [{destination: {host: a}}]}]\n"
        )),
        vec![],
        "an IP is a valid host"
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a_b.example.com]\n  http: [{route: [{destination: {host: a}}]}]\n"
        )),
        invalid("spec.hosts[0]")
    );
}

#[test]
fn delegates_hold_http_routes_only() {
    let root = vs("  hosts: [reviews]\n  http: [{delegate: {name: part}}]\n");
    let part = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: part}\nspec:\n  gateways: [gw]\n  http: [{delegate: {name: other}}]\n";
    let mut found = paths(&format!("{root}---\n{part}"));
    found.sort();
    assert_eq!(
        found,
        [
            (ErrorKind::InvalidValue, "spec.gateways".to_string()),
            (ErrorKind::InvalidValue, "spec.http[0].delegate".to_string()),
        ]
    );
}

#[test]
fn mirror_or_mirrors() {
    assert_eq!(
        route("mirror: {host: shadow}\n    mirrors: [{destination: {host: shadow2}}]"),
        invalid("spec.http[0].mirrors")
    );
    assert_eq!(
        route("mirrors: [{destination: {host: shadow}, percentage: {value: 120}}]"),
        invalid("spec.http[0].mirrors[0].percentage.value")
    );
}

#[test]
fn retries_as_istio_checks_them() {
    assert_eq!(
        route("retries: {attempts: 3, retryOn: '5xx,503,connect-failure,unavailable'}"),
        vec![]
    );
    assert_eq!(
        route("retries: {attempts: 3, retryOn: '5xx,sometimes'}"),
        invalid("spec.http[0].retries.retryOn")
    );
    assert_eq!(
        route("retries: {attempts: 3, retryOn: '5xx, reset'}"),
        invalid("spec.http[0].retries.retryOn"),
        "no spaces, as in Istio"
    );
    assert_eq!(
        route("retries: {attempts: 3, retryOn: '599'}"),
        invalid("spec.http[0].retries.retryOn"),
        "599 is no HTTP status"
    );
    assert_eq!(
        route("retries: {retryOn: 5xx}"),
        invalid("spec.http[0].retries.attempts")
    );
    assert_eq!(
        route("retries: {attempts: 2, perTryTimeout: 500us}"),
        invalid("spec.http[0].retries.perTryTimeout")
    );
    assert_eq!(
        route("retries: {attempts: 2, backoff: 1500us}"),
        invalid("spec.http[0].retries.backoff")
    );
}

#[test]
fn timeouts_are_whole_milliseconds_of_at_least_one() {
    assert_eq!(route("timeout: 0s"), invalid("spec.http[0].timeout"));
    assert_eq!(route("timeout: 1.5ms"), invalid("spec.http[0].timeout"));
    assert_eq!(route("timeout: 1ms"), vec![]);
}

#[test]
fn fault_percentages_and_exclusivity() {
    assert_eq!(
        route("fault: {delay: {fixedDelay: 1s, percentage: {value: 0.00001}}}"),
        invalid("spec.http[0].fault.delay.percentage.value")
    );
    assert_eq!(
        route("fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}"),
        invalid("spec.http[0].fault.abort")
    );
    assert_eq!(
        route("fault: {abort: {grpcStatus: NOPE, percentage: {value: 1}}}"),
        invalid("spec.http[0].fault.abort.grpcStatus")
    );
    assert_eq!(
        route("fault: {delay: {percentage: {value: 1}}}"),
        one(
            ErrorKind::MissingField,
            "spec.http[0].fault.delay.fixedDelay"
        )
    );
    assert_eq!(
        route("fault: {delay: {fixedDelay: 1s, percentage: {value: 50.5}}, abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0}}}"),
        vec![]
    );
}

#[test]
fn redirects_as_istio_checks_them() {
    let redirect = |body: &str| {
        paths(&vs(&format!(
            "  hosts: [a]\n  http:\n  - match: [{{uri: {{exact: /old}}}}]\n    redirect: {body}\n"
        )))
    };
    assert_eq!(redirect("{uri: /new, redirectCode: 308}"), vec![]);
    assert_eq!(
        redirect("{uri: /new, redirectCode: 305}"),
        invalid("spec.http[0].redirect.redirectCode"),
        "a 3xx Envoy cannot send (Istio drops the route)"
    );
    assert_eq!(
        redirect("{scheme: ftp}"),
        invalid("spec.http[0].redirect.scheme")
    );
    assert_eq!(
        redirect("{port: 8443, derivePort: FROM_REQUEST_PORT}"),
        invalid("spec.http[0].redirect")
    );
    assert_eq!(
        redirect("{uri: /new, prefixRewrite: /v2}"),
        invalid("spec.http[0].redirect")
    );
    assert_eq!(
        redirect("{prefixRewrite: /v2}"),
        invalid("spec.http[0].redirect.prefixRewrite"),
        "an exact URI match cannot have its prefix rewritten"
    );
    assert_eq!(
        redirect("{redirectCode: 302}"),
        invalid("spec.http[0].redirect")
    );
}

#[test]
fn rewrites_as_istio_checks_them() {
    assert_eq!(
        route("rewrite: {uri: /v2, uriRegexRewrite: {match: '^/a', rewrite: /b}}"),
        invalid("spec.http[0].rewrite")
    );
    assert_eq!(
        route("rewrite: {uriRegexRewrite: {match: '^/a(.*)'}}"),
        one(
            ErrorKind::MissingField,
            "spec.http[0].rewrite.uriRegexRewrite.rewrite"
        )
    );
    assert_eq!(
        route("rewrite: {uriRegexRewrite: {match: '^/a(.*)', rewrite: '/b\\1'}}"),
        vec![]
    );
}

#[test]
fn cors_as_istio_checks_it() {
    assert_eq!(
        route("corsPolicy: {allowOrigins: [{exact: 'https://a.example.com'}, {regex: '.*\\.example\\.com'}], allowMethods: [GET, POST], allowHeaders: ['*', x-api-key], maxAge: 24h}"),
        vec![]
    );
    assert_eq!(
        route("corsPolicy: {allowMethods: [get]}"),
        invalid("spec.http[0].corsPolicy.allowMethods[0]")
    );
    assert_eq!(
        route("corsPolicy: {maxAge: 1500ms}"),
        invalid("spec.http[0].corsPolicy.maxAge")
    );
    assert_eq!(
        route("corsPolicy: {allowOrigins: [{exact: ''}]}"),
        invalid("spec.http[0].corsPolicy.allowOrigins[0].exact")
    );
    assert_eq!(
        route("corsPolicy: {exposeHeaders: ['x y']}"),
        invalid("spec.http[0].corsPolicy.exposeHeaders[0]")
    );
}

#[test]
fn header_operations_keep_off_pseudo_headers() {
    assert_eq!(
        route("headers: {request: {set: {':authority': api.example.com, x-a: b}}}"),
        vec![],
        "request set may rewrite the authority"
    );
    assert_eq!(
        route("headers: {request: {set: {':path': /x}}}"),
        invalid("spec.http[0].headers.request.set.:path")
    );
    assert_eq!(
        route("headers: {response: {set: {host: a}}}"),
        invalid("spec.http[0].headers.response.set.host")
    );
    assert_eq!(
        route("headers: {request: {remove: [':authority']}}"),
        invalid("spec.http[0].headers.request.remove[0]")
    );
    assert_eq!(
        route("rewrite: {authority: a.example.com}\n    headers: {request: {set: {host: b.example.com}}}"),
        invalid("spec.http[0].headers.request.set.host"),
        "the authority is set in one place"
    );
}

#[test]
fn header_values_are_envoy_format_strings() {
    assert_eq!(
        route("headers: {request: {add: {x-host: '%HOSTNAME%', x-share: '100%%', x-time: '%START_TIME(%s)%'}}}"),
        vec![]
    );
    assert_eq!(
        route("headers: {request: {add: {x-share: '100%'}}}"),
        invalid("spec.http[0].headers.request.add.x-share")
    );
}

#[test]
fn header_matches() {
    let m = |m: &str| {
        paths(&vs(&format!(
            "  hosts: [a]\n  http:\n  - match: [{m}]\n    route: [{{destination: {{host: a}}}}]\n"
        )))
    };
    assert_eq!(m("{headers: {':method': {exact: GET}}}"), vec![]);
    assert_eq!(
        m("{uri: {prefix: ''}}"),
        vec![],
        "an empty path prefix matches all"
    );
    assert_eq!(
        m("{headers: {x-a: {prefix: ''}}}"),
        invalid("spec.http[0].match[0].headers.x-a.prefix")
    );
    assert_eq!(
        m("{headers: {'x a': {exact: b}}}"),
        invalid("spec.http[0].match[0].headers.x a")
    );
    assert_eq!(
        m("{withoutHeaders: {x-a: {regex: '*'}}}"),
        vec![],
        "`*` means present"
    );
    assert_eq!(
        m("{sourceLabels: {'app/': a}}"),
        invalid("spec.http[0].match[0].sourceLabels.app/")
    );
    assert_eq!(
        m("{queryParams: {debug: {}}}"),
        vec![],
        "{{}} means present"
    );
}

#[test]
fn sni_hosts_lie_within_the_hosts() {
    let tls = |sni: &str| {
        paths(&vs(&format!(
            "  hosts: ['*.example.com']\n  tls:\n  - match: [{{sniHosts: [{sni}]}}]\n    route: [{{destination: {{host: login.example.com}}}}]\n"
        )))
    };
    assert_eq!(tls("login.example.com"), vec![]);
    assert_eq!(
        tls("login.example.org"),
        invalid("spec.tls[0].match[0].sniHosts[0]")
    );
}

#[test]
fn destinations() {
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{route: [{destination: {host: '*'}}]}]\n"
        )),
        invalid("spec.http[0].route[0].destination.host")
    );
    assert_eq!(
        paths(&vs("  hosts: [a]\n  tcp: [{route: [{destination: {host: a, subset: V1}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a, subsets: [{name: V1}]}\n")),
        vec![],
        "Istio's subset names may use upper case"
    );
}

#[test]
fn direct_response_bodies() {
    let body = "x".repeat(1024 * 1024 + 1);
    let errors = check(&vs(&format!(
        "  hosts: [a]\n  http: [{{directResponse: {{status: 200, body: {{string: '{body}'}}}}}}]\n"
    )));
    assert_eq!(errors.len(), 1, "{}", errors.len());
    assert_eq!(errors[0].path, "spec.http[0].directResponse.body");
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{directResponse: {status: 200, body: {bytes: 'not base64!'}}}]\n")),
        invalid("spec.http[0].directResponse.body.bytes")
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{directResponse: {status: 200, body: {bytes: aGVsbG8=}}}]\n"
        )),
        vec![]
    );
}

#[test]
fn gateway_references() {
    assert_eq!(
        paths(&vs("  hosts: [a]\n  gateways: [istio-system/gw, mesh, gw]\n  http: [{route: [{destination: {host: a}}]}]\n")),
        vec![]
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  gateways: [./gw]\n  http: [{route: [{destination: {host: a}}]}]\n"
        )),
        invalid("spec.gateways[0]")
    );
}

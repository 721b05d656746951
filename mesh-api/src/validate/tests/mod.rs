//! Unit tests of validation: one case per rule, asserting kind and path;
//! by kind in the submodules.

mod destination_rule;
mod gateway;
mod service_entry;
mod sidecar;
mod unsupported;
mod virtual_service;
mod warnings;

use std::path::Path;

use crate::error::{ConfigError, ErrorKind};
use crate::load::{load_str, LoadedFile};
use crate::validate::{validate, validate_files};

/// Loads `yaml` (which must parse) and validates it.
pub(super) fn check(yaml: &str) -> Vec<ConfigError> {
    let (objects, load_errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(load_errors.is_empty(), "{load_errors:?}");
    validate(&objects)
}

/// The (kind, path) pairs of the errors of `yaml`.
pub(super) fn paths(yaml: &str) -> Vec<(ErrorKind, String)> {
    check(yaml).into_iter().map(|e| (e.kind, e.path)).collect()
}

/// The (kind, path) pairs of the warnings of `yaml`, which must load.
pub(super) fn warning_paths(yaml: &str) -> Vec<(ErrorKind, String)> {
    let (objects, load_errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(load_errors.is_empty(), "{load_errors:?}");
    crate::validate::warnings(&objects)
        .into_iter()
        .map(|e| (e.kind, e.path))
        .collect()
}

pub(super) fn one(kind: ErrorKind, path: &str) -> Vec<(ErrorKind, String)> {
    vec![(kind, path.to_string())]
}

/// An object of `kind` named `t` (namespace `default`) with `spec`, a
/// YAML mapping body indented by two spaces.
pub(super) fn object(kind: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
}

/// `spec` (unindented YAML) indented under `spec:`.
pub(super) fn indent(spec: &str) -> String {
    spec.lines().map(|l| format!("  {l}\n")).collect()
}

const HEAD_VS: &str =
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n";
const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";

pub(super) fn vs(body: &str) -> String {
    format!("{HEAD_VS}{body}")
}

#[test]
fn valid_virtual_service_has_no_errors() {
    let yaml = vs("  hosts: [reviews]\n  http:\n  - match: [{uri: {exact: /a}}, {uri: {prefix: /b}}]\n    route:\n    - {destination: {host: reviews, subset: v1}, weight: 80}\n    - {destination: {host: reviews, subset: v2}, weight: 20}\n  - route: [{destination: {host: reviews}}]\n");
    assert_eq!(check(&format!("{yaml}---\n{DR}")), vec![]);
}

#[test]
fn virtual_service_without_hosts() {
    assert_eq!(
        paths(&vs("  http: [{route: [{destination: {host: a}}]}]\n")),
        one(ErrorKind::MissingField, "spec.hosts")
    );
}

#[test]
fn delegate_virtual_service_may_leave_hosts_out() {
    let root = vs("  hosts: [reviews]\n  http: [{delegate: {name: part}}]\n");
    let part = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: part}\nspec:\n  http: [{route: [{destination: {host: reviews}}]}]\n";
    assert_eq!(check(&format!("{root}---\n{part}")), vec![]);
}

#[test]
fn route_destination_without_host() {
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{route: [{destination: {port: {number: 80}}}]}]\n"
        )),
        one(
            ErrorKind::MissingField,
            "spec.http[0].route[0].destination.host"
        )
    );
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{route: [{weight: 100}]}]\n")),
        one(ErrorKind::MissingField, "spec.http[0].route[0].destination")
    );
}

#[test]
fn http_route_without_action() {
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{match: [{uri: {prefix: /}}]}]\n"
        )),
        one(ErrorKind::MissingField, "spec.http[0].route")
    );
}

#[test]
fn invalid_regexes_are_reported_per_field() {
    let cases = [
        ("uri: {regex: \"/a(\"}", "spec.http[0].match[0].uri.regex"),
        (
            "headers: {user-agent: {regex: \"[\"}}",
            "spec.http[0].match[0].headers.user-agent.regex",
        ),
        (
            "authority: {regex: \"*.com\"}",
            "spec.http[0].match[0].authority.regex",
        ),
        (
            "queryParams: {q: {regex: \"(?P<\"}}",
            "spec.http[0].match[0].queryParams.q.regex",
        ),
    ];
    for (m, path) in cases {
        let yaml = vs(&format!(
            "  hosts: [a]\n  http: [{{match: [{{{m}}}], route: [{{destination: {{host: a}}}}]}}]\n"
        ));
        let errors = check(&yaml);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].kind, errors[0].path.as_str()),
            (ErrorKind::InvalidValue, path)
        );
        assert!(
            errors[0].message.contains("invalid regular expression"),
            "{}",
            errors[0]
        );
    }
}

/// Envoy NACKs a route configuration with a regex whose RE2 program is
/// over 100 instructions; every regex field says so with the size.
#[test]
fn regexes_over_envoys_program_size_are_rejected_in_every_field() {
    let big = "/big(a|b|c|d|e|f|g){1,200}x";
    let route = |extra: &str| {
        vs(&format!(
            "  hosts: [a]\n  http:\n  - {extra}\n    route: [{{destination: {{host: a}}}}]\n"
        ))
    };
    let cases = [
        (
            format!("match: [{{uri: {{regex: '{big}'}}}}]"),
            "spec.http[0].match[0].uri.regex",
        ),
        (
            format!("match: [{{headers: {{user-agent: {{regex: '{big}'}}}}}}]"),
            "spec.http[0].match[0].headers.user-agent.regex",
        ),
        (
            format!("match: [{{queryParams: {{q: {{regex: '{big}'}}}}}}]"),
            "spec.http[0].match[0].queryParams.q.regex",
        ),
        (
            format!("match: [{{authority: {{regex: '{big}'}}}}]"),
            "spec.http[0].match[0].authority.regex",
        ),
        (
            format!("rewrite: {{uriRegexRewrite: {{match: '{big}', rewrite: /x}}}}"),
            "spec.http[0].rewrite.uriRegexRewrite.match",
        ),
        (
            format!("corsPolicy: {{allowOrigins: [{{regex: '{big}'}}]}}"),
            "spec.http[0].corsPolicy.allowOrigins[0].regex",
        ),
    ];
    for (extra, path) in cases {
        let errors = check(&route(&extra));
        assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
        assert_eq!(
            (errors[0].kind, errors[0].path.as_str()),
            (ErrorKind::InvalidValue, path)
        );
        assert_eq!(
            errors[0].message,
            format!("regex {big:?} compiles to an RE2 program of 808 instructions, more than Envoy's limit of 100 (re2.max_program_size.error_level)")
        );
    }
    // At the limit is fine; what RE2 reads differently from the regex
    // crate is not.
    assert!(check(&route("match: [{uri: {regex: '\\w{32}'}}]")).is_empty());
    let errors = check(&route("match: [{uri: {regex: 'a**'}}]"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("bad repetition operator")
            && errors[0].message.contains("RE2 syntax, as Envoy reads it"),
        "{}",
        errors[0]
    );
}

#[test]
fn string_match_needs_exactly_one_kind() {
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{match: [{uri: {exact: /a, prefix: /b}}], route: [{destination: {host: a}}]}]\n")),
        one(ErrorKind::InvalidValue, "spec.http[0].match[0].uri")
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{match: [{uri: {}}], route: [{destination: {host: a}}]}]\n"
        )),
        one(ErrorKind::InvalidValue, "spec.http[0].match[0].uri")
    );
    // For headers an empty matcher means "present".
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{match: [{headers: {x-debug: {}}}], route: [{destination: {host: a}}]}]\n")),
        vec![]
    );
}

#[test]
fn weights_are_relative_but_not_all_zero() {
    // Istio reads weights as shares of their sum: 70/20 is valid.
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: a}, weight: 70}\n    - {destination: {host: b}, weight: 20}\n")),
        vec![]
    );
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: a}, weight: 0}\n    - {destination: {host: b}}\n")),
        one(ErrorKind::InvalidValue, "spec.http[0].route")
    );
    assert_eq!(
        paths(&vs("  hosts: [a]\n  tcp:\n  - route:\n    - {destination: {host: a}}\n    - {destination: {host: b}}\n")),
        one(ErrorKind::InvalidValue, "spec.tcp[0].route")
    );
    // One destination needs no weight, and gets everything whatever it is.
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  tcp: [{route: [{destination: {host: a}, weight: 0}]}]\n"
        )),
        vec![]
    );
}

#[test]
fn subset_must_be_defined_by_a_destination_rule() {
    let yaml = vs("  hosts: [reviews]\n  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 50}\n    - {destination: {host: reviews, subset: v3}, weight: 50}\n");
    let errors = check(&format!("{yaml}---\n{DR}"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, ErrorKind::UnresolvedReference);
    assert_eq!(errors[0].path, "spec.http[0].route[1].destination.subset");
    assert!(
        errors[0]
            .message
            .contains("reviews.default.svc.cluster.local"),
        "{}",
        errors[0]
    );
}

#[test]
fn subset_host_is_resolved_in_each_namespace() {
    // The DR lives in prod: its `reviews` is reviews.prod..., not default.
    let dr = DR.replace("name: reviews}", "name: reviews, namespace: prod}");
    let yaml =
        vs("  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews, subset: v1}}]}]\n");
    assert_eq!(
        paths(&format!("{yaml}---\n{dr}")),
        one(
            ErrorKind::UnresolvedReference,
            "spec.http[0].route[0].destination.subset"
        )
    );
    let fq = vs("  hosts: [reviews]\n  http: [{route: [{destination: {host: reviews.prod.svc.cluster.local, subset: v1}}]}]\n");
    assert_eq!(paths(&format!("{fq}---\n{dr}")), vec![]);
}

#[test]
fn duplicates_name_the_first_file() {
    let (a, _) = load_str(Path::new("a.yaml"), DR);
    let (b, _) = load_str(Path::new("b.yaml"), DR);
    let files = vec![
        LoadedFile {
            path: "a.yaml".into(),
            objects: a,
            errors: vec![],
        },
        LoadedFile {
            path: "b.yaml".into(),
            objects: b,
            errors: vec![],
        },
    ];
    let report = validate_files(&files);
    assert_eq!(report[Path::new("a.yaml")], vec![]);
    let errors = &report[Path::new("b.yaml")];
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].kind, errors[0].path.as_str()),
        (ErrorKind::Duplicate, "metadata.name")
    );
    assert_eq!(
        errors[0].to_string(),
        "b.yaml:3: DestinationRule/default/reviews: metadata.name: duplicate object: DestinationRule/default/reviews is already defined in a.yaml:3"
    );
}

#[test]
fn metadata_name_is_required() {
    let errors = check("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {namespace: x}\nspec: {address: 127.0.0.1}\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].kind, errors[0].path.as_str()),
        (ErrorKind::MissingField, "metadata.name")
    );
    assert_eq!(
        errors[0].to_string(),
        "t.yaml:3: metadata.name: missing required field",
        "the line of metadata, where name is missing"
    );
}

#[test]
fn gateway_rules() {
    let gw = |servers: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  selector: {{istio: ingressgateway}}\n{servers}")
    };
    assert_eq!(paths(&gw("")), one(ErrorKind::MissingField, "spec.servers"));
    assert_eq!(
        paths(&gw(
            "  servers: [{port: {number: 80, name: http, protocol: HTTP}}]\n"
        )),
        one(ErrorKind::MissingField, "spec.servers[0].hosts")
    );
    assert_eq!(
        paths(&gw(
            "  servers: [{port: {number: 70000, name: http, protocol: HTTP}, hosts: ['*']}]\n"
        )),
        one(ErrorKind::InvalidValue, "spec.servers[0].port.number")
    );
    assert_eq!(
        paths(&gw(
            "  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*']}]\n"
        )),
        one(ErrorKind::MissingField, "spec.servers[0].tls")
    );
    assert_eq!(
        paths(&gw("  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem}}]\n")),
        vec![]
    );
}

#[test]
fn service_entry_rules() {
    let se = |spec: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: se}}\nspec:\n{spec}")
    };
    assert_eq!(
        paths(&se(
            "  ports: [{number: 27017, name: tcp, protocol: TCP}]\n"
        )),
        one(ErrorKind::MissingField, "spec.hosts")
    );
    assert_eq!(
        paths(&se(
            "  hosts: [db.example.com]\n  ports: [{number: 0, name: tcp, protocol: TCP}]\n"
        )),
        one(ErrorKind::MissingField, "spec.ports[0].number")
    );
    assert_eq!(
        paths(&se("  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 198.18.0.1, ports: {web: 8080}}]\n")),
        one(ErrorKind::InvalidValue, "spec.endpoints[0].ports.web")
    );
    assert_eq!(
        paths(&se("  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: DNS\n  endpoints: [{ports: {http: 8080}}]\n")),
        one(ErrorKind::MissingField, "spec.endpoints[0].address")
    );
}

#[test]
fn workload_entry_needs_an_address() {
    let we = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec:\n  labels: {app: a}\n  ports: {http: 8080}\n";
    assert_eq!(paths(we), one(ErrorKind::MissingField, "spec.address"));
    let bad_port = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec: {address: 127.0.0.1, ports: {http: 0}}\n";
    assert_eq!(
        paths(bad_port),
        one(ErrorKind::MissingField, "spec.ports.http")
    );
}

#[test]
fn destination_rule_rules() {
    let dr = |spec: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n{spec}")
    };
    assert_eq!(
        paths(&dr("  subsets: [{name: v1}]\n")),
        one(ErrorKind::MissingField, "spec.host")
    );
    assert_eq!(
        paths(&dr("  host: a\n  subsets: [{name: v1}, {name: v1}]\n")),
        one(ErrorKind::InvalidValue, "spec.subsets[1].name")
    );
    assert_eq!(
        paths(&dr(
            "  host: a\n  trafficPolicy:\n    portLevelSettings: [{port: {number: 0}, loadBalancer: {simple: RANDOM}}]\n"
        )),
        one(
            ErrorKind::MissingField,
            "spec.trafficPolicy.portLevelSettings[0].port.number"
        )
    );
    assert_eq!(
        paths(&dr(
            "  host: a\n  trafficPolicy: {outlierDetection: {maxEjectionPercent: 150}}\n"
        )),
        one(
            ErrorKind::InvalidValue,
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent"
        )
    );
}

#[test]
fn fault_and_redirect_rules() {
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{route: [{destination: {host: a}}], fault: {abort: {httpStatus: 700, percentage: {value: 50}}}}]\n")),
        one(ErrorKind::InvalidValue, "spec.http[0].fault.abort.httpStatus")
    );
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{route: [{destination: {host: a}}], fault: {delay: {fixedDelay: 5s, percentage: {value: 101}}}}]\n")),
        one(ErrorKind::InvalidValue, "spec.http[0].fault.delay.percentage.value")
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{redirect: {uri: /x, redirectCode: 200}}]\n"
        )),
        one(
            ErrorKind::InvalidValue,
            "spec.http[0].redirect.redirectCode"
        )
    );
    assert_eq!(
        paths(&vs(
            "  hosts: [a]\n  http: [{redirect: {uri: /x}, route: [{destination: {host: a}}]}]\n"
        )),
        one(ErrorKind::InvalidValue, "spec.http[0]")
    );
}

#[test]
fn match_port_and_destination_port_ranges() {
    assert_eq!(
        paths(&vs("  hosts: [a]\n  http: [{match: [{port: 99999}], route: [{destination: {host: a, port: {number: 80}}}]}]\n")),
        one(ErrorKind::InvalidValue, "spec.http[0].match[0].port")
    );
}

#[test]
fn wildcard_host_only_on_gateways() {
    assert_eq!(
        paths(&vs(
            "  hosts: ['*']\n  http: [{route: [{destination: {host: a}}]}]\n"
        )),
        one(ErrorKind::InvalidValue, "spec.hosts[0]")
    );
    assert_eq!(
        paths(&vs("  hosts: ['*']\n  gateways: [istio-system/gw]\n  http: [{route: [{destination: {host: a}}]}]\n")),
        vec![]
    );
}

#[test]
fn validation_errors_have_the_line_of_their_field() {
    // The second HTTP route's regex, in the second document of the file.
    let yaml = format!(
        "{DR}---\n{}",
        vs("  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n  - match:\n    - uri:\n        regex: \"/api/(v1\"\n    route:\n    - destination: {host: reviews, subset: v9}\n")
    );
    let errors = check(&yaml);
    let lines: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        lines,
        [
            ("spec.http[1].match[0].uri.regex", Some(19)),
            ("spec.http[1].route[0].destination.subset", Some(21)),
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0].to_string().starts_with("t.yaml:19: VirtualService/default/r: spec.http[1].match[0].uri.regex: invalid regular expression"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_missing_field_has_the_line_of_its_parent() {
    let errors = check(&vs(
        "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        port: {number: 80}\n",
    ));
    assert_eq!(
        (errors[0].path.as_str(), errors[0].line),
        ("spec.http[0].route[0].destination.host", Some(8)),
        "{errors:#?}"
    );
}

#[test]
fn list_items_have_their_own_lines() {
    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: a}\n  spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: b}\n  spec:\n    servers:\n    - port: {number: 70000, name: http, protocol: HTTP}\n      hosts: ['*']\n";
    let (objects, load_errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(load_errors.is_empty(), "{load_errors:?}");
    assert_eq!(
        objects.iter().map(|o| o.line).collect::<Vec<_>>(),
        [Some(4), Some(8)]
    );
    let errors = validate(&objects);
    assert_eq!(
        (errors[0].path.as_str(), errors[0].line),
        ("spec.servers[0].port.number", Some(13)),
        "{errors:#?}"
    );
}

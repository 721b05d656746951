//! Sidecar rules taken from Istio's validation, and the one default
//! Sidecar per namespace.

use super::{check, object, one, paths, warning_paths};
use crate::error::ErrorKind;

fn sidecar(spec: &str) -> Vec<(ErrorKind, String)> {
    paths(&object("Sidecar", spec))
}

fn invalid(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::InvalidValue, path)
}

#[test]
fn istios_example_is_valid() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: istio-config}\nspec:\n  egress:\n  - hosts:\n    - \"./*\"\n    - \"istio-system/*\"\n";
    assert_eq!(check(yaml), vec![]);
    let with_selector = object(
        "Sidecar",
        "  workloadSelector: {labels: {app: ratings}}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n  egress:\n  - port: {number: 9080, protocol: http, name: egresshttp}\n    hosts: ['prod-us1/*']\n  - hosts: ['istio-system/*', '~prod-us2/*']\n",
    );
    assert_eq!(paths(&with_selector), vec![]);
}

#[test]
fn a_sidecar_is_not_empty() {
    assert_eq!(sidecar("  {}\n"), invalid("spec"));
    assert_eq!(
        sidecar("  workloadSelector: {labels: {app: a}}\n"),
        invalid("spec")
    );
}

#[test]
fn egress_hosts_are_namespace_slash_host() {
    let host = |h: &str| sidecar(&format!("  egress: [{{hosts: ['{h}']}}]\n"));
    for ok in [
        "*/*",
        "./*",
        "~/*",
        "prod/*.example.com",
        "*/api.example.com",
        "~prod/*",
    ] {
        assert_eq!(host(ok), vec![], "{ok}");
    }
    for bad in [
        "api.example.com",
        "prod/reviews",
        "Prod_1/*",
        "prod/*foo.example.com",
        "./",
    ] {
        assert_eq!(host(bad), invalid("spec.egress[0].hosts[0]"), "{bad}");
    }
    assert_eq!(
        sidecar("  egress: [{port: {number: 80, name: http, protocol: HTTP}}]\n"),
        one(ErrorKind::MissingField, "spec.egress[0].hosts")
    );
}

#[test]
fn one_catch_all_listener_last() {
    assert_eq!(
        sidecar("  egress:\n  - hosts: ['./*']\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['./*']\n"),
        invalid("spec.egress[0]")
    );
    assert_eq!(
        sidecar("  egress:\n  - port: {number: 80, name: a, protocol: HTTP}\n    hosts: ['./*']\n  - port: {number: 80, name: b, protocol: HTTP}\n    hosts: ['./*']\n"),
        invalid("spec.egress[1].port.number")
    );
}

#[test]
fn listener_ports() {
    assert_eq!(
        sidecar("  egress:\n  - port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}\n    hosts: ['./*']\n"),
        invalid("spec.egress[0].port.targetPort")
    );
    assert_eq!(
        sidecar(
            "  egress:\n  - port: {number: 80, name: http, protocol: SPDY}\n    hosts: ['./*']\n"
        ),
        invalid("spec.egress[0].port.protocol")
    );
    let found = sidecar(
        "  egress:\n  - port: {number: 0, name: uds, protocol: HTTP}\n    hosts: ['./*']\n",
    );
    assert_eq!(
        found,
        invalid("spec.egress[0].bind"),
        "port 0 needs a unix socket"
    );
}

#[test]
fn the_egress_proxy_needs_allow_any() {
    let found = sidecar("  egress: [{hosts: ['./*']}]\n  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n    egressProxy: {host: egress.example.com, port: {number: 3128}}\n");
    assert!(
        found.contains(&(
            ErrorKind::InvalidValue,
            "spec.outboundTrafficPolicy.egressProxy".into()
        )),
        "{found:?}"
    );
}

#[test]
fn ingress_listeners_are_checked_too() {
    let found = sidecar("  ingress:\n  - port: {number: 9080, name: http, protocol: HTTP}\n    defaultEndpoint: 198.18.0.1:8080\n");
    assert!(
        found.contains(&(
            ErrorKind::InvalidValue,
            "spec.ingress[0].defaultEndpoint".into()
        )),
        "{found:?}"
    );
    assert!(found.contains(&(ErrorKind::Unsupported, "spec.ingress".into())));
}

#[test]
fn duplicated_hosts_are_warnings() {
    let yaml = object(
        "Sidecar",
        "  egress:\n  - hosts: ['prod/*', 'prod/a.example.com', '*/*']\n",
    );
    assert_eq!(paths(&yaml), vec![]);
    assert_eq!(
        warning_paths(&yaml),
        [
            (
                ErrorKind::Ineffective,
                "spec.egress[0].hosts[1]".to_string()
            ),
            (ErrorKind::Ineffective, "spec.egress[0].hosts".to_string()),
        ]
    );
}

fn named(name: &str, namespace: &str, created: Option<&str>, spec: &str) -> String {
    let ts = created
        .map(|t| format!(", creationTimestamp: '{t}'"))
        .unwrap_or_default();
    format!("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {namespace}{ts}}}\nspec:\n{spec}")
}

#[test]
fn one_default_sidecar_per_namespace() {
    let default = "  egress: [{hosts: ['./*']}]\n";
    let selected = "  workloadSelector: {labels: {app: a}}\n  egress: [{hosts: ['./*']}]\n";
    // Istio keeps the oldest: here the second document, so the first one
    // is reported, naming it.
    let yaml = [
        named("newer", "prod", Some("2024-02-01T00:00:00Z"), default),
        named("older", "prod", Some("2024-01-01T00:00:00Z"), default),
        named("other-ns", "dev", None, default),
        named("selective", "prod", None, selected),
    ]
    .join("---\n");
    let errors = check(&yaml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].object.as_deref(), Some("Sidecar/prod/newer"));
    assert_eq!(errors[0].path, "spec");
    assert!(
        errors[0].message.contains("Sidecar/prod/older (t.yaml:9)"),
        "{}",
        errors[0]
    );
}

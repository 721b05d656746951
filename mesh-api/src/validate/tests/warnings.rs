//! Warnings: deprecated fields (from loading) and mesh VirtualServices
//! shadowed by an older one for the same host (Istio's IST0109).

use std::path::Path;

use super::{one, paths, vs, warning_paths};
use crate::error::ErrorKind;
use crate::load::load_str;
use crate::validate::{report, warnings};

#[test]
fn deprecated_fields_warn_with_their_line_and_replacement() {
    let yaml = vs("  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    appendHeaders: {x-a: b}\n");
    assert_eq!(paths(&yaml), vec![], "accepted");
    let (objects, _) = load_str(Path::new("vs.yaml"), &yaml);
    let shown: Vec<String> = warnings(&objects).iter().map(|w| w.to_string()).collect();
    assert_eq!(
        shown,
        ["vs.yaml:8: VirtualService/default/r: spec.http[0].appendHeaders: deprecated, use spec.http[0].headers.request.add"]
    );
}

#[test]
fn warnings_are_not_errors() {
    let yaml = vs("  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n    mirror: {host: shadow}\n    mirrorPercent: 5\n");
    let (objects, _) = load_str(Path::new("t.yaml"), &yaml);
    let found = report(&objects);
    assert_eq!(found.errors, vec![]);
    assert_eq!(found.warnings.len(), 1, "{:#?}", found.warnings);
    assert!(found.warnings.iter().all(|w| w.kind.is_warning()));
}

fn mesh_vs(name: &str, namespace: &str, created: Option<&str>, extra: &str) -> String {
    let ts = created
        .map(|t| format!(", creationTimestamp: '{t}'"))
        .unwrap_or_default();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {namespace}{ts}}}\nspec:\n  hosts: [reviews.prod.svc.cluster.local]\n{extra}  http: [{{route: [{{destination: {{host: reviews.prod.svc.cluster.local}}}}]}}]\n"
    )
}

#[test]
fn two_mesh_virtual_services_for_one_host() {
    // `b` is older, so it is the one sidecars use; `a` is reported.
    let yaml = [
        mesh_vs("a", "prod", Some("2024-03-01T00:00:00Z"), ""),
        mesh_vs("b", "prod", Some("2024-01-01T00:00:00Z"), ""),
    ]
    .join("---\n");
    let (objects, _) = load_str(Path::new("t.yaml"), &yaml);
    let found = warnings(&objects);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::Ineffective);
    assert_eq!(found[0].object.as_deref(), Some("VirtualService/prod/a"));
    assert_eq!(found[0].path, "spec.hosts[0]");
    assert!(
        found[0]
            .message
            .contains("VirtualService/prod/b (t.yaml:10)"),
        "{}",
        found[0]
    );
    assert!(found[0].message.contains("IST0109"), "{}", found[0]);
}

#[test]
fn without_timestamps_the_name_then_the_namespace_decide() {
    // The short name `reviews` in prod is the same host.
    let short = mesh_vs("a", "prod", None, "").replace(
        "hosts: [reviews.prod.svc.cluster.local]",
        "hosts: [reviews]",
    );
    let yaml = [mesh_vs("b", "prod", None, ""), short].join("---\n");
    let (objects, _) = load_str(Path::new("t.yaml"), &yaml);
    let found = warnings(&objects);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].object.as_deref(), Some("VirtualService/prod/b"));
    // A timestamp makes an object younger than one without.
    let yaml = [
        mesh_vs("a", "prod", Some("2020-01-01T00:00:00Z"), ""),
        mesh_vs("b", "prod", None, ""),
    ]
    .join("---\n");
    let (objects, _) = load_str(Path::new("t.yaml"), &yaml);
    assert_eq!(
        warnings(&objects)[0].object.as_deref(),
        Some("VirtualService/prod/a")
    );
}

#[test]
fn gateway_routes_and_separate_scopes_do_not_conflict() {
    let yaml = [
        mesh_vs("a", "prod", None, ""),
        mesh_vs("b", "prod", None, "  gateways: [istio-system/gw]\n"),
    ]
    .join("---\n");
    assert_eq!(warning_paths(&yaml), vec![]);
    let yaml = [
        mesh_vs("a", "prod", None, "  exportTo: ['.']\n"),
        mesh_vs("b", "dev", None, "  exportTo: ['.']\n"),
    ]
    .join("---\n");
    assert_eq!(
        warning_paths(&yaml),
        vec![],
        "seen from different namespaces"
    );
    let yaml = [
        mesh_vs("a", "prod", None, "  exportTo: ['.']\n"),
        mesh_vs("b", "dev", None, "  gateways: [mesh, gw]\n"),
    ]
    .join("---\n");
    assert_eq!(
        warning_paths(&yaml),
        one(ErrorKind::Ineffective, "spec.hosts[0]"),
        "`mesh` among the gateways counts; b (exported everywhere) reaches prod"
    );
}

#[test]
fn a_selector_without_labels_warns() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n  workloadSelector: {labels: {}}\n  egress: [{hosts: ['./*']}]\n";
    assert_eq!(
        warning_paths(yaml),
        one(ErrorKind::Ineffective, "spec.workloadSelector.labels")
    );
}

#[test]
fn routes_no_request_reaches() {
    let yaml = vs("  hosts: [reviews]\n  http:\n  - match: [{uri: {prefix: /a}}]\n    route: [{destination: {host: a}}]\n  - match: [{uri: {prefix: /a}}, {uri: {prefix: /b}}]\n    route: [{destination: {host: b}}]\n  - route: [{destination: {host: c}}]\n  - match: [{uri: {prefix: /d}}]\n    route: [{destination: {host: d}}]\n");
    assert_eq!(paths(&yaml), vec![]);
    assert_eq!(
        warning_paths(&yaml),
        [
            (ErrorKind::Ineffective, "spec.http[1].match[0]".to_string()),
            (ErrorKind::Ineffective, "spec.http[3]".to_string()),
        ]
    );
    let all_repeated = vs("  hosts: [db]\n  tcp:\n  - match: [{port: 5432}]\n    route: [{destination: {host: a}}]\n  - match: [{port: 5432}]\n    route: [{destination: {host: b}}]\n");
    assert_eq!(
        warning_paths(&all_repeated),
        [
            (ErrorKind::Ineffective, "spec.tcp[1].match[0]".to_string()),
            (ErrorKind::Ineffective, "spec.tcp[1]".to_string()),
        ]
    );
}

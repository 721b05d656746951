//! The unsupported list: every entry's example is rejected with exactly
//! that entry's error, on the field its pattern names; defaults are not;
//! the user doc lists every entry.

use super::{check, indent, object, one, paths, vs};
use crate::error::ErrorKind;
use crate::validate::unsupported::{When, UNSUPPORTED};

/// Whether the concrete `path` is one that `pattern` names.
fn names(pattern: &str, path: &str) -> bool {
    let mut re = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            re.push_str(r"\[\d+\]");
            rest = r;
        } else if let Some(r) = rest.strip_prefix("**") {
            re.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            re.push_str(r"[^.\[]+");
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            re.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(path))
}

#[test]
fn every_unsupported_entry_is_reported() {
    assert!(UNSUPPORTED.len() >= 20);
    for entry in UNSUPPORTED {
        let errors = check(&object(entry.kind, &indent(entry.example)));
        assert_eq!(errors.len(), 1, "{entry:?}:\n{errors:#?}");
        let err = &errors[0];
        assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
        assert!(
            names(entry.path, &err.path),
            "{} does not name {err}",
            entry.path
        );
        assert!(
            err.message.contains("is not enforced by this mesh yet"),
            "{err}"
        );
        assert!(err.message.contains(entry.reason), "{err}");
        assert!(err.line.is_some(), "{err}");
        if let When::Is(value) = entry.when {
            assert!(err.message.starts_with(value), "{err}");
        }
    }
}

#[test]
fn the_reason_names_the_missing_part() {
    let errors = check(&object(
        "DestinationRule",
        "  host: reviews\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n",
    ));
    assert_eq!(
        errors[0].to_string(),
        "t.yaml:7: DestinationRule/default/t: spec.trafficPolicy.tls.mode: ISTIO_MUTUAL is not enforced by this mesh yet (mTLS arrives with the security issue)"
    );
}

#[test]
fn an_entry_finds_its_field_at_every_depth() {
    let yaml = object(
        "DestinationRule",
        "  host: reviews\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n      tls: {mode: ISTIO_MUTUAL}\n  subsets:\n  - name: v1\n    trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
    );
    let mut found = paths(&yaml);
    found.sort();
    assert_eq!(
        found,
        [
            (
                ErrorKind::Unsupported,
                "spec.subsets[0].trafficPolicy.tls.mode".to_string()
            ),
            (
                ErrorKind::Unsupported,
                "spec.trafficPolicy.portLevelSettings[0].tls.mode".to_string()
            ),
        ]
    );
}

#[test]
fn values_the_mesh_enforces_are_not_rejected() {
    // captureMode DEFAULT is what the mesh does anyway; SIMPLE TLS from
    // files is supported; so is a Gateway PASSTHROUGH server.
    let sidecar = object(
        "Sidecar",
        "  egress:\n  - port: {number: 9080, name: http, protocol: HTTP}\n    captureMode: DEFAULT\n    hosts: ['./*']\n",
    );
    assert_eq!(paths(&sidecar), vec![]);
    let dr = object(
        "DestinationRule",
        "  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem}\n",
    );
    assert_eq!(paths(&dr), vec![]);
    let gw = object(
        "Gateway",
        "  servers:\n  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: ['*.example.com']\n    tls: {mode: PASSTHROUGH}\n",
    );
    assert_eq!(paths(&gw), vec![]);
}

#[test]
fn jwt_claim_routes_are_rejected() {
    let yaml = vs("  hosts: [reviews]\n  gateways: [gw]\n  http:\n  - match: [{headers: {'@request.auth.claims.group': {exact: admin}}}]\n    route: [{destination: {host: reviews}}]\n");
    assert_eq!(
        paths(&yaml),
        one(
            ErrorKind::Unsupported,
            "spec.http[0].match[0].headers.@request.auth.claims.group"
        )
    );
}

#[test]
fn the_compatibility_doc_lists_every_unsupported_entry() {
    let doc =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config-compatibility.md");
    let text = std::fs::read_to_string(&doc).expect("docs/config-compatibility.md");
    for entry in UNSUPPORTED {
        let when = match entry.when {
            When::Set => "set".to_string(),
            When::Is(v) => format!("= `{v}`"),
            When::IsNot(v) => format!("not `{v}`"),
        };
        let row = format!("| {} | `{}` | {when} |", entry.kind, entry.path);
        assert!(text.contains(&row), "{} has no row {row:?}", doc.display());
    }
    let rows = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("| `spec."))
        .count();
    assert_eq!(
        rows,
        UNSUPPORTED.len(),
        "the doc's table has rows the list does not"
    );
}

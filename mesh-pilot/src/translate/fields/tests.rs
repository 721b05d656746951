//! Field coverage: every field of every kind, as the schema derived from
//! mesh-api's serde types has it, is translated, rewritten by
//! normalization, rejected by validation or listed as without effect; and
//! every list names only fields that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mesh_api::fields::{expand, paths};
use mesh_api::normalize::REWRITTEN;
use mesh_api::types::KINDS;
use mesh_api::validate::unsupported::{covers, When, UNSUPPORTED};

use super::{REFUSED, TRANSLATED, WITHOUT_EFFECT};

/// `(kind, path) -> the lists that name it`, each list entry expanded.
fn listed() -> BTreeMap<(String, String), Vec<&'static str>> {
    let translated = TRANSLATED.iter().map(|(k, p)| (*k, *p, "TRANSLATED"));
    let rewritten = REWRITTEN.iter().map(|(k, p)| (*k, *p, "REWRITTEN"));
    let refused = REFUSED.iter().map(|r| (r.kind, r.path, "REFUSED"));
    let inert = WITHOUT_EFFECT
        .iter()
        .map(|i| (i.kind, i.path, "WITHOUT_EFFECT"));
    let mut out: BTreeMap<(String, String), Vec<&'static str>> = BTreeMap::new();
    for (kind, entry, list) in translated.chain(rewritten).chain(refused).chain(inert) {
        for path in expand(entry) {
            out.entry((kind.to_string(), path)).or_default().push(list);
        }
    }
    out
}

/// The UNSUPPORTED entry that rejects `path` of `kind` whatever its value.
fn rejected(kind: &str, path: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|u| u.kind == kind && u.when == When::Set && covers(u.path, path))
        .map(|u| u.path)
}

#[test]
fn every_field_is_translated_or_rejected() {
    let listed = listed();
    let mut missing = Vec::new();
    let mut checked = 0;
    for kind in KINDS {
        for path in paths(kind) {
            checked += 1;
            let key = (kind.to_string(), path.clone());
            if rejected(kind, &path).is_none() && !listed.contains_key(&key) {
                missing.push(format!(
                    "{kind} field {path} is deserialized but neither translated \
                     (mesh-pilot/src/translate/fields.rs) nor rejected \
                     (mesh-api/src/validate/unsupported.rs)"
                ));
            }
        }
    }
    assert!(checked > 500, "walked only {checked} fields");
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

#[test]
fn every_listed_field_exists_once_and_is_not_rejected() {
    let mut problems = Vec::new();
    let schema: BTreeMap<&str, BTreeSet<String>> = KINDS
        .iter()
        .map(|kind| (*kind, paths(kind).into_iter().collect()))
        .collect();
    for ((kind, path), lists) in listed() {
        let known = schema.get(kind.as_str());
        if !known.is_some_and(|paths| paths.contains(&path)) {
            problems.push(format!(
                "{kind} field {path} ({}) is not a field of the schema",
                lists.join(", ")
            ));
        }
        if lists.len() > 1 {
            problems.push(format!(
                "{kind} field {path} is in more than one list: {}",
                lists.join(", ")
            ));
        }
        if let Some(pattern) = rejected(&kind, &path) {
            problems.push(format!(
                "{kind} field {path} ({}) is rejected whatever its value by UNSUPPORTED {pattern}",
                lists.join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn refused_fields_are_rejected_by_validation() {
    for refused in REFUSED {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: {}\nmetadata: {{name: t, namespace: default}}\nspec:\n{}",
            refused.kind,
            refused
                .example
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
        let (objects, load_errors) = mesh_api::load_str(Path::new("t.yaml"), &yaml);
        assert!(load_errors.is_empty(), "{refused:?}: {load_errors:?}");
        let errors = mesh_api::validate(&objects);
        let field = refused.path.replace("[*]", "[0]");
        assert!(
            errors.iter().any(|e| e.path == field),
            "{refused:?} is not rejected on {field}: {errors:#?}"
        );
    }
}

#[test]
fn a_field_nobody_handles_is_reported() {
    // The check itself: a path in no list and under no rejecting entry.
    let listed = listed();
    let path = "spec.http[*].match[*].uri.suffix";
    assert!(rejected("VirtualService", path).is_none());
    assert!(!listed.contains_key(&("VirtualService".to_string(), path.to_string())));
    // A partial UNSUPPORTED entry does not cover a field on its own.
    assert!(rejected("DestinationRule", "spec.trafficPolicy.tls.mode").is_none());
    assert_eq!(
        rejected(
            "DestinationRule",
            "spec.subsets[*].trafficPolicy.tunnel.targetHost"
        ),
        Some("spec.**.tunnel")
    );
}

//! The JSON schema of each kind's spec, as the serde types accept it
//! (derived with `schemars`, so renames, `match` keys and defaults are the
//! YAML's), and the list of its field paths.
//!
//! Beside the config model ([`crate::types`]): nothing in the load or
//! validate flow uses it. Pilot's field-coverage test walks [`paths`] to
//! check that every field a user can write is either translated, rewritten
//! by [`crate::normalize`], or rejected by
//! [`crate::validate::unsupported`]: nothing accepted and ignored.
//!
//! Paths are written in the pattern syntax of
//! [`crate::validate::unsupported`]: `spec.http[*].match[*].uri.exact`,
//! `[*]` for the items of a list and `*` for the keys of a map
//! (`spec.subsets[*].labels.*`).

use std::collections::BTreeSet;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use crate::types::destination_rule::DestinationRuleSpec;
use crate::types::gateway::GatewaySpec;
use crate::types::service_entry::{ServiceEntrySpec, WorkloadEntrySpec};
use crate::types::sidecar::SidecarSpec;
use crate::types::virtual_service::VirtualServiceSpec;

/// The JSON schema of the spec of `kind` (one of [`crate::types::KINDS`]),
/// as deserialization accepts it; `None` for another kind.
pub fn spec_schema(kind: &str) -> Option<Schema> {
    fn of<T: JsonSchema>() -> Schema {
        SchemaGenerator::default().into_root_schema_for::<T>()
    }
    Some(match kind {
        "VirtualService" => of::<VirtualServiceSpec>(),
        "DestinationRule" => of::<DestinationRuleSpec>(),
        "Gateway" => of::<GatewaySpec>(),
        "ServiceEntry" => of::<ServiceEntrySpec>(),
        "WorkloadEntry" => of::<WorkloadEntrySpec>(),
        "Sidecar" => of::<SidecarSpec>(),
        _ => return None,
    })
}

/// Every leaf field path of the spec of `kind`, sorted: each place a
/// scalar (string, number, boolean, enum value) can be written, starting
/// with `spec`. A type that contains itself is not entered again: the path
/// where it recurs is listed as a leaf, so it must be accounted for like
/// any other. Empty for an unknown kind.
pub fn paths(kind: &str) -> Vec<String> {
    spec_schema(kind)
        .map(|schema| schema_paths(&schema))
        .unwrap_or_default()
}

/// The leaf field paths of a root `schema` (its `$defs` resolved), sorted,
/// starting with `spec`; see [`paths`].
pub fn schema_paths(schema: &Schema) -> Vec<String> {
    let root = schema.as_value();
    let mut out = BTreeSet::new();
    walk(root, root, "spec".to_string(), &mut vec!["#"], &mut out);
    out.into_iter().collect()
}

/// The paths a field table entry stands for: `{a,b}` is each of `a` and
/// `b` (either may be empty), so `spec.{trafficPolicy,subsets[*].trafficPolicy}{,.portLevelSettings[*]}.tls.sni`
/// is the four places a traffic policy's `tls.sni` can be written. Braces
/// do not nest. Lists of fields (pilot's translated fields, normalize's
/// rewritten ones) use it to name the same field in several places without
/// a wildcard that would also take in places added later.
pub fn expand(entry: &str) -> Vec<String> {
    let Some((head, rest)) = entry.split_once('{') else {
        return vec![entry.to_string()];
    };
    let Some((choices, tail)) = rest.split_once('}') else {
        return vec![entry.to_string()];
    };
    choices
        .split(',')
        .flat_map(|choice| expand(&format!("{head}{choice}{tail}")))
        .collect()
}

fn walk<'s>(
    root: &'s Value,
    node: &'s Value,
    path: String,
    entered: &mut Vec<&'s str>,
    out: &mut BTreeSet<String>,
) {
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        if entered.contains(&reference) {
            out.insert(path);
            return;
        }
        let target = match reference.strip_prefix("#/$defs/") {
            Some(name) => root.get("$defs").and_then(|defs| defs.get(name)),
            None => (reference == "#").then_some(root),
        };
        if let Some(target) = target {
            entered.push(reference);
            walk(root, target, path.clone(), entered, out);
            entered.pop();
        }
        return;
    }
    let mut inner = false;
    for key in ["anyOf", "oneOf", "allOf"] {
        for choice in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            inner = true;
            walk(root, choice, path.clone(), entered, out);
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        inner = true;
        for (name, child) in properties {
            walk(root, child, format!("{path}.{name}"), entered, out);
        }
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        inner = true;
        walk(root, values, format!("{path}.*"), entered, out);
    }
    if let Some(items) = node.get("items") {
        inner = true;
        walk(root, items, format!("{path}[*]"), entered, out);
    }
    let only_null = node.get("type").and_then(Value::as_str) == Some("null");
    if !inner && !only_null {
        out.insert(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::KINDS;

    #[test]
    fn paths_follow_the_yaml_names() {
        let vs = paths("VirtualService");
        for expected in [
            "spec.hosts[*]",
            "spec.http[*].match[*].uri.exact",
            "spec.http[*].match[*].headers.*.regex",
            "spec.http[*].route[*].destination.port.number",
            "spec.http[*].rewrite.uriRegexRewrite.match",
            "spec.http[*].timeout",
            "spec.tcp[*].match[*].sourceLabels.*",
        ] {
            assert!(vs.iter().any(|p| p == expected), "{expected} in {vs:#?}");
        }
        let dr = paths("DestinationRule");
        for expected in [
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
            "spec.subsets[*].trafficPolicy.portLevelSettings[*].tls.mode",
            "spec.trafficPolicy.loadBalancer.simple",
        ] {
            assert!(dr.iter().any(|p| p == expected), "{expected} in {dr:#?}");
        }
        // Containers are not leaves.
        assert!(!vs.iter().any(|p| p == "spec.http[*].match[*].uri"));
        assert!(paths("Nothing").is_empty());
    }

    #[test]
    fn a_type_that_contains_itself_is_entered_once() {
        #[derive(JsonSchema)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)]
        struct Node {
            node_name: String,
            children: Vec<Node>,
            parent: Option<Box<Node>>,
        }
        let schema = SchemaGenerator::default().into_root_schema_for::<Node>();
        assert_eq!(
            schema_paths(&schema),
            ["spec.children[*]", "spec.nodeName", "spec.parent"]
        );
    }

    #[test]
    fn braces_expand_to_each_choice() {
        assert_eq!(
            expand("spec.{a,b[*].c}{,.d}.e"),
            ["spec.a.e", "spec.a.d.e", "spec.b[*].c.e", "spec.b[*].c.d.e"]
        );
        assert_eq!(expand("spec.hosts[*]"), ["spec.hosts[*]"]);
    }

    #[test]
    fn a_resource_schema_is_its_wire_form() {
        use crate::types::Resource;
        let schema =
            SchemaGenerator::default().into_root_schema_for::<Resource<VirtualServiceSpec>>();
        let found = schema_paths(&schema);
        for expected in [
            "spec.apiVersion",
            "spec.kind",
            "spec.metadata.name",
            "spec.metadata.uid",
            "spec.metadata.creationTimestamp",
            "spec.spec.hosts[*]",
        ] {
            assert!(
                found.iter().any(|p| p == expected),
                "{expected} in {found:#?}"
            );
        }
    }

    #[test]
    fn every_kind_has_a_schema() {
        for kind in KINDS {
            assert!(paths(kind).len() > 3, "{kind}");
        }
    }
}

//! The node contract end to end: every node id form docs/architecture.md
//! lists ("Node identity") goes through mesh-proxy's flags and its `Node` on
//! the wire, and through pilot's parser of that `Node`; both sides must give
//! the type, namespace and labels the table gives, or both must refuse it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use envoy_types::pb::envoy::config::core::v3::Node as EnvoyNode;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use mesh_api::node::{parse_labels, ProxyType};
use mesh_proxy::xds::node::{from_flags, to_envoy, WorkloadFlags};

/// One row of the table.
#[derive(Debug)]
struct Form {
    id: String,
    namespace_flag: Option<String>,
    labels: BTreeMap<String, String>,
    /// `None` when the form is refused.
    expect: Option<(ProxyType, String)>,
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_string()
}

/// The rows of the node-id table under "Node identity".
fn forms() -> Vec<Form> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md");
    let text = std::fs::read_to_string(&doc).expect("docs/architecture.md");
    let section = text
        .split("## Node identity")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Node identity section");
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in section.lines() {
        if line.starts_with("| node id |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("| ---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 5, "row {line:?}");
        let namespace_flag = Some(unquote(cells[1])).filter(|s| !s.is_empty());
        let labels = parse_labels(&unquote(cells[2])).expect("labels cell");
        let expect = match unquote(cells[3]).as_str() {
            "refused" => None,
            "sidecar" => Some((ProxyType::Sidecar, unquote(cells[4]))),
            "router" => Some((ProxyType::Router, unquote(cells[4]))),
            other => panic!("type cell {other:?}"),
        };
        rows.push(Form {
            id: unquote(cells[0]),
            namespace_flag,
            labels,
            expect,
        });
    }
    rows
}

/// What an Envoy bootstrap would send for a form that mesh-proxy refuses
/// to build: the id and the same metadata.
fn raw_node(form: &Form) -> EnvoyNode {
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_string())),
    };
    let mut fields = HashMap::new();
    if let Some(ns) = &form.namespace_flag {
        fields.insert("NAMESPACE".to_string(), s(ns));
    }
    let labels = form.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect();
    fields.insert(
        "LABELS".to_string(),
        Value {
            kind: Some(Kind::StructValue(Struct { fields: labels })),
        },
    );
    EnvoyNode {
        id: form.id.clone(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

#[test]
fn pilot_and_proxy_agree_on_every_documented_node_form() {
    let forms = forms();
    assert!(forms.len() >= 8, "only {} forms read", forms.len());
    assert!(forms.iter().any(|f| f.expect.is_none()));
    for form in forms {
        let flags = WorkloadFlags {
            namespace: form.namespace_flag.clone(),
            labels: form.labels.clone(),
            ..WorkloadFlags::default()
        };
        let proxy_side = from_flags(&form.id, &flags);
        let Some((kind, namespace)) = &form.expect else {
            assert!(proxy_side.is_err(), "proxy accepted {form:?}");
            let pilot_side = mesh_pilot::xds::node::to_proxy(Some(&raw_node(&form)));
            assert!(pilot_side.is_err(), "pilot accepted {form:?}");
            continue;
        };
        let node = proxy_side.unwrap_or_else(|e| panic!("proxy refused {form:?}: {e}"));
        let wire = to_envoy(&node);
        let pilot = mesh_pilot::xds::node::to_proxy(Some(&wire))
            .unwrap_or_else(|e| panic!("pilot refused {form:?}: {e}"));
        for (side, got) in [("proxy", &node), ("pilot", &pilot)] {
            assert_eq!(got.proxy_type, *kind, "{side}: {form:?}");
            assert_eq!(&got.namespace, namespace, "{side}: {form:?}");
            assert_eq!(got.labels, form.labels, "{side}: {form:?}");
        }
        assert_eq!(pilot, node, "pilot's view of the node is the proxy's");
        // An Envoy sidecar sending the same id and metadata is read the same.
        let from_envoy = mesh_pilot::xds::node::to_proxy(Some(&raw_node(&form)))
            .unwrap_or_else(|e| panic!("pilot refused Envoy's {form:?}: {e}"));
        assert_eq!(from_envoy.namespace, *namespace);
        assert_eq!(from_envoy.proxy_type, *kind);
    }
}

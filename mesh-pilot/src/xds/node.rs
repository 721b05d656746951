//! Envoy `Node` -> [`Proxy`]: the wire form of a proxy's identity renamed
//! into our own model at the edge.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};

use mesh_api::node::LABELS;

use crate::error::NodeError;
use crate::proxy::{NodeMetadata, Proxy};

/// Parse the node of a stream's first request, with its locality (where
/// the proxy runs; locality-aware load balancing orders endpoints by it).
pub fn to_proxy(node: Option<&Node>) -> Result<Proxy, NodeError> {
    let node = node.ok_or(NodeError::Missing)?;
    if node.id.len() > mesh_api::node::MAX_NODE_ID_BYTES {
        return Err(NodeError::TooLarge {
            what: "id",
            size: node.id.len(),
            limit: mesh_api::node::MAX_NODE_ID_BYTES,
        });
    }
    let meta_size = node
        .metadata
        .as_ref()
        .map_or(0, prost::Message::encoded_len);
    if meta_size > mesh_api::node::MAX_NODE_METADATA_BYTES {
        return Err(NodeError::TooLarge {
            what: "metadata",
            size: meta_size,
            limit: mesh_api::node::MAX_NODE_METADATA_BYTES,
        });
    }
    let meta = node.metadata.as_ref().map(metadata).unwrap_or_default();
    let mut proxy = Proxy::parse(&node.id, &meta)?;
    proxy.locality = node
        .locality
        .as_ref()
        .filter(|l| !l.region.is_empty())
        .map(|l| mesh_api::node::Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        });
    Ok(proxy)
}

/// Flatten node metadata: strings (and numbers/bools, printed) by key,
/// `LABELS` as a string map.
pub fn metadata(s: &Struct) -> NodeMetadata {
    let mut meta = NodeMetadata::default();
    for (key, value) in &s.fields {
        match (key.as_str(), &value.kind) {
            (LABELS, Some(Kind::StructValue(labels))) => {
                meta.labels = labels
                    .fields
                    .iter()
                    .filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v)))
                    .collect();
            }
            _ => {
                if let Some(v) = scalar(value) {
                    meta.values.insert(key.clone(), v);
                }
            }
        }
    }
    meta
}

fn scalar(v: &Value) -> Option<String> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 => Some(format!("{}", *n as i64)),
        Some(Kind::NumberValue(n)) => Some(n.to_string()),
        Some(Kind::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.into())),
        }
    }

    #[test]
    fn reads_labels_and_strings() {
        let labels = Struct {
            fields: HashMap::from([("app".to_string(), s("greeter"))]),
        };
        let node = Node {
            id: "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local".into(),
            metadata: Some(Struct {
                fields: HashMap::from([
                    (
                        "LABELS".to_string(),
                        Value {
                            kind: Some(Kind::StructValue(labels)),
                        },
                    ),
                    (
                        "HTTP_PROXY_PORT".to_string(),
                        Value {
                            kind: Some(Kind::NumberValue(15080.0)),
                        },
                    ),
                    ("INTERCEPTION_MODE".to_string(), s("NONE")),
                ]),
            }),
            ..Default::default()
        };
        let p = to_proxy(Some(&node)).unwrap();
        assert_eq!(p.labels["app"], "greeter");
        assert_eq!(p.http_proxy_port, Some(15080));
        assert!(to_proxy(None).is_err());
    }
}

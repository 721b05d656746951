//! xDS stage, identity: who this proxy is to pilot, at the protobuf edge.
//! The node itself (id grammar, metadata keys, namespace rule) is the wire
//! contract [`mesh_api::node`], which pilot parses with the same code; this
//! module only renders it as the Envoy `Node` sent on the ADS stream.

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::{Locality as EnvoyLocality, Node as EnvoyNode};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use mesh_api::node::{self, InterceptionMode, Locality, Node, NodeError, NodeMetadata, LABELS};

/// What the proxy's flags say about its workload (docs/architecture.md,
/// "Processes and flags"), beside the node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadFlags {
    /// `--namespace`: overrides the id's namespace.
    pub namespace: Option<String>,
    /// `--labels`.
    pub labels: BTreeMap<String, String>,
    /// `--service-account`.
    pub service_account: Option<String>,
    /// `--interception-mode`.
    pub interception_mode: InterceptionMode,
    /// `--http-proxy-port`.
    pub http_proxy_port: Option<u16>,
    /// `--app-ip`.
    pub app_ip: Option<IpAddr>,
    /// `--gateway-ports`.
    pub gateway_ports: BTreeMap<u16, u16>,
    /// `--locality`.
    pub locality: Option<Locality>,
}

/// The node a node id and the flags describe, through the contract's own
/// parser: the flags become metadata exactly as pilot will read it, so both
/// sides derive the same namespace, labels and type.
pub fn from_flags(id: &str, flags: &WorkloadFlags) -> Result<Node, NodeError> {
    let mut values = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            values.insert(key.to_string(), v);
        }
    };
    put(node::NAMESPACE, flags.namespace.clone());
    put(node::SERVICE_ACCOUNT, flags.service_account.clone());
    put(
        node::INTERCEPTION_MODE,
        Some(flags.interception_mode.to_string()),
    );
    put(
        node::HTTP_PROXY_PORT,
        flags.http_proxy_port.map(|p| p.to_string()),
    );
    put(node::MESH_APP_IP, flags.app_ip.map(|ip| ip.to_string()));
    if !flags.gateway_ports.is_empty() {
        put(
            node::MESH_GATEWAY_PORTS,
            Some(node::format_port_map(&flags.gateway_ports)),
        );
    }
    let meta = NodeMetadata {
        values,
        labels: flags.labels.clone(),
    };
    let mut node = Node::parse(id, &meta)?;
    node.locality = flags.locality.clone();
    Ok(node)
}

/// The `Node` for DiscoveryRequests: the id, and the metadata as a
/// `Struct` of strings with `LABELS` a nested struct.
pub fn to_envoy(node: &Node) -> EnvoyNode {
    let meta = node.metadata();
    let mut fields: std::collections::HashMap<String, Value> = meta
        .values
        .iter()
        .map(|(k, v)| (k.clone(), string(v)))
        .collect();
    let labels = meta
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), string(v)))
        .collect();
    fields.insert(
        LABELS.to_string(),
        Value {
            kind: Some(Kind::StructValue(Struct { fields: labels })),
        },
    );
    EnvoyNode {
        id: node.id.clone(),
        user_agent_name: "mesh-proxy".to_owned(),
        metadata: Some(Struct { fields }),
        locality: node.locality.as_ref().map(|l| EnvoyLocality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        }),
        ..EnvoyNode::default()
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_api::node::{parse_labels, parse_port_map};

    #[test]
    fn metadata_follows_the_contract() {
        let flags = WorkloadFlags {
            namespace: None,
            labels: parse_labels("app=greeter, version=v1").unwrap(),
            service_account: Some("greeter".into()),
            interception_mode: InterceptionMode::None,
            http_proxy_port: Some(15080),
            app_ip: Some("127.1.10.2".parse().unwrap()),
            gateway_ports: parse_port_map("80=8080").unwrap(),
            locality: Some("us-east1/us-east1-b/rack7".parse().unwrap()),
        };
        let n = from_flags(
            "sidecar~127.0.10.2~g.default~default.svc.cluster.local",
            &flags,
        )
        .unwrap();
        let node = to_envoy(&n);
        let md = node.metadata.unwrap().fields;
        let s = |k: &str| match &md[k].kind {
            Some(Kind::StringValue(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(s("NAMESPACE"), "default");
        assert_eq!(s("SERVICE_ACCOUNT"), "greeter");
        assert_eq!(s("INTERCEPTION_MODE"), "NONE");
        assert_eq!(s("HTTP_PROXY_PORT"), "15080");
        assert_eq!(s("MESH_APP_IP"), "127.1.10.2");
        assert_eq!(s("MESH_GATEWAY_PORTS"), "80=8080");
        let Some(Kind::StructValue(labels)) = &md["LABELS"].kind else {
            panic!("LABELS is not a struct")
        };
        assert_eq!(labels.fields.len(), 2);
        assert_eq!(node.id, n.id);
        let locality = node.locality.expect("locality");
        assert_eq!(
            (
                locality.region.as_str(),
                locality.zone.as_str(),
                locality.sub_zone.as_str()
            ),
            ("us-east1", "us-east1-b", "rack7")
        );
        let without = to_envoy(&from_flags(&n.id, &WorkloadFlags::default()).unwrap());
        assert!(without.locality.is_none());
    }
}

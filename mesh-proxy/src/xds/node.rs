//! xDS stage, identity: who this proxy is to pilot. Parses the Istio-form
//! node id and the workload flags, and builds the `Node` (id + metadata
//! `Struct`) sent on the ADS stream, as docs/architecture.md specifies.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

/// A flag or node id that does not have the contract's shape.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node id is not `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
    #[error("invalid node id {id:?}: {reason}")]
    NodeId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `k=v,k=v` list is malformed.
    #[error("invalid list {input:?}: {reason}")]
    List {
        /// The list as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Unknown interception mode.
    #[error("invalid interception mode {0:?} (expected REDIRECT or NONE)")]
    InterceptionMode(String),
}

/// Sidecar or gateway: the first field of the node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyType {
    /// `sidecar`: beside one workload.
    Sidecar,
    /// `router`: an ingress, egress or east-west gateway.
    Router,
}

/// How traffic reaches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InterceptionMode {
    /// iptables capture to 15001/15006.
    #[default]
    Redirect,
    /// No capture: the app uses the sidecar as an HTTP proxy (loopback mode).
    None,
}

impl FromStr for InterceptionMode {
    type Err = NodeError;

    fn from_str(s: &str) -> Result<Self, NodeError> {
        match s.to_ascii_uppercase().as_str() {
            "REDIRECT" => Ok(Self::Redirect),
            "NONE" => Ok(Self::None),
            _ => Err(NodeError::InterceptionMode(s.to_owned())),
        }
    }
}

impl fmt::Display for InterceptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redirect => "REDIRECT",
            Self::None => "NONE",
        })
    }
}

/// This proxy's identity and workload facts, sent to pilot as the `Node`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The full node id.
    pub id: String,
    /// Sidecar or gateway.
    pub proxy_type: ProxyType,
    /// The IP in the node id.
    pub ip: IpAddr,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's labels.
    pub labels: BTreeMap<String, String>,
    /// Service account name.
    pub service_account: Option<String>,
    /// How traffic reaches the proxy.
    pub interception_mode: InterceptionMode,
    /// NONE mode: port of the outbound HTTP-proxy listener.
    pub http_proxy_port: Option<u16>,
    /// NONE mode: the IP the application listens on.
    pub app_ip: Option<IpAddr>,
    /// Gateways: Gateway server port → port actually bound.
    pub gateway_ports: BTreeMap<u16, u16>,
}

impl NodeInfo {
    /// Parses an Istio-form node id; other fields take their defaults
    /// (namespace from the id, REDIRECT mode, no labels).
    pub fn from_id(id: &str) -> Result<Self, NodeError> {
        let err = |reason: &str| NodeError::NodeId {
            id: id.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = id.split('~').collect();
        let [kind, ip, pod, domain] = parts[..] else {
            return Err(err(
                "expected TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local",
            ));
        };
        let proxy_type = match kind {
            "sidecar" => ProxyType::Sidecar,
            "router" => ProxyType::Router,
            _ => return Err(err("TYPE must be sidecar or router")),
        };
        let ip = ip.parse().map_err(|_| err("IP is not an IP address"))?;
        let namespace = domain
            .split('.')
            .next()
            .filter(|ns| !ns.is_empty())
            .or_else(|| pod.split_once('.').map(|(_, ns)| ns))
            .ok_or_else(|| err("no namespace"))?;
        Ok(Self {
            id: id.to_owned(),
            proxy_type,
            ip,
            namespace: namespace.to_owned(),
            labels: BTreeMap::new(),
            service_account: None,
            interception_mode: InterceptionMode::default(),
            http_proxy_port: None,
            app_ip: None,
            gateway_ports: BTreeMap::new(),
        })
    }

    /// The `Node` for DiscoveryRequests, metadata per the contract.
    pub fn to_node(&self) -> Node {
        let mut fields = BTreeMap::new();
        fields.insert("NAMESPACE", string(&self.namespace));
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), string(v)))
            .collect();
        fields.insert(
            "LABELS",
            Value {
                kind: Some(Kind::StructValue(Struct { fields: labels })),
            },
        );
        fields.insert(
            "INTERCEPTION_MODE",
            string(&self.interception_mode.to_string()),
        );
        if let Some(sa) = &self.service_account {
            fields.insert("SERVICE_ACCOUNT", string(sa));
        }
        if let Some(port) = self.http_proxy_port {
            fields.insert("HTTP_PROXY_PORT", string(&port.to_string()));
        }
        if let Some(ip) = self.app_ip {
            fields.insert("MESH_APP_IP", string(&ip.to_string()));
        }
        if !self.gateway_ports.is_empty() {
            let ports: Vec<String> = self
                .gateway_ports
                .iter()
                .map(|(p, b)| format!("{p}={b}"))
                .collect();
            fields.insert("MESH_GATEWAY_PORTS", string(&ports.join(",")));
        }
        Node {
            id: self.id.clone(),
            user_agent_name: "mesh-proxy".to_owned(),
            metadata: Some(Struct {
                fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            }),
            ..Node::default()
        }
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

/// Parses `k=v,k=v` (empty input gives an empty map).
pub fn parse_labels(input: &str) -> Result<BTreeMap<String, String>, NodeError> {
    pairs(input)?
        .into_iter()
        .map(|(k, v)| Ok((k.to_owned(), v.to_owned())))
        .collect()
}

/// Parses `80=8080,443=8443`.
pub fn parse_port_map(input: &str) -> Result<BTreeMap<u16, u16>, NodeError> {
    let port = |s: &str| {
        s.trim().parse::<u16>().map_err(|_| NodeError::List {
            input: input.to_owned(),
            reason: format!("{s:?} is not a port"),
        })
    };
    pairs(input)?
        .into_iter()
        .map(|(k, v)| Ok((port(k)?, port(v)?)))
        .collect()
}

fn pairs(input: &str) -> Result<Vec<(&str, &str)>, NodeError> {
    input
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v.trim())),
            _ => Err(NodeError::List {
                input: input.to_owned(),
                reason: format!("{item:?} is not k=v"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_node_id() {
        let n =
            NodeInfo::from_id("sidecar~127.0.10.2~messenger-v1.default~default.svc.cluster.local")
                .unwrap();
        assert_eq!(n.proxy_type, ProxyType::Sidecar);
        assert_eq!(n.ip.to_string(), "127.0.10.2");
        assert_eq!(n.namespace, "default");
        let gw =
            NodeInfo::from_id("router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local")
                .unwrap();
        assert_eq!(gw.proxy_type, ProxyType::Router);
        assert_eq!(gw.namespace, "istio-system");
    }

    #[test]
    fn rejects_malformed_node_ids() {
        for id in [
            "",
            "sidecar~1.2.3.4~a.b",
            "proxy~1.2.3.4~a.b~b.svc",
            "sidecar~nope~a.b~b.svc",
        ] {
            assert!(NodeInfo::from_id(id).is_err(), "{id}");
        }
    }

    #[test]
    fn metadata_follows_the_contract() {
        let mut n =
            NodeInfo::from_id("sidecar~127.0.10.2~g.default~default.svc.cluster.local").unwrap();
        n.labels = parse_labels("app=greeter, version=v1").unwrap();
        n.service_account = Some("greeter".into());
        n.interception_mode = "NONE".parse().unwrap();
        n.http_proxy_port = Some(15080);
        n.app_ip = Some("127.1.10.2".parse().unwrap());
        n.gateway_ports = parse_port_map("80=8080").unwrap();
        let node = n.to_node();
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
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(parse_labels("app").is_err());
        assert!(parse_port_map("80=http").is_err());
        assert!(parse_labels("").unwrap().is_empty());
    }
}

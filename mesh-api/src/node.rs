//! The node contract: who a proxy is to pilot. Defined once, here, and used
//! by both ends of the ADS stream (mesh-proxy builds it from its flags,
//! pilot parses it from the stream's first request), by meshctl and by the
//! tests, so the two sides cannot drift apart (STYLE.md rule 12).
//!
//! Node id, Istio's form: `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`
//! with TYPE `sidecar` or `router`. Metadata is a flat map of strings plus
//! the `LABELS` map (its protobuf `Struct` form is made and read at each
//! side's xDS edge). The namespace rule is Istio's: the `NAMESPACE` metadata
//! value when given, else the `NAMESPACE` of the id's `POD.NAMESPACE` part,
//! else the first label of the id's DNS domain (Istio's fallback for old
//! proxies). docs/architecture.md ("Node identity") lists every form.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Metadata key: the workload's namespace.
pub const NAMESPACE: &str = "NAMESPACE";
/// Metadata key: the workload's labels (a struct, not a string).
pub const LABELS: &str = "LABELS";
/// Metadata key: the workload's service account name.
pub const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
/// Metadata key: `REDIRECT` or `NONE`.
pub const INTERCEPTION_MODE: &str = "INTERCEPTION_MODE";
/// Metadata key: NONE mode, the port of the outbound HTTP-proxy listener.
pub const HTTP_PROXY_PORT: &str = "HTTP_PROXY_PORT";
/// Metadata key: NONE mode, the IP the application listens on.
pub const MESH_APP_IP: &str = "MESH_APP_IP";
/// Metadata key: gateways, `80=8080,443=8443` (server port = bound port).
pub const MESH_GATEWAY_PORTS: &str = "MESH_GATEWAY_PORTS";

/// Every string-valued metadata key of the contract.
pub const STRING_KEYS: [&str; 6] = [
    NAMESPACE,
    SERVICE_ACCOUNT,
    INTERCEPTION_MODE,
    HTTP_PROXY_PORT,
    MESH_APP_IP,
    MESH_GATEWAY_PORTS,
];

/// The DNS domain Kubernetes gives a namespace: `NAMESPACE.svc.cluster.local`.
pub fn dns_domain(namespace: &str) -> String {
    format!("{namespace}.svc.cluster.local")
}

/// A node id or metadata value that breaks the contract. The message is fit
/// to send back to the proxy that sent it.
/// Longest node id pilot accepts, in bytes. Istio's ids are about 100
/// bytes (`sidecar~IP~POD.NS~NS.svc.cluster.local`).
pub const MAX_NODE_ID_BYTES: usize = 1024;

/// Largest node metadata pilot accepts, encoded, in bytes. An Istio
/// agent's metadata (labels, annotations, versions) is a few KiB.
pub const MAX_NODE_METADATA_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// No node was sent at all.
    #[error("the first request carries no node")]
    Missing,
    /// The id is not `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
    #[error("invalid node id {id:?}: {why}")]
    Id {
        /// The id as sent.
        id: String,
        /// What is wrong with it.
        why: String,
    },
    /// A metadata value has the wrong form.
    #[error("invalid node metadata {key}: {why}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with its value.
        why: String,
    },
    /// The node id or metadata is over its size limit
    /// ([`MAX_NODE_ID_BYTES`], [`MAX_NODE_METADATA_BYTES`]).
    #[error("node {what} of {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// `id` or `metadata`.
        what: &'static str,
        /// Its size as sent.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A `k=v,k=v` list (labels, port map) is malformed.
    #[error("invalid list {input:?}: {why}")]
    List {
        /// The list as given.
        input: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Sidecar or gateway: the TYPE of the node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyType {
    /// `sidecar`: beside one workload.
    Sidecar,
    /// `router`: an ingress, egress or east-west gateway.
    Router,
}

impl ProxyType {
    /// The word in the node id.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Sidecar => "sidecar",
            ProxyType::Router => "router",
        }
    }
}

impl fmt::Display for ProxyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How traffic reaches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InterceptionMode {
    /// iptables capture to 15001/15006 (`mesh-proxy init`).
    #[default]
    Redirect,
    /// No capture: the app uses the sidecar as an HTTP proxy (loopback mode).
    None,
}

impl InterceptionMode {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            InterceptionMode::Redirect => "REDIRECT",
            InterceptionMode::None => "NONE",
        }
    }
}

impl fmt::Display for InterceptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InterceptionMode {
    type Err = NodeError;

    /// `REDIRECT` or `NONE`, in any case (Istio takes both spellings).
    fn from_str(s: &str) -> Result<Self, NodeError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "REDIRECT" => Ok(InterceptionMode::Redirect),
            "NONE" => Ok(InterceptionMode::None),
            _ => Err(NodeError::Metadata {
                key: INTERCEPTION_MODE,
                why: format!("{s:?} is not REDIRECT or NONE"),
            }),
        }
    }
}

/// The four parts of a node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId {
    /// Sidecar or gateway.
    pub proxy_type: ProxyType,
    /// The node (pod) IP.
    pub ip: IpAddr,
    /// `POD.NAMESPACE` (a pod name may itself contain dots).
    pub pod: String,
    /// `NAMESPACE.svc.cluster.local`.
    pub domain: String,
}

impl NodeId {
    /// The id of pod `pod` in `namespace`, Kubernetes' domain.
    pub fn new(proxy_type: ProxyType, ip: IpAddr, pod: &str, namespace: &str) -> NodeId {
        NodeId {
            proxy_type,
            ip,
            pod: format!("{pod}.{namespace}"),
            domain: dns_domain(namespace),
        }
    }

    /// Parses `TYPE~IP~POD.NAMESPACE~DOMAIN`.
    pub fn parse(id: &str) -> Result<NodeId, NodeError> {
        let bad = |why: String| NodeError::Id {
            id: id.to_string(),
            why,
        };
        let parts: Vec<&str> = id.split('~').collect();
        let [kind, ip, pod, domain] = parts.as_slice() else {
            return Err(bad(
                "expected TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local".into(),
            ));
        };
        let proxy_type = match *kind {
            "sidecar" => ProxyType::Sidecar,
            "router" => ProxyType::Router,
            other => {
                return Err(bad(format!(
                    "unknown proxy type {other:?} (sidecar or router)"
                )))
            }
        };
        let ip = ip
            .parse()
            .map_err(|_| bad(format!("{ip:?} is not an IP address")))?;
        Ok(NodeId {
            proxy_type,
            ip,
            pod: pod.to_string(),
            domain: domain.to_string(),
        })
    }

    /// The namespace the id itself names: of `POD.NAMESPACE`, else the first
    /// label of a dotted domain; `None` when it names none.
    pub fn namespace(&self) -> Option<&str> {
        let from_pod = self.pod.rsplit_once('.').map(|(_, ns)| ns);
        let from_domain = || {
            self.domain
                .split_once('.')
                .map(|(ns, _)| ns)
                .filter(|ns| !ns.is_empty())
        };
        from_pod.filter(|ns| !ns.is_empty()).or_else(from_domain)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}~{}~{}~{}",
            self.proxy_type, self.ip, self.pod, self.domain
        )
    }
}

/// Node metadata as plain strings: every key but `LABELS`, whose value is
/// a struct of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetadata {
    /// String-valued keys (`NAMESPACE`, `HTTP_PROXY_PORT`, ...).
    pub values: BTreeMap<String, String>,
    /// The `LABELS` struct.
    pub labels: BTreeMap<String, String>,
}

impl NodeMetadata {
    /// The trimmed, non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// A proxy's identity and workload facts, as the contract defines them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The full node id, as sent.
    pub id: String,
    /// Sidecar or gateway.
    pub proxy_type: ProxyType,
    /// The node IP (second part of the id).
    pub ip: IpAddr,
    /// `POD.NAMESPACE` (third part of the id).
    pub pod: String,
    /// The workload's namespace (the rule in this module's doc).
    pub namespace: String,
    /// The workload's labels.
    pub labels: BTreeMap<String, String>,
    /// Service account name, if given.
    pub service_account: Option<String>,
    /// REDIRECT (default) or NONE.
    pub interception_mode: InterceptionMode,
    /// NONE mode: port of the outbound HTTP-proxy listener on the node IP.
    pub http_proxy_port: Option<u16>,
    /// NONE mode: the IP the application listens on, when not the node IP.
    pub app_ip: Option<IpAddr>,
    /// Gateways: Gateway server port -> port actually bound.
    pub gateway_ports: BTreeMap<u16, u16>,
    /// Where the proxy runs (Envoy's `Node.locality`, mesh-proxy
    /// `--locality`); not metadata, so [`Node::parse`] leaves it `None`.
    pub locality: Option<Locality>,
}

/// Envoy's `Locality`: `REGION/ZONE/SUBZONE`, the later parts optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Locality {
    /// The region, e.g. `us-east1`.
    pub region: String,
    /// The zone inside the region, e.g. `us-east1-b`.
    pub zone: String,
    /// The sub-zone inside the zone (a rack, a node pool).
    pub sub_zone: String,
}

impl FromStr for Locality {
    type Err = NodeError;

    /// `REGION`, `REGION/ZONE` or `REGION/ZONE/SUBZONE` (Istio's
    /// `istio-locality` form); a part may be empty but not the region.
    fn from_str(s: &str) -> Result<Self, NodeError> {
        let bad = |why: &str| NodeError::List {
            input: s.to_string(),
            why: why.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('/').map(str::trim).collect();
        if parts.len() > 3 {
            return Err(bad("expected REGION/ZONE/SUBZONE"));
        }
        let part = |i: usize| parts.get(i).map_or(String::new(), |p| (*p).to_string());
        let locality = Locality {
            region: part(0),
            zone: part(1),
            sub_zone: part(2),
        };
        if locality.region.is_empty() {
            return Err(bad("the region is empty"));
        }
        Ok(locality)
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.region, self.zone, self.sub_zone)
    }
}

impl Node {
    /// Parses a node id and its metadata. Every failure is a reason fit to
    /// send back to the proxy; nothing here panics on what a client sends.
    pub fn parse(id: &str, meta: &NodeMetadata) -> Result<Node, NodeError> {
        let parsed = NodeId::parse(id)?;
        let namespace = meta
            .get(NAMESPACE)
            .or_else(|| parsed.namespace())
            .ok_or_else(|| NodeError::Id {
                id: id.to_string(),
                why: "no namespace: neither POD.NAMESPACE, the domain nor NAMESPACE metadata names one"
                    .into(),
            })?
            .to_string();
        let interception_mode = meta
            .get(INTERCEPTION_MODE)
            .map(str::parse)
            .transpose()?
            .unwrap_or_default();
        let http_proxy_port = meta
            .get(HTTP_PROXY_PORT)
            .map(|p| {
                p.parse::<u16>().map_err(|_| NodeError::Metadata {
                    key: HTTP_PROXY_PORT,
                    why: format!("{p:?} is not a port"),
                })
            })
            .transpose()?;
        let app_ip = meta
            .get(MESH_APP_IP)
            .map(|ip| {
                ip.parse::<IpAddr>().map_err(|_| NodeError::Metadata {
                    key: MESH_APP_IP,
                    why: format!("{ip:?} is not an IP address"),
                })
            })
            .transpose()?;
        let gateway_ports = meta
            .get(MESH_GATEWAY_PORTS)
            .map(parse_port_map)
            .transpose()
            .map_err(|e| NodeError::Metadata {
                key: MESH_GATEWAY_PORTS,
                why: e.to_string(),
            })?
            .unwrap_or_default();
        Ok(Node {
            id: id.to_string(),
            proxy_type: parsed.proxy_type,
            ip: parsed.ip,
            pod: parsed.pod,
            namespace,
            labels: meta.labels.clone(),
            service_account: meta.get(SERVICE_ACCOUNT).map(str::to_string),
            interception_mode,
            http_proxy_port,
            app_ip,
            gateway_ports,
            locality: None,
        })
    }

    /// The metadata this node sends: every key it has a value for.
    /// [`Node::parse`] of the id and this metadata gives the node back.
    pub fn metadata(&self) -> NodeMetadata {
        let mut values = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            values.insert(key.to_string(), value);
        };
        put(NAMESPACE, self.namespace.clone());
        put(INTERCEPTION_MODE, self.interception_mode.to_string());
        if let Some(sa) = &self.service_account {
            put(SERVICE_ACCOUNT, sa.clone());
        }
        if let Some(port) = self.http_proxy_port {
            put(HTTP_PROXY_PORT, port.to_string());
        }
        if let Some(ip) = self.app_ip {
            put(MESH_APP_IP, ip.to_string());
        }
        if !self.gateway_ports.is_empty() {
            put(MESH_GATEWAY_PORTS, format_port_map(&self.gateway_ports));
        }
        NodeMetadata {
            values,
            labels: self.labels.clone(),
        }
    }

    /// The IP the application listens on: `MESH_APP_IP`, else the node IP.
    pub fn workload_ip(&self) -> IpAddr {
        self.app_ip.unwrap_or(self.ip)
    }

    /// The port a gateway server port is bound to on this proxy.
    pub fn gateway_port(&self, port: u32) -> u32 {
        u16::try_from(port)
            .ok()
            .and_then(|p| self.gateway_ports.get(&p))
            .map_or(port, |bound| u32::from(*bound))
    }
}

/// Parses `k=v,k=v` (empty input gives an empty map).
pub fn parse_labels(input: &str) -> Result<BTreeMap<String, String>, NodeError> {
    pairs(input)?
        .into_iter()
        .map(|(k, v)| Ok((k.to_string(), v.to_string())))
        .collect()
}

/// Labels as `k=v,k=v`, for `--labels`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `80=8080,443=8443`.
pub fn parse_port_map(input: &str) -> Result<BTreeMap<u16, u16>, NodeError> {
    let port = |s: &str| {
        s.parse::<u16>().map_err(|_| NodeError::List {
            input: input.to_string(),
            why: format!("{s:?} is not a port"),
        })
    };
    pairs(input)?
        .into_iter()
        .map(|(k, v)| Ok((port(k)?, port(v)?)))
        .collect()
}

/// A port map as `80=8080,443=8443`.
pub fn format_port_map(ports: &BTreeMap<u16, u16>) -> String {
    ports
        .iter()
        .map(|(p, b)| format!("{p}={b}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn pairs(input: &str) -> Result<Vec<(&str, &str)>, NodeError> {
    input
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v.trim())),
            _ => Err(NodeError::List {
                input: input.to_string(),
                why: format!("{item:?} is not k=v"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests;

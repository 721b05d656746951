//! The proxy model: who is asking for config. `xds/node.rs` turns the Envoy
//! `Node` of an ADS stream into a [`Proxy`]; the translator reads only this.
//!
//! Node id form (Istio's): `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`,
//! metadata keys as in docs/architecture.md ("Node identity").

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::NodeError;

/// What kind of proxy a node is (the TYPE in its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// A workload's sidecar (`sidecar~...`).
    Sidecar,
    /// A gateway (`router~...`).
    Router,
}

/// How traffic reaches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptionMode {
    /// iptables capture to 15001/15006 (issue 3).
    Redirect,
    /// No capture: the app uses the sidecar as an HTTP proxy (loopback mode).
    None,
}

/// Node metadata reduced to plain strings; LABELS is the only struct value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetadata {
    /// String-valued keys (`NAMESPACE`, `HTTP_PROXY_PORT`, ...).
    pub values: BTreeMap<String, String>,
    /// The `LABELS` struct.
    pub labels: BTreeMap<String, String>,
}

/// A connected proxy as the translator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The full node id, as sent.
    pub node_id: String,
    /// Sidecar or gateway.
    pub kind: ProxyKind,
    /// The node IP (second part of the id).
    pub ip: IpAddr,
    /// `POD.NAMESPACE` (third part of the id).
    pub pod: String,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's labels.
    pub labels: BTreeMap<String, String>,
    /// Service account name, if given.
    pub service_account: Option<String>,
    /// REDIRECT (default) or NONE.
    pub interception_mode: InterceptionMode,
    /// NONE mode: port of the outbound HTTP-proxy listener on the node IP.
    pub http_proxy_port: Option<u16>,
    /// NONE mode: the IP the application listens on (default: the node IP).
    pub app_ip: IpAddr,
    /// Gateways: Gateway server port -> port actually bound.
    pub gateway_ports: BTreeMap<u32, u32>,
}

impl Proxy {
    /// Parse a node id and its metadata. Every failure is a reason fit to
    /// send back to the proxy; nothing here panics on what a client sends.
    pub fn parse(node_id: &str, meta: &NodeMetadata) -> Result<Proxy, NodeError> {
        let bad = |why: String| NodeError::Id {
            id: node_id.to_string(),
            why,
        };
        let parts: Vec<&str> = node_id.split('~').collect();
        let [kind, ip, pod, domain] = parts.as_slice() else {
            return Err(bad(
                "expected TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local".into(),
            ));
        };
        let kind = match *kind {
            "sidecar" => ProxyKind::Sidecar,
            "router" => ProxyKind::Router,
            other => return Err(bad(format!("unknown proxy type {other:?}"))),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| bad(format!("{ip:?} is not an IP address")))?;
        let id_namespace = pod
            .split_once('.')
            .map(|(_, ns)| ns)
            .or_else(|| domain.split('.').next())
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default");
        let value = |key: &str| {
            meta.values
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let namespace = value("NAMESPACE").unwrap_or(id_namespace).to_string();
        let interception_mode = match value("INTERCEPTION_MODE") {
            None | Some("REDIRECT") => InterceptionMode::Redirect,
            Some("NONE") => InterceptionMode::None,
            Some(other) => {
                return Err(NodeError::Metadata {
                    key: "INTERCEPTION_MODE",
                    why: format!("{other:?} is not REDIRECT or NONE"),
                })
            }
        };
        let http_proxy_port = value("HTTP_PROXY_PORT")
            .map(|p| {
                p.parse::<u16>().map_err(|_| NodeError::Metadata {
                    key: "HTTP_PROXY_PORT",
                    why: format!("{p:?} is not a port"),
                })
            })
            .transpose()?;
        let app_ip = value("MESH_APP_IP")
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| NodeError::Metadata {
                    key: "MESH_APP_IP",
                    why: format!("{p:?} is not an IP address"),
                })
            })
            .transpose()?
            .unwrap_or(ip);
        let gateway_ports = value("MESH_GATEWAY_PORTS")
            .map(parse_port_map)
            .transpose()?
            .unwrap_or_default();
        Ok(Proxy {
            node_id: node_id.to_string(),
            kind,
            ip,
            pod: pod.to_string(),
            namespace,
            labels: meta.labels.clone(),
            service_account: value("SERVICE_ACCOUNT").map(str::to_string),
            interception_mode,
            http_proxy_port,
            app_ip,
            gateway_ports,
        })
    }

    /// The port a gateway server port is bound to on this proxy.
    pub fn gateway_port(&self, port: u32) -> u32 {
        self.gateway_ports.get(&port).copied().unwrap_or(port)
    }
}

/// `80=8080,443=8443` -> {80: 8080, 443: 8443}.
fn parse_port_map(text: &str) -> Result<BTreeMap<u32, u32>, NodeError> {
    let bad = |why: String| NodeError::Metadata {
        key: "MESH_GATEWAY_PORTS",
        why,
    };
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("{pair:?} is not PORT=PORT")))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map(u32::from)
                .map_err(|_| bad(format!("{p:?} is not a port")))
        };
        map.insert(parse(from)?, parse(to)?);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> NodeMetadata {
        NodeMetadata {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: BTreeMap::from([("app".to_string(), "greeter".to_string())]),
        }
    }

    #[test]
    fn parses_a_none_mode_sidecar() {
        let m = meta(&[
            ("INTERCEPTION_MODE", "NONE"),
            ("HTTP_PROXY_PORT", "15080"),
            ("MESH_APP_IP", "127.1.10.1"),
            ("SERVICE_ACCOUNT", "greeter"),
        ]);
        let p = Proxy::parse(
            "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local",
            &m,
        )
        .unwrap();
        assert_eq!(p.kind, ProxyKind::Sidecar);
        assert_eq!(p.ip.to_string(), "127.0.10.1");
        assert_eq!(p.namespace, "default");
        assert_eq!(p.interception_mode, InterceptionMode::None);
        assert_eq!(p.http_proxy_port, Some(15080));
        assert_eq!(p.app_ip.to_string(), "127.1.10.1");
        assert_eq!(p.service_account.as_deref(), Some("greeter"));
        assert_eq!(p.labels["app"], "greeter");
    }

    #[test]
    fn defaults_come_from_the_id() {
        let p = Proxy::parse(
            "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
            &meta(&[("MESH_GATEWAY_PORTS", "80=8080, 443=8443")]),
        )
        .unwrap();
        assert_eq!(p.kind, ProxyKind::Router);
        assert_eq!(p.namespace, "istio-system");
        assert_eq!(p.interception_mode, InterceptionMode::Redirect);
        assert_eq!(p.app_ip, p.ip);
        assert_eq!(p.gateway_port(80), 8080);
        assert_eq!(p.gateway_port(443), 8443);
        assert_eq!(p.gateway_port(9000), 9000);
    }

    #[test]
    fn rejects_bad_ids_and_metadata() {
        let none = NodeMetadata::default();
        for id in [
            "",
            "sidecar~1.2.3.4",
            "pod~1.2.3.4~a.b~b.svc",
            "sidecar~nope~a.b~b.svc",
        ] {
            assert!(Proxy::parse(id, &none).is_err(), "{id} should fail");
        }
        let id = "sidecar~1.2.3.4~a.b~b.svc.cluster.local";
        assert!(Proxy::parse(id, &meta(&[("HTTP_PROXY_PORT", "99999")])).is_err());
        assert!(Proxy::parse(id, &meta(&[("INTERCEPTION_MODE", "TPROXY")])).is_err());
        assert!(Proxy::parse(id, &meta(&[("MESH_GATEWAY_PORTS", "80")])).is_err());
    }
}

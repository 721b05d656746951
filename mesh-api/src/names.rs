//! The names that cross the ADS stream: type URLs and the names of the
//! resources pilot sends, in Istio's shapes so that Envoy users recognise
//! them (docs/architecture.md, "What pilot sends"). Defined once, here, for
//! pilot (which makes them), mesh-proxy and meshctl (which read them) and
//! the tests (STYLE.md rule 12).

use std::fmt;

/// CDS type URL.
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// EDS type URL.
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// LDS type URL.
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// RDS type URL.
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// SDS type URL (secrets; not served yet).
pub const SECRET_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The cluster that drops every connection.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
/// The ORIGINAL_DST cluster for outbound traffic to unknown destinations.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
/// The ORIGINAL_DST cluster for inbound traffic to ports with no listener.
pub const INBOUND_PASSTHROUGH_CLUSTER: &str = "InboundPassthroughCluster";

/// The outbound capture listener on 15001.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// The inbound capture listener on 15006.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";

/// The route config of a NONE-mode sidecar's HTTP-proxy listener.
pub const HTTP_PROXY_ROUTE: &str = "http_proxy";
/// The catch-all virtual host of outbound route configs (ALLOW_ANY).
pub const ALLOW_ANY_VHOST: &str = "allow_any";
/// The catch-all virtual host of outbound route configs (REGISTRY_ONLY).
pub const BLOCK_ALL_VHOST: &str = "block_all";

/// Port the outbound capture listener binds (Istio's 15001).
pub const OUTBOUND_CAPTURE_PORT: u16 = 15001;
/// Port the inbound capture listener binds (Istio's 15006).
pub const INBOUND_CAPTURE_PORT: u16 = 15006;
/// Pilot's plaintext xDS port.
pub const XDS_PORT: u16 = 15010;
/// The proxy's admin port (loopback only).
pub const ADMIN_PORT: u16 = 15000;
/// Ports of the proxy itself that capture never takes: admin, status,
/// health, Prometheus.
pub const PROXY_PORTS: [u16; 4] = [15000, 15020, 15021, 15090];

/// A cluster name Istio's way: `outbound|PORT|SUBSET|HOST` or `inbound|PORT||`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterName<'a> {
    /// `outbound|PORT|SUBSET|HOST` (SUBSET empty for the whole service).
    Outbound {
        /// Service port.
        port: u32,
        /// Subset name, `""` for none.
        subset: &'a str,
        /// Service host (FQDN).
        host: &'a str,
    },
    /// `inbound|PORT||`.
    Inbound {
        /// The workload's port.
        port: u32,
    },
}

impl<'a> ClusterName<'a> {
    /// Reads a cluster name; `None` for names of other shapes.
    pub fn parse(name: &'a str) -> Option<ClusterName<'a>> {
        let mut parts = name.splitn(4, '|');
        let direction = parts.next()?;
        let port = parts.next()?.parse().ok()?;
        let subset = parts.next()?;
        let host = parts.next()?;
        match direction {
            "outbound" => Some(ClusterName::Outbound { port, subset, host }),
            "inbound" if subset.is_empty() && host.is_empty() => {
                Some(ClusterName::Inbound { port })
            }
            _ => None,
        }
    }
}

impl fmt::Display for ClusterName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterName::Outbound { port, subset, host } => {
                write!(f, "outbound|{port}|{subset}|{host}")
            }
            ClusterName::Inbound { port } => write!(f, "inbound|{port}||"),
        }
    }
}

/// `outbound|PORT|SUBSET|HOST`.
pub fn outbound_cluster(port: u32, subset: &str, host: &str) -> String {
    ClusterName::Outbound { port, subset, host }.to_string()
}

/// `inbound|PORT||`: the cluster to the workload's own port, and the name of
/// the inline route config of that port's inbound HTTP chain.
pub fn inbound_cluster(port: u32) -> String {
    ClusterName::Inbound { port }.to_string()
}

/// Parses `outbound|PORT|SUBSET|HOST` into (port, subset, host).
pub fn parse_outbound_cluster(name: &str) -> Option<(u32, &str, &str)> {
    match ClusterName::parse(name)? {
        ClusterName::Outbound { port, subset, host } => Some((port, subset, host)),
        ClusterName::Inbound { .. } => None,
    }
}

/// A listener on one address: `IP_PORT` (e.g. `0.0.0.0_9080`, `127.0.10.1_15080`).
pub fn listener_name(ip: impl fmt::Display, port: u32) -> String {
    format!("{ip}_{port}")
}

/// The route config of outbound HTTP port PORT on sidecars: `PORT`.
pub fn outbound_route(port: u32) -> String {
    port.to_string()
}

/// The route config of a gateway's server port P: `http.P` (Istio's name).
pub fn gateway_route(port: u32) -> String {
    format!("http.{port}")
}

/// Key of the `filter_metadata` entry (on routes, clusters, filter chains)
/// that says which config object a resource was made from, as Istio does.
pub const ISTIO_METADATA: &str = "istio";
/// Field of [`ISTIO_METADATA`]: the object's path, see [`config_path`].
pub const CONFIG_FIELD: &str = "config";
/// Key of the `filter_metadata` entry pilot puts on resources the mesh made
/// up itself (`block_all`, `BlackHoleCluster`): why they refuse traffic.
pub const MESH_METADATA: &str = "mesh";
/// Field of [`MESH_METADATA`]: a short reason, e.g. `outboundTrafficPolicy
/// REGISTRY_ONLY`.
pub const REASON_FIELD: &str = "reason";
/// The response header that carries why the mesh itself answered a request
/// (`UO overflow: DestinationRule default/reviews maxConnections=1`).
pub const REASON_HEADER: &str = "x-mesh-reason";

/// Istio's path of a config object in `istio.config` metadata:
/// `/apis/networking.istio.io/v1/namespaces/NS/virtual-service/NAME` for
/// kind `VirtualService`.
pub fn config_path(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "/apis/networking.istio.io/v1/namespaces/{namespace}/{}/{name}",
        kebab(kind)
    )
}

/// Reads a [`config_path`] back as `Kind namespace/name` for messages
/// (`VirtualService default/reviews`); `None` for other shapes.
pub fn describe_config_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/apis/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [_group, _version, "namespaces", namespace, kind, name] = parts.as_slice() else {
        return None;
    };
    let kind: String = kind
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    Some(format!("{kind} {namespace}/{name}"))
}

/// `VirtualService` -> `virtual-service`.
fn kebab(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_name_the_object_both_ways() {
        let path = config_path("DestinationRule", "default", "reviews");
        assert_eq!(
            path,
            "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"
        );
        assert_eq!(
            describe_config_path(&path).as_deref(),
            Some("DestinationRule default/reviews")
        );
        // Istio writes the version the object was stored with.
        let old = "/apis/networking.istio.io/v1alpha3/namespaces/shop/virtual-service/cart";
        assert_eq!(
            describe_config_path(old).as_deref(),
            Some("VirtualService shop/cart")
        );
        assert_eq!(describe_config_path("reviews"), None);
    }

    #[test]
    fn cluster_names_round_trip() {
        let name = outbound_cluster(9080, "v1", "messenger.default.svc.cluster.local");
        assert_eq!(name, "outbound|9080|v1|messenger.default.svc.cluster.local");
        assert_eq!(
            parse_outbound_cluster(&name),
            Some((9080, "v1", "messenger.default.svc.cluster.local"))
        );
        assert_eq!(inbound_cluster(9080), "inbound|9080||");
        assert_eq!(
            ClusterName::parse("inbound|9080||"),
            Some(ClusterName::Inbound { port: 9080 })
        );
        assert_eq!(parse_outbound_cluster("inbound|9080||"), None);
        for other in [
            "",
            "outbound|x|v1|h",
            "inbound|9080|v1|",
            PASSTHROUGH_CLUSTER,
        ] {
            assert_eq!(ClusterName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn listener_and_route_names() {
        assert_eq!(listener_name("0.0.0.0", 9080), "0.0.0.0_9080");
        assert_eq!(outbound_route(9080), "9080");
        assert_eq!(gateway_route(80), "http.80");
    }
}

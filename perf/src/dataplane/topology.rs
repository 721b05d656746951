//! Where everything of a run lives (loopback only) and the mesh config
//! pilot serves the two sidecar pairs from.
//!
//! ```text
//!  load ─────────────────────────────────────────────────────────────► upstream 127.1.60.2
//!  load ─► mesh-proxy 127.0.60.1:15080 ─► mesh-proxy 127.0.60.2:PORT ─► upstream   (service bench-mesh)
//!  load ─► Envoy      127.0.60.3:15080 ─► Envoy      127.0.60.4:PORT ─► upstream   (service bench-envoy)
//!                 client sidecar            server sidecar
//!  pilot 127.0.60.100:15010 (ADS) configures all four sidecars
//! ```
//!
//! Ports of the upstream (and of each service): 9080 HTTP/1.1 (`HTTP`),
//! 9081 h2c (`HTTP2`), 9082 gRPC (`GRPC`), 9090 TCP echo (`TCP`). A
//! NONE-mode sidecar has no outbound TCP listener (pilot gives it only the
//! HTTP proxy listener), so TCP echo can reach the server sidecar's inbound
//! `tcp_proxy` but never go through a client sidecar.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

/// Node IP of pilot's listeners.
pub const PILOT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 60, 100);
/// Pilot's ADS port.
pub const XDS_PORT: u16 = 15010;
/// Pilot's debug port.
pub const DEBUG_PORT: u16 = 15014;
/// Where the upstream listens, for every path.
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(127, 1, 60, 2);
/// Every sidecar's admin port, on its node IP.
pub const ADMIN_PORT: u16 = 15000;
/// The client sidecars' HTTP proxy listener port.
pub const HTTP_PROXY_PORT: u16 = 15080;

/// A port of the upstream and of each benchmark service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    /// Port number (the same on the upstream and the services).
    pub number: u16,
    /// Its name in the ServiceEntry.
    pub name: &'static str,
    /// Its Istio protocol.
    pub protocol: &'static str,
}

/// HTTP/1.1 service port.
pub const HTTP1: ServicePort = ServicePort {
    number: 9080,
    name: "http",
    protocol: "HTTP",
};
/// h2c service port: the sidecars speak HTTP/2 to each other.
pub const HTTP2: ServicePort = ServicePort {
    number: 9081,
    name: "http2",
    protocol: "HTTP2",
};
/// gRPC service port.
pub const GRPC: ServicePort = ServicePort {
    number: 9082,
    name: "grpc",
    protocol: "GRPC",
};
/// TCP echo port.
pub const TCP: ServicePort = ServicePort {
    number: 9090,
    name: "tcp",
    protocol: "TCP",
};
/// All of them, as the ServiceEntries list them.
pub const PORTS: [ServicePort; 4] = [HTTP1, HTTP2, GRPC, TCP];

/// One sidecar pair and the service its server side registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// `mesh` or `envoy`: names the service, pods and logs.
    pub tag: &'static str,
    /// Client sidecar's node IP.
    pub client_ip: Ipv4Addr,
    /// Server sidecar's node IP.
    pub server_ip: Ipv4Addr,
}

/// The mesh-proxy pair.
pub const MESH_PAIR: Pair = Pair {
    tag: "mesh",
    client_ip: Ipv4Addr::new(127, 0, 60, 1),
    server_ip: Ipv4Addr::new(127, 0, 60, 2),
};
/// The Envoy pair.
pub const ENVOY_PAIR: Pair = Pair {
    tag: "envoy",
    client_ip: Ipv4Addr::new(127, 0, 60, 3),
    server_ip: Ipv4Addr::new(127, 0, 60, 4),
};

impl Pair {
    /// The service's short name, `bench-TAG`.
    pub fn service(&self) -> String {
        format!("bench-{}", self.tag)
    }

    /// Host header / `:authority` for a port of the service, as the client
    /// sidecar's `http_proxy` route config knows it.
    pub fn authority(&self, port: ServicePort) -> String {
        format!("{}:{}", self.service(), port.number)
    }

    /// The client sidecar's HTTP proxy listener.
    pub fn proxy_listener(&self) -> SocketAddr {
        SocketAddr::from((self.client_ip, HTTP_PROXY_PORT))
    }

    /// The server sidecar's inbound listener for `port`.
    pub fn inbound(&self, port: ServicePort) -> SocketAddr {
        SocketAddr::from((self.server_ip, port.number))
    }

    /// Node id of the client (`server == false`) or server sidecar.
    pub fn node_id(&self, server: bool) -> String {
        let (ip, pod) = self.node(server);
        format!("sidecar~{ip}~{pod}.default~default.svc.cluster.local")
    }

    /// Node IP and pod name of one side.
    pub fn node(&self, server: bool) -> (Ipv4Addr, String) {
        if server {
            (self.server_ip, format!("{}-server", self.service()))
        } else {
            (self.client_ip, format!("{}-client", self.service()))
        }
    }

    /// The `app` label of one side: the server's is the one its service
    /// selects.
    pub fn app_label(&self, server: bool) -> String {
        if server {
            self.service()
        } else {
            format!("{}-client", self.service())
        }
    }
}

/// An upstream address for `port`.
pub fn upstream(port: ServicePort) -> SocketAddr {
    SocketAddr::from((UPSTREAM_IP, port.number))
}

/// The ServiceEntry and WorkloadEntry of a pair's service.
pub fn service_yaml(pair: &Pair) -> String {
    let svc = pair.service();
    let ports: String = PORTS
        .iter()
        .map(|p| {
            format!(
                "  - {{number: {}, name: {}, protocol: {}}}\n",
                p.number, p.name, p.protocol
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {svc}, namespace: default}}
spec:
  hosts: [{svc}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
{ports}  workloadSelector:
    labels: {{app: {svc}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {svc}-server, namespace: default}}
spec:
  address: {ip}
  labels: {{app: {svc}}}
  serviceAccount: bench
",
        ip = pair.server_ip,
    )
}

/// Write pilot's config directory: one file per pair.
pub fn write_config(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for pair in [MESH_PAIR, ENVOY_PAIR] {
        std::fs::write(
            dir.join(format!("{}.yaml", pair.service())),
            service_yaml(&pair),
        )?;
    }
    Ok(())
}

/// An Envoy bootstrap for one side of the Envoy pair, as
/// `mesh-pilot/tests/envoy_interop.rs` builds it: ADS to pilot, node
/// metadata of a NONE-mode sidecar whose app is the upstream.
pub fn envoy_bootstrap(pair: &Pair, server: bool) -> String {
    let (ip, _) = pair.node(server);
    format!(
        r#"node:
  id: {id}
  cluster: {svc}.default
  metadata:
    NAMESPACE: default
    LABELS: {{app: {app}}}
    SERVICE_ACCOUNT: bench
    INTERCEPTION_MODE: NONE
    HTTP_PROXY_PORT: "{HTTP_PROXY_PORT}"
    MESH_APP_IP: {UPSTREAM_IP}
admin:
  address: {{socket_address: {{address: {ip}, port_value: {ADMIN_PORT}}}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {PILOT_IP}, port_value: {XDS_PORT}}}}}}}
"#,
        id = pair.node_id(server),
        svc = pair.service(),
        app = pair.app_label(server),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_use_distinct_loopback_addresses() {
        let ips = [
            MESH_PAIR.client_ip,
            MESH_PAIR.server_ip,
            ENVOY_PAIR.client_ip,
            ENVOY_PAIR.server_ip,
            PILOT_IP,
            UPSTREAM_IP,
        ];
        for (i, ip) in ips.iter().enumerate() {
            assert!(ip.is_loopback(), "{ip}");
            assert!(!ips[i + 1..].contains(ip), "{ip} used twice");
        }
    }

    #[test]
    fn config_loads_and_validates_with_mesh_api() {
        let file = Path::new("bench-envoy.yaml");
        let (objects, errors) = mesh_api::load_str(file, &service_yaml(&ENVOY_PAIR));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(objects.len(), 2);
        let errors = mesh_api::validate(&objects);
        assert!(errors.is_empty(), "{errors:?}");
        let mesh_api::Object::ServiceEntry(se) = &objects[0].object else {
            panic!("first object is {:?}", objects[0].object);
        };
        assert_eq!(se.spec.ports.len(), PORTS.len());
        assert_eq!(ENVOY_PAIR.authority(GRPC), "bench-envoy:9082");
    }
}

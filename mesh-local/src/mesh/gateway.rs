//! The mesh's gateways as pods of their own, as Istio installs them: a
//! mesh-proxy in router mode (no capture, no app), its Gateway server
//! ports bound where `--gateway-ports` maps them.
//!
//! - `istio-ingressgateway` (`istio-system`, `istio: ingressgateway`):
//!   reached from outside (the test process) on the pod address, ports as
//!   the Kubernetes Service of Istio's default install maps them
//!   ([`INGRESS_PORTS`]): 80 → 8080, 443 → 8443, 15443 (TLS) and 31400
//!   (TCP) as themselves.
//! - `istio-egressgateway` (`istio-system`, `istio: egressgateway`): a
//!   Service with a VIP like any other (ServiceEntry + WorkloadEntry), so
//!   sidecars can route to it, with the ports a scenario asks for.

use std::net::SocketAddr;

use mesh_api::node::ProxyType;

use crate::registry::{Pod, Role};
use crate::workload::{Port, Workload};
use crate::LocalError;

use super::LocalMesh;

/// Port the ingress gateway binds for Gateway port 80.
pub const INGRESS_HTTP_PORT: u16 = 8080;

/// Gateway server port → the port the ingress gateway binds for it (a
/// Kubernetes Service's port → targetPort in Istio's default install).
pub const INGRESS_PORTS: [(u16, u16); 4] =
    [(80, 8080), (443, 8443), (15443, 15443), (31400, 31400)];

/// Name (and Service) of the ingress gateway.
pub const INGRESS_GATEWAY: &str = "istio-ingressgateway";
/// Name (and Service) of the egress gateway.
pub const EGRESS_GATEWAY: &str = "istio-egressgateway";

impl LocalMesh {
    /// Starts the ingress gateway as a pod of its own, its server ports
    /// bound as [`INGRESS_PORTS`] says on the pod address
    /// ([`LocalMesh::ingress_url`], [`LocalMesh::ingress_addr`]).
    pub fn deploy_ingress(&mut self) -> Result<(), LocalError> {
        let gw = Workload::new(INGRESS_GATEWAY, INGRESS_GATEWAY, &["mesh-proxy"])
            .namespace("istio-system")
            .label("istio", "ingressgateway")
            .service_account("istio-ingressgateway-service-account");
        let pod = self.add_pod(&gw, Role::IngressGateway)?;
        self.start_gateway(&pod, &INGRESS_PORTS)
    }

    /// Starts the egress gateway with the Service ports `ports` (each
    /// bound as itself) and registers it like any service.
    pub fn deploy_egress(&mut self, ports: &[Port]) -> Result<(), LocalError> {
        if ports.is_empty() {
            return Err(LocalError::Invalid(
                "the egress gateway needs at least one port".into(),
            ));
        }
        let mut gw = Workload::new(EGRESS_GATEWAY, EGRESS_GATEWAY, &["mesh-proxy"])
            .namespace("istio-system")
            .label("istio", "egressgateway")
            .service_account("istio-egressgateway-service-account");
        gw.ports = ports.to_vec();
        let pod = self.add_pod(&gw, Role::EgressGateway)?;
        let map: Vec<(u16, u16)> = ports.iter().map(|p| (p.number, p.number)).collect();
        self.start_gateway(&pod, &map)
    }

    fn start_gateway(&mut self, pod: &Pod, ports: &[(u16, u16)]) -> Result<(), LocalError> {
        self.ensure_pilot()?;
        let map: Vec<String> = ports
            .iter()
            .map(|(p, bound)| format!("{p}={bound}"))
            .collect();
        let argv = self.proxy_argv(pod, ProxyType::Router, &["--gateway-ports", &map.join(",")])?;
        self.spawn_proxy(pod, &argv)
    }

    /// Where the ingress gateway serves Gateway server port `port` (the pod
    /// address and the bound port), if it runs and maps that port.
    pub fn ingress_addr(&self, port: u16) -> Option<SocketAddr> {
        let pod = self
            .registry
            .pods
            .values()
            .find(|p| p.role == Role::IngressGateway)?;
        let (_, bound) = INGRESS_PORTS.iter().find(|(p, _)| *p == port)?;
        Some(SocketAddr::from((pod.ip, *bound)))
    }
}

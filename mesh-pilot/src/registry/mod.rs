//! The service registry: services and their endpoints, built from
//! `ServiceEntry` + `WorkloadEntry` (the platform-independent registry of
//! DESIGN.md). Pure: a [`ConfigSnapshot`] in, a [`Registry`] out; the
//! translator reads it, never the raw entries.
//!
//! Rules (docs/architecture.md, "Workload → service"): a ServiceEntry with
//! `workloadSelector` selects the WorkloadEntries of its namespace whose
//! labels contain the selector's labels; inline `endpoints` count as well.
//! The endpoint port of a service port is `WorkloadEntry.ports[port.name]`,
//! else `port.targetPort`, else `port.number`.

use std::collections::{BTreeMap, HashMap};

use mesh_api::{Location, Port, Resolution, WorkloadEntrySpec};

use crate::source::ConfigSnapshot;

/// Application protocol of a service port (Istio's protocol names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// `HTTP`, `HTTP_PROXY`.
    Http,
    /// `HTTP2`.
    Http2,
    /// `GRPC`, `GRPC-WEB`.
    Grpc,
    /// `HTTPS`.
    Https,
    /// `TLS`.
    Tls,
    /// `TCP`, `MONGO`, `MYSQL`, `REDIS`, ... anything opaque.
    Tcp,
}

impl Protocol {
    /// Istio compares protocol names case-insensitively; unknown or empty
    /// names are opaque TCP (no HTTP assumptions on unknown bytes).
    pub fn parse(name: &str) -> Protocol {
        match name.to_ascii_uppercase().as_str() {
            "HTTP" | "HTTP_PROXY" => Protocol::Http,
            "HTTP2" => Protocol::Http2,
            "GRPC" | "GRPC-WEB" => Protocol::Grpc,
            "HTTPS" => Protocol::Https,
            "TLS" => Protocol::Tls,
            _ => Protocol::Tcp,
        }
    }

    /// Routed by an HTTP connection manager.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }

    /// Upstream connections must speak HTTP/2.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

/// A port of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Service port number.
    pub number: u32,
    /// Port name (keys `WorkloadEntry.ports`).
    pub name: String,
    /// Protocol.
    pub protocol: Protocol,
    /// `targetPort`, when given.
    pub target_port: Option<u32>,
}

/// How a service's endpoints are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Endpoints are pushed over EDS.
    Eds,
    /// Envoy resolves the endpoint names by DNS, all addresses (STRICT_DNS).
    StrictDns,
    /// Envoy resolves by DNS, first address (LOGICAL_DNS).
    LogicalDns,
    /// Resolution NONE: the proxy forwards to the address the app
    /// connected to (ORIGINAL_DST).
    OriginalDst,
}

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// IP address or host name.
    pub address: String,
    /// Workload labels.
    pub labels: BTreeMap<String, String>,
    /// Service port number -> port on this endpoint.
    pub ports: BTreeMap<u32, u32>,
    /// Load-balancing weight (at least 1).
    pub weight: u32,
    /// Service account of the workload.
    pub service_account: Option<String>,
    /// `namespace/name` of the WorkloadEntry, or `None` for inline endpoints.
    pub workload: Option<String>,
    /// `region/zone/subzone` of the workload, `""` when unknown.
    pub locality: String,
}

/// A service: a host, its ports and endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The host as written in the ServiceEntry (FQDN).
    pub hostname: String,
    /// Namespace of the ServiceEntry.
    pub namespace: String,
    /// `namespace/name` of the ServiceEntry.
    pub source: String,
    /// Virtual IPs (`addresses` that are plain IPs).
    pub addresses: Vec<String>,
    /// `addresses` that are CIDR blocks (`192.0.2.0/24`): TCP connections
    /// to any address in them are this service's.
    pub cidrs: Vec<String>,
    /// Ports, in ServiceEntry order.
    pub ports: Vec<ServicePort>,
    /// How endpoints are found.
    pub discovery: Discovery,
    /// Outside the mesh (`MESH_EXTERNAL`).
    pub external: bool,
    /// `exportTo` with `.` resolved to the ServiceEntry's namespace;
    /// empty means every namespace.
    pub export_to: Vec<String>,
    /// Endpoints, in a stable order.
    pub endpoints: Vec<Endpoint>,
}

impl Service {
    /// The port with this number.
    pub fn port(&self, number: u32) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }
}

/// All services by hostname.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Services keyed by hostname. When two ServiceEntries name the same
    /// host, the first in snapshot order (namespace, name) wins.
    pub services: BTreeMap<String, Service>,
}

/// A port of the workload at some IP: what the sidecar there receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundPort {
    /// The port on the workload.
    pub port: u32,
    /// The protocol of the service port it serves.
    pub protocol: Protocol,
}

impl Registry {
    /// Build the registry from a snapshot.
    pub fn build(config: &ConfigSnapshot) -> Registry {
        let workloads: Vec<_> = config.workload_entries().collect();
        let mut services = BTreeMap::new();
        for se in config.service_entries() {
            let ports: Vec<ServicePort> = se.spec.ports.iter().map(service_port).collect();
            let mut endpoints: Vec<Endpoint> = se
                .spec
                .endpoints
                .iter()
                .map(|e| endpoint(e, &ports, None))
                .collect();
            if let Some(selector) = &se.spec.workload_selector {
                for we in &workloads {
                    if we.namespace == se.namespace
                        && labels_match(&selector.labels, &we.spec.labels)
                    {
                        let id = format!("{}/{}", we.namespace, we.name);
                        endpoints.push(endpoint(we.spec, &ports, Some(id)));
                    }
                }
            }
            endpoints.retain(|e| !e.address.is_empty());
            let (addresses, cidrs): (Vec<String>, Vec<String>) = se
                .spec
                .addresses
                .iter()
                .cloned()
                .partition(|a| a.parse::<std::net::IpAddr>().is_ok());
            let discovery = match se.spec.resolution {
                Some(Resolution::Dns) => Discovery::StrictDns,
                Some(Resolution::DnsRoundRobin) => Discovery::LogicalDns,
                Some(Resolution::Static) => Discovery::Eds,
                // Istio's default; for sidecars, forward to the original
                // destination (workloadSelector entries too: Istio warns
                // that they want STATIC).
                Some(Resolution::None) | None => Discovery::OriginalDst,
                // Refused by validation (dynamic forward proxy, not
                // served yet); a snapshot never holds one.
                Some(Resolution::DynamicDns) => Discovery::OriginalDst,
            };
            for host in &se.spec.hosts {
                services.entry(host.clone()).or_insert_with(|| Service {
                    hostname: host.clone(),
                    namespace: se.namespace.to_string(),
                    source: format!("{}/{}", se.namespace, se.name),
                    addresses: addresses.clone(),
                    cidrs: cidrs.clone(),
                    ports: ports.clone(),
                    discovery,
                    external: se.spec.location == Some(Location::MeshExternal),
                    export_to: resolve_export(&se.spec.export_to, se.namespace),
                    endpoints: endpoints.clone(),
                });
            }
        }
        Registry { services }
    }

    /// The service of a host.
    pub fn service(&self, host: &str) -> Option<&Service> {
        self.services.get(host)
    }

    /// The ports the workload at `ip` serves, as endpoint of any service,
    /// deduplicated by port (the first service's protocol wins).
    pub fn inbound_ports(&self, ip: &str) -> Vec<InboundPort> {
        self.inbound_by_address().remove(ip).unwrap_or_default()
    }

    /// [`Registry::inbound_ports`] of every endpoint address at once, for
    /// an index built once per push.
    pub fn inbound_by_address(&self) -> HashMap<String, Vec<InboundPort>> {
        let mut by_address: HashMap<&str, BTreeMap<u32, Protocol>> = HashMap::new();
        for svc in self.services.values() {
            for ep in &svc.endpoints {
                let by_port = by_address.entry(ep.address.as_str()).or_default();
                for port in &svc.ports {
                    if let Some(p) = ep.ports.get(&port.number) {
                        by_port.entry(*p).or_insert(port.protocol);
                    }
                }
            }
        }
        by_address
            .into_iter()
            .map(|(address, by_port)| {
                let ports = by_port
                    .into_iter()
                    .map(|(port, protocol)| InboundPort { port, protocol })
                    .collect();
                (address.to_string(), ports)
            })
            .collect()
    }
}

fn service_port(p: &Port) -> ServicePort {
    ServicePort {
        number: p.number,
        name: p.name.clone(),
        protocol: Protocol::parse(&p.protocol),
        target_port: p.target_port,
    }
}

fn endpoint(we: &WorkloadEntrySpec, ports: &[ServicePort], workload: Option<String>) -> Endpoint {
    let ports = ports
        .iter()
        .map(|p| {
            let target = we
                .ports
                .get(&p.name)
                .copied()
                .or(p.target_port)
                .unwrap_or(p.number);
            (p.number, target)
        })
        .collect();
    Endpoint {
        address: we.address.clone(),
        labels: we.labels.clone(),
        ports,
        weight: we.weight.unwrap_or(1).max(1),
        service_account: we.service_account.clone(),
        workload,
        locality: we.locality.clone().unwrap_or_default(),
    }
}

/// `exportTo` with `.` meaning the object's own namespace; an empty list
/// (or one with `*`) is every namespace, `~` none.
pub fn resolve_export(export_to: &[String], namespace: &str) -> Vec<String> {
    if export_to.iter().any(|e| e == "*") {
        return Vec::new();
    }
    export_to
        .iter()
        .map(|e| {
            if e == "." {
                namespace.to_string()
            } else {
                e.clone()
            }
        })
        .collect()
}

/// Whether an object with `export_to` (as [`resolve_export`] gives it) is
/// visible to proxies of `namespace`.
pub fn exported_to(export_to: &[String], namespace: &str) -> bool {
    export_to.is_empty() || export_to.iter().any(|e| e == namespace)
}

/// Whether `labels` contain every `selector` label.
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests;

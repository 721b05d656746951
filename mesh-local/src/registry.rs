//! What the runtime knows about its pods and services, and the files it
//! derives from that: each pod's hosts file (service names → VIPs, the
//! kube-dns of this driver), the ServiceEntry/WorkloadEntry YAML through
//! which pilot learns the workloads, and an Envoy sidecar's bootstrap.
//! Pure functions of the registry, unit-tested without root.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use mesh_api::node::{self, NodeId, ProxyType};

use crate::workload::{Port, Workload};

/// A Service: a VIP and the ports of the pods that back it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Virtual IP, 198.19.N.x.
    pub vip: Ipv4Addr,
    /// Union of the backing workloads' ports, by number.
    pub ports: Vec<Port>,
}

impl Service {
    /// `NAME.NAMESPACE.svc.cluster.local`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
}

/// What a pod is in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An app, with or without a sidecar.
    App,
    /// The ingress gateway: reached from outside, not part of any Service
    /// here.
    IngressGateway,
    /// The egress gateway: a Service (`istio-egressgateway.istio-system`)
    /// that sidecars route to, as Istio installs it.
    EgressGateway,
}

/// A running pod.
#[derive(Debug, Clone)]
pub struct Pod {
    /// What was deployed.
    pub workload: Workload,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// Its network namespace.
    pub netns: String,
    /// App or gateway.
    pub role: Role,
}

/// Pods and services of one run.
#[derive(Debug, Default)]
pub struct Registry {
    /// By pod name.
    pub pods: BTreeMap<String, Pod>,
    /// By (namespace, name).
    pub services: BTreeMap<(String, String), Service>,
}

impl Registry {
    /// Adds the pod's ports to its service, creating the service with `vip`
    /// if it is new. Returns true when the service was created.
    pub fn add_to_service(&mut self, w: &Workload, vip: Ipv4Addr) -> bool {
        let key = (w.namespace.clone(), w.service.clone());
        let created = !self.services.contains_key(&key);
        let svc = self.services.entry(key).or_insert_with(|| Service {
            name: w.service.clone(),
            namespace: w.namespace.clone(),
            vip,
            ports: Vec::new(),
        });
        for port in &w.ports {
            if !svc.ports.iter().any(|p| p.number == port.number) {
                svc.ports.push(port.clone());
            }
        }
        created
    }

    /// `/etc/hosts` for `pod`: itself, then every service as
    /// `VIP name.ns name.ns.svc.cluster.local`, plus the short `name` for
    /// services in the pod's own namespace (what a resolv.conf search list
    /// gives a Kubernetes pod).
    pub fn hosts_file(&self, pod: &Pod) -> String {
        let mut out = String::from("# written by mesh-local\n");
        out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str(&format!("{}\t{}\n", pod.ip, pod.workload.name));
        for svc in self.services.values() {
            let short = if svc.namespace == pod.workload.namespace {
                format!(" {}", svc.name)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{}\t{}.{} {}{short}\n",
                svc.vip,
                svc.name,
                svc.namespace,
                svc.fqdn()
            ));
        }
        out
    }

    /// ServiceEntries (with the VIP as `addresses`, selecting `app`) and one
    /// WorkloadEntry per pod: how pilot learns the services and endpoints.
    pub fn mesh_yaml(&self) -> String {
        let mut docs = Vec::new();
        for svc in self.services.values() {
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": svc.name, "namespace": svc.namespace},
                "spec": {
                    "hosts": [svc.fqdn()],
                    "addresses": [svc.vip.to_string()],
                    "location": "MESH_INTERNAL",
                    "resolution": "STATIC",
                    "ports": svc.ports.iter().map(|p| json!({
                        "number": p.number, "name": p.name, "protocol": p.protocol,
                    })).collect::<Vec<_>>(),
                    "workloadSelector": {"labels": {"app": svc.name}},
                },
            }));
        }
        for pod in self
            .pods
            .values()
            .filter(|p| p.role != Role::IngressGateway && p.workload.with_service)
        {
            let w = &pod.workload;
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": w.name, "namespace": w.namespace},
                "spec": {
                    "address": pod.ip.to_string(),
                    "labels": w.labels,
                    "serviceAccount": w.service_account,
                },
            }));
        }
        to_yaml_stream(&docs)
    }
}

/// The node id of `pod`'s proxy (the contract's form).
pub fn node_id(proxy_type: ProxyType, pod: &Pod) -> String {
    let w = &pod.workload;
    NodeId::new(proxy_type, pod.ip.into(), &w.name, &w.namespace).to_string()
}

/// An Envoy bootstrap for a captured sidecar (docs/envoy.md, REDIRECT mode),
/// its node as the contract (`mesh_api::node`) defines it:
/// admin on the pod's loopback, ADS to pilot at `xds`.
pub fn envoy_bootstrap(pod: &Pod, xds: (Ipv4Addr, u16)) -> String {
    let w = &pod.workload;
    let doc = json!({
        "node": {
            "id": node_id(ProxyType::Sidecar, pod),
            "cluster": format!("{}.{}", w.service, w.namespace),
            "metadata": {
                node::NAMESPACE: w.namespace,
                node::LABELS: w.labels,
                node::SERVICE_ACCOUNT: w.service_account,
                node::INTERCEPTION_MODE: node::InterceptionMode::Redirect.as_str(),
            },
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": [{
            "name": "xds-grpc",
            "type": "STATIC",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                },
            },
            "load_assignment": {
                "cluster_name": "xds-grpc",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": xds.0.to_string(), "port_value": xds.1,
                }}}}]}],
            },
        }]},
    });
    to_yaml_stream(&[doc])
}

/// Documents as one YAML stream separated by `---`.
pub fn to_yaml_stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_yaml::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, service: &str, ns: &str, ip: [u8; 4]) -> Pod {
        Pod {
            workload: Workload::new(name, service, &["app"])
                .namespace(ns)
                .label("version", "v1")
                .port("http", 9080, "HTTP"),
            ip: ip.into(),
            netns: format!("e2e1x1-{name}"),
            role: Role::App,
        }
    }

    fn registry() -> Registry {
        let mut reg = Registry::default();
        for (i, p) in [
            pod("greeter-v1", "greeter", "default", [198, 18, 7, 11]),
            pod("messenger-v1", "messenger", "default", [198, 18, 7, 12]),
            pod("ratings-v1", "ratings", "shop", [198, 18, 7, 13]),
        ]
        .into_iter()
        .enumerate()
        {
            reg.add_to_service(&p.workload, [198, 19, 7, 11 + i as u8].into());
            reg.pods.insert(p.workload.name.clone(), p);
        }
        reg
    }

    #[test]
    fn hosts_file_gives_short_names_only_in_the_own_namespace() {
        let reg = registry();
        let hosts = reg.hosts_file(&reg.pods["greeter-v1"]);
        assert!(hosts.contains("198.18.7.11\tgreeter-v1\n"), "{hosts}");
        assert!(hosts.contains(
            "198.19.7.12\tmessenger.default messenger.default.svc.cluster.local messenger\n"
        ));
        assert!(hosts.contains("198.19.7.13\tratings.shop ratings.shop.svc.cluster.local\n"));
        let other = reg.hosts_file(&reg.pods["ratings-v1"]);
        assert!(
            other.contains("ratings.shop.svc.cluster.local ratings\n"),
            "{other}"
        );
    }

    #[test]
    fn second_pod_of_a_service_keeps_the_vip_and_merges_ports() {
        let mut reg = registry();
        let w = Workload::new("messenger-v2", "messenger", &["app"]).port("grpc", 9090, "GRPC");
        assert!(!reg.add_to_service(&w, [198, 19, 7, 99].into()));
        let svc = &reg.services[&("default".to_string(), "messenger".to_string())];
        assert_eq!(svc.vip, Ipv4Addr::new(198, 19, 7, 12));
        let ports: Vec<u16> = svc.ports.iter().map(|p| p.number).collect();
        assert_eq!(ports, [9080, 9090]);
    }

    #[test]
    fn mesh_yaml_registers_services_with_vips_and_workloads() {
        let yaml = registry().mesh_yaml();
        let docs: Vec<serde_yaml::Value> = yaml
            .split("---\n")
            .filter_map(|d| serde_yaml::from_str(d).ok())
            .collect();
        assert_eq!(docs.len(), 6, "{yaml}");
        let se = &docs[1];
        assert_eq!(se["kind"], "ServiceEntry");
        assert_eq!(
            se["spec"]["hosts"][0],
            "messenger.default.svc.cluster.local"
        );
        assert_eq!(se["spec"]["addresses"][0], "198.19.7.12");
        assert_eq!(se["spec"]["workloadSelector"]["labels"]["app"], "messenger");
        let we = &docs[3];
        assert_eq!(we["kind"], "WorkloadEntry");
        assert_eq!(we["metadata"]["name"], "greeter-v1");
        assert_eq!(we["spec"]["address"], "198.18.7.11");
        assert_eq!(we["spec"]["labels"]["version"], "v1");
    }

    #[test]
    fn pods_without_a_service_are_not_registered() {
        let mut reg = registry();
        let w = Workload::new("outsider", "outsider", &["app"]).without_service();
        reg.pods.insert(
            "outsider".into(),
            Pod {
                workload: w,
                ip: [198, 18, 7, 20].into(),
                netns: "e2e1x1-outsider".into(),
                role: Role::App,
            },
        );
        let yaml = reg.mesh_yaml();
        assert!(!yaml.contains("outsider"), "{yaml}");
        assert!(!reg.hosts_file(&reg.pods["greeter-v1"]).contains("outsider"));
    }

    #[test]
    fn the_egress_gateway_is_a_service_and_the_ingress_is_not() {
        let mut reg = registry();
        for (name, role, label, ip) in [
            (
                "istio-egressgateway",
                Role::EgressGateway,
                "egressgateway",
                21,
            ),
            (
                "istio-ingressgateway",
                Role::IngressGateway,
                "ingressgateway",
                22,
            ),
        ] {
            let w = Workload::new(name, name, &["mesh-proxy"])
                .namespace("istio-system")
                .label("istio", label)
                .port("tcp", 7777, "TCP");
            if role == Role::EgressGateway {
                reg.add_to_service(&w, [198, 19, 7, 30].into());
            }
            let pod = Pod {
                workload: w,
                ip: [198, 18, 7, ip].into(),
                netns: format!("e2e1x1-{name}"),
                role,
            };
            reg.pods.insert(name.into(), pod);
        }
        let yaml = reg.mesh_yaml();
        assert!(
            yaml.contains("istio-egressgateway.istio-system.svc.cluster.local"),
            "{yaml}"
        );
        assert!(yaml.contains("address: 198.18.7.21"), "{yaml}");
        assert!(yaml.contains("istio: egressgateway"), "{yaml}");
        assert!(!yaml.contains("ingressgateway"), "{yaml}");
        let hosts = reg.hosts_file(&reg.pods["greeter-v1"]);
        assert!(
            hosts.contains("198.19.7.30\tistio-egressgateway.istio-system "),
            "{hosts}"
        );
    }

    #[test]
    fn envoy_bootstrap_names_the_node_and_points_at_pilot() {
        let reg = registry();
        let yaml = envoy_bootstrap(&reg.pods["greeter-v1"], ([198, 18, 7, 1].into(), 15010));
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap_or_default();
        assert_eq!(
            doc["node"]["id"],
            "sidecar~198.18.7.11~greeter-v1.default~default.svc.cluster.local"
        );
        assert_eq!(doc["node"]["metadata"]["INTERCEPTION_MODE"], "REDIRECT");
        let ep = &doc["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0];
        let addr = &ep["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(
            (&addr["address"], &addr["port_value"]),
            (&"198.18.7.1".into(), &15010.into())
        );
    }
}

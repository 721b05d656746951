//! Registry from ServiceEntry + WorkloadEntry: selection, ports, weights, inbound ports.

use super::*;
use crate::source::snapshot_from_str;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: messenger, namespace: default}
spec:
  hosts: [messenger.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  - {number: 9090, name: grpc, protocol: GRPC, targetPort: 7070}
  - {number: 9100, name: metrics, protocol: TCP}
  workloadSelector: {labels: {app: messenger}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.20.9, labels: {version: vm}, weight: 2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-v1, namespace: default}
spec:
  address: 127.0.20.2
  labels: {app: messenger, version: v1}
  serviceAccount: messenger
  ports: {metrics: 9999}
  weight: 3
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-other-ns, namespace: other}
spec:
  address: 127.0.20.3
  labels: {app: messenger}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter, namespace: default}
spec:
  address: 127.0.20.1
  labels: {app: greeter}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 27017, name: mongo, protocol: MONGO}]
"#;

fn registry() -> Registry {
    Registry::build(&snapshot_from_str("test.yaml", CONFIG).unwrap())
}

#[test]
fn selects_workload_entries_of_the_namespace_by_labels() {
    let r = registry();
    let svc = r.service("messenger.default.svc.cluster.local").unwrap();
    let addrs: Vec<&str> = svc.endpoints.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addrs, vec!["127.0.20.2"]);
    let we = &svc.endpoints[0];
    assert_eq!(we.weight, 3);
    assert_eq!(we.service_account.as_deref(), Some("messenger"));
    assert_eq!(we.workload.as_deref(), Some("default/messenger-v1"));
    assert_eq!(we.labels["version"], "v1");
    let legacy = r.service("legacy.default.svc.cluster.local").unwrap();
    assert_eq!(legacy.endpoints[0].address, "127.0.20.9");
    assert_eq!(legacy.endpoints[0].weight, 2);
    assert_eq!(legacy.endpoints[0].workload, None);
    assert!(!svc.external);
    assert_eq!(svc.discovery, Discovery::Eds);
}

#[test]
fn endpoint_ports_follow_name_then_target_then_number() {
    let r = registry();
    let svc = r.service("messenger.default.svc.cluster.local").unwrap();
    let we = &svc.endpoints[0];
    assert_eq!(we.ports[&9080], 9080);
    assert_eq!(we.ports[&9090], 7070);
    assert_eq!(we.ports[&9100], 9999);
    assert_eq!(svc.port(9090).unwrap().protocol, Protocol::Grpc);
    assert!(svc.port(9090).unwrap().protocol.is_http2());
    assert_eq!(svc.port(9100).unwrap().protocol, Protocol::Tcp);
}

#[test]
fn dns_and_external_services() {
    let r = registry();
    let db = r.service("db.example.com").unwrap();
    assert_eq!(db.discovery, Discovery::StrictDns);
    assert!(db.external);
    assert!(db.endpoints.is_empty());
}

#[test]
fn inbound_ports_of_a_workload() {
    let r = registry();
    let ports = r.inbound_ports("127.0.20.2");
    let got: Vec<(u32, Protocol)> = ports.iter().map(|p| (p.port, p.protocol)).collect();
    assert_eq!(
        got,
        vec![
            (7070, Protocol::Grpc),
            (9080, Protocol::Http),
            (9999, Protocol::Tcp)
        ]
    );
    assert!(r.inbound_ports("127.0.20.1").is_empty());
}

#[test]
fn protocol_names_are_case_insensitive() {
    assert_eq!(Protocol::parse("http"), Protocol::Http);
    assert_eq!(Protocol::parse("Http2"), Protocol::Http2);
    assert_eq!(Protocol::parse(""), Protocol::Tcp);
    assert_eq!(Protocol::parse("MONGO"), Protocol::Tcp);
}

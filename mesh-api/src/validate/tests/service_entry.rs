//! ServiceEntry and WorkloadEntry rules taken from Istio's validation:
//! what each resolution allows, addresses, ports and endpoints.

use super::{object, one, paths, warning_paths};
use crate::error::ErrorKind;

fn se(spec: &str) -> Vec<(ErrorKind, String)> {
    paths(&object("ServiceEntry", spec))
}

fn invalid(path: &str) -> Vec<(ErrorKind, String)> {
    one(ErrorKind::InvalidValue, path)
}

const HTTP: &str = "  ports: [{number: 80, name: http, protocol: HTTP}]\n";
const TCP: &str = "  ports: [{number: 5432, name: tcp, protocol: TCP}]\n";

#[test]
fn hosts() {
    assert_eq!(
        se(&format!("  hosts: ['*']\n{HTTP}")),
        invalid("spec.hosts[0]")
    );
    // A partial wildcard still matches by suffix: Istio only warns.
    let partial = object(
        "ServiceEntry",
        &format!("  hosts: ['*foo.example.com']\n{HTTP}"),
    );
    assert_eq!(paths(&partial), vec![]);
    assert_eq!(
        warning_paths(&partial),
        one(ErrorKind::Ineffective, "spec.hosts[0]")
    );
}

#[test]
fn cidr_addresses_only_with_none_or_static() {
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n  addresses: [198.18.0.0/24]\n{TCP}  resolution: NONE\n"
        )),
        vec![]
    );
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n  addresses: [198.18.0.0/24]\n{TCP}  resolution: DNS\n"
        )),
        invalid("spec.addresses[0]")
    );
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n  addresses: [198.18.0.0/33]\n{TCP}"
        )),
        invalid("spec.addresses[0]")
    );
}

#[test]
fn dns_resolution() {
    assert_eq!(
        se(&format!(
            "  hosts: ['*.example.com']\n{HTTP}  resolution: DNS\n"
        )),
        invalid("spec.hosts[0]"),
        "nothing to resolve"
    );
    assert_eq!(
        se(&format!("  hosts: ['*.example.com']\n{HTTP}  resolution: DNS\n  endpoints: [{{address: api.example.com}}]\n")),
        vec![]
    );
    assert_eq!(
        se(&format!("  hosts: [api.example.com]\n{HTTP}  resolution: DNS_ROUND_ROBIN\n  endpoints: [{{address: a.example.com}}, {{address: b.example.com}}]\n")),
        invalid("spec.endpoints")
    );
    assert_eq!(
        se(&format!("  hosts: [api.example.com]\n{HTTP}  resolution: DNS\n  endpoints: [{{address: 'bad host!'}}]\n")),
        invalid("spec.endpoints[0].address")
    );
}

#[test]
fn static_resolution() {
    assert_eq!(
        se(&format!("  hosts: [db.example.com]\n{TCP}  resolution: STATIC\n  endpoints: [{{address: db.example.com}}]\n")),
        invalid("spec.endpoints[0].address"),
        "STATIC endpoints are IPs"
    );
    assert_eq!(
        se("  hosts: [db.example.com]\n  ports: [{number: 5432, name: a, protocol: TCP}, {number: 5433, name: b, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 'unix:///var/run/db.sock'}]\n"),
        invalid("spec.endpoints[0].address"),
        "a unix socket serves one port"
    );
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n{TCP}  resolution: STATIC\n"
        )),
        vec![],
        "Istio accepts a STATIC entry without endpoints"
    );
    assert_eq!(
        se(&format!("  hosts: [db.example.com]\n{TCP}  resolution: STATIC\n  endpoints: [{{address: 198.18.0.3}}]\n  workloadSelector: {{labels: {{app: db}}}}\n")),
        invalid("spec.workloadSelector")
    );
}

#[test]
fn several_hosts_need_http_or_tls_ports() {
    let two = "  hosts: [a.example.com, b.example.com]\n";
    assert_eq!(
        se(&format!("{two}{TCP}  resolution: DNS\n")),
        invalid("spec.ports[0].protocol")
    );
    assert_eq!(se(&format!("{two}{TCP}  resolution: NONE\n")), vec![]);
    assert_eq!(se(&format!("{two}{HTTP}  resolution: DNS\n")), vec![]);
}

#[test]
fn dynamic_dns_needs_wildcards() {
    let found = se(&format!(
        "  hosts: [api.example.com]\n{HTTP}  location: MESH_EXTERNAL\n  resolution: DYNAMIC_DNS\n"
    ));
    assert!(
        found.contains(&(ErrorKind::InvalidValue, "spec.hosts[0]".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(ErrorKind::Unsupported, "spec.resolution".into())),
        "{found:?}"
    );
}

#[test]
fn export_to_may_hide_an_entry() {
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n{TCP}  exportTo: ['~']\n"
        )),
        vec![]
    );
    assert_eq!(
        se(&format!(
            "  hosts: [db.example.com]\n{TCP}  exportTo: ['~', prod]\n"
        )),
        invalid("spec.exportTo")
    );
}

#[test]
fn workload_entries() {
    let we = |spec: &str| paths(&object("WorkloadEntry", spec));
    assert_eq!(
        we("  address: vm1.example.com\n  ports: {http: 8080}\n"),
        vec![]
    );
    assert_eq!(
        we("  address: 'unix://relative.sock'\n"),
        invalid("spec.address")
    );
    assert_eq!(we("  address: '*.example.com'\n"), invalid("spec.address"));
    assert_eq!(
        we("  address: 198.18.0.9\n  labels: {'app/': vm}\n"),
        invalid("spec.labels.app/")
    );
    assert_eq!(
        we("  address: 198.18.0.9\n  ports: {HTTP_1: 8080}\n"),
        invalid("spec.ports.HTTP_1")
    );
}

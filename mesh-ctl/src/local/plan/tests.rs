//! The plan for the postcard sample, checked against the contract.

use super::*;
use crate::docs;

/// The sample's mesh objects, read without mesh-api's loader so the plan is
/// tested on its own.
fn postcard_objects() -> Vec<Object> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/postcard/mesh");
    let mut objects = Vec::new();
    for file in ["services.yaml", "workloads.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for doc in docs::split(&text) {
            let Some(value) = doc.value else { continue };
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap()
                .to_string();
            objects.push(match kind.as_str() {
                "ServiceEntry" => Object::ServiceEntry(serde_yaml::from_value(value).unwrap()),
                "WorkloadEntry" => Object::WorkloadEntry(serde_yaml::from_value(value).unwrap()),
                other => panic!("unexpected kind {other}"),
            });
        }
    }
    objects
}

fn postcard_local() -> LocalFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/postcard/local.yaml");
    LocalFile::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ports() -> Ports {
    Ports {
        ingress: 18080,
        ingress_admin: 18000,
        xds: 18010,
        debug: 18014,
    }
}

fn plan() -> Plan {
    build(
        &postcard_local(),
        &postcard_objects(),
        Path::new("/s"),
        Path::new("/bin"),
        Path::new("/state/config"),
        &ports(),
    )
    .unwrap()
}

fn by_name<'a>(plan: &'a Plan, name: &str) -> &'a ProcessSpec {
    plan.processes.iter().find(|p| p.name == name).unwrap()
}

fn flag<'a>(spec: &'a ProcessSpec, name: &str) -> &'a str {
    let i = spec.args.iter().position(|a| a == name).unwrap();
    &spec.args[i + 1]
}

fn env<'a>(spec: &'a ProcessSpec, name: &str) -> &'a str {
    &spec.env[name]
}

#[test]
fn starts_pilot_then_ingress_then_sidecar_and_app_per_workload() {
    let names: Vec<_> = plan().processes.iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        [
            "mesh-pilot",
            "istio-ingressgateway",
            "greeter-v1-sidecar",
            "greeter-v1",
            "messenger-v1-sidecar",
            "messenger-v1",
            "messenger-v2-sidecar",
            "messenger-v2"
        ]
    );
}

#[test]
fn pilot_flags() {
    let plan = plan();
    let pilot = by_name(&plan, "mesh-pilot");
    assert_eq!(pilot.program, Path::new("/bin/mesh-pilot"));
    assert_eq!(flag(pilot, "--config-dir"), "/state/config");
    assert_eq!(flag(pilot, "--xds-address"), "127.0.0.1:18010");
    assert_eq!(flag(pilot, "--debug-address"), "127.0.0.1:18014");
}

#[test]
fn sidecar_flags_follow_the_contract() {
    let plan = plan();
    let sidecar = by_name(&plan, "messenger-v2-sidecar");
    assert_eq!(sidecar.program, Path::new("/bin/mesh-proxy"));
    assert_eq!(
        flag(sidecar, "--node-id"),
        "sidecar~127.0.10.3~messenger-v2.default~default.svc.cluster.local"
    );
    assert_eq!(flag(sidecar, "--xds-address"), "127.0.0.1:18010");
    assert_eq!(flag(sidecar, "--labels"), "app=messenger,version=v2");
    assert_eq!(flag(sidecar, "--service-account"), "postcard-messenger");
    assert_eq!(flag(sidecar, "--interception-mode"), "NONE");
    assert_eq!(flag(sidecar, "--http-proxy-port"), "15080");
    assert_eq!(flag(sidecar, "--app-ip"), "127.1.10.3");
    assert_eq!(flag(sidecar, "--admin-address"), "127.0.10.3:15000");
}

#[test]
fn app_listens_on_the_shifted_address_and_uses_its_sidecar() {
    let plan = plan();
    let app = by_name(&plan, "messenger-v1");
    assert_eq!(app.program, Path::new("/bin/messenger"));
    assert_eq!(env(app, "LISTEN"), "127.1.10.2:9080");
    assert_eq!(env(app, "HTTP_PROXY"), "http://127.0.10.2:15080");
    assert_eq!(env(app, "MESSAGE_TEXT"), "Hello from messenger v1");
    let v2 = by_name(&plan, "messenger-v2");
    assert_ne!(env(v2, "MESSAGE_TEXT"), env(app, "MESSAGE_TEXT"));
}

#[test]
fn ingress_is_a_router_with_the_port_mapping() {
    let plan = plan();
    let ingress = by_name(&plan, "istio-ingressgateway");
    assert_eq!(
        flag(ingress, "--node-id"),
        "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
    );
    assert_eq!(flag(ingress, "--labels"), "istio=ingressgateway");
    assert_eq!(flag(ingress, "--gateway-ports"), "80=18080");
    assert_eq!(flag(ingress, "--admin-address"), "127.0.0.1:18000");
    assert_eq!(plan.ingress_url, "http://127.0.0.1:18080/");
    assert_eq!(plan.proxy_admins.len(), 4);
}

#[test]
fn app_address_shifts_the_second_octet() {
    assert_eq!(
        app_address(Ipv4Addr::new(127, 0, 10, 2)).unwrap(),
        Ipv4Addr::new(127, 1, 10, 2)
    );
    assert!(app_address(Ipv4Addr::new(10, 0, 0, 1)).is_err());
    assert!(app_address(Ipv4Addr::new(127, 255, 0, 1)).is_err());
}

#[test]
fn unknown_workload_entry_is_an_error() {
    let local = LocalFile::parse("workloads:\n- workloadEntry: nope\n  command: [x]\n").unwrap();
    let err = build(
        &local,
        &postcard_objects(),
        Path::new("/s"),
        Path::new("/bin"),
        Path::new("/c"),
        &ports(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("default/nope"), "{err}");
}

#[test]
fn front_page_path_makes_the_ingress_url() {
    let local = LocalFile::parse("workloads: []\nfrontPage: /productpage\n").unwrap();
    assert_eq!(local.ingress_url(8080), "http://127.0.0.1:8080/productpage");
    assert_eq!(postcard_local().ingress_url(80), "http://127.0.0.1:80/");
    assert!(LocalFile::parse("workloads: []\nfrontPage: productpage\n").is_err());
}

#[test]
fn local_file_rejects_unknown_fields() {
    assert!(LocalFile::parse("workloads: []\nextra: 1\n").is_err());
}

#[test]
fn program_paths() {
    assert_eq!(
        resolve_program("./bin/app", Path::new("/s"), Path::new("/b")),
        Path::new("/s/./bin/app")
    );
    assert_eq!(
        resolve_program("greeter", Path::new("/s"), Path::new("/b")),
        Path::new("/b/greeter")
    );
}

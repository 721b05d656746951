//! The edges of the mesh on the local driver (`mesh_e2e::scenarios`):
//! ingress (paths, HTTPS with a redirect, TLS passthrough), egress to a
//! real PostgreSQL under REGISTRY_ONLY (declared, undeclared, through the
//! egress gateway), and WebSocket and gRPC through two sidecars. Root
//! only; each test has a cluster of its own.

use mesh_e2e::{scenarios, Cluster, E2eError, LocalCluster};
use mesh_test_support::skip;

fn run(name: &str, scenario: impl FnOnce(&mut dyn Cluster) -> Result<(), E2eError>) {
    if let Some(why) = LocalCluster::unavailable() {
        skip(&format!("local {name}"), &why);
        return;
    }
    let mut c = LocalCluster::new().unwrap_or_else(|e| panic!("cluster: {e}"));
    if let Err(e) = scenario(&mut c) {
        panic!("{name}: {e}");
    }
    c.teardown().unwrap_or_else(|e| panic!("teardown: {e}"));
}

#[test]
fn ingress_routes_paths_terminates_https_redirects_and_passes_tls_through() {
    run("ingress", scenarios::ingress_gateway);
}

#[test]
fn registry_only_reaches_a_declared_database_refuses_another_and_uses_the_egress_gateway() {
    run("egress", scenarios::egress_to_databases);
}

#[test]
fn websocket_and_grpc_pass_two_sidecars() {
    run(
        "protocols",
        scenarios::websocket_and_grpc_through_two_sidecars,
    );
}

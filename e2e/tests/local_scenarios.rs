//! The scenarios (`mesh_e2e::scenarios`) on the local driver: pods as
//! network namespaces with `mesh-proxy init` capture. Root only: when not
//! root each test prints `skipping local ...: <why>` and asserts nothing,
//! or fails under `MESH_TESTS_REQUIRE_ROOT=1` (as `.ci/run` sets it).
//!
//! Each test has a cluster of its own (prefix `e2e<pid>x<n>`, its own bridge
//! and subnet), so they run in parallel; the binaries the pods run are built
//! (or found fresh) by the first cluster (`LocalCluster::new`).

use mesh_e2e::{scenarios, Cluster, E2eError, LocalCluster, Sidecar};
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
fn postcard_through_capture_with_mesh_proxy() {
    run("postcard", |c| scenarios::postcard(c, Sidecar::MeshProxy));
}

#[test]
fn postcard_through_capture_with_envoy_as_greeters_sidecar() {
    run("postcard (envoy)", |c| {
        scenarios::postcard(c, Sidecar::Envoy)
    });
}

#[test]
fn bookinfo_page_shows_each_reviews_version_in_turn() {
    run("bookinfo", scenarios::bookinfo);
}

#[test]
fn tcp_echo_and_server_first_through_capture() {
    run("tcp", scenarios::tcp_through_capture);
}

#[test]
fn outbound_policy_allow_any_then_registry_only() {
    run("outbound policy", scenarios::outbound_traffic_policy);
}

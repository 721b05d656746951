//! The scenarios on kind. Where docker (with a running engine), kind or
//! kubectl is missing, each test prints `skipping kind suite: <what>` and
//! returns: it asserts nothing, so it claims nothing. (These machines have
//! no docker engine, so this skip is allowed even under
//! `MESH_TESTS_REQUIRE_ROOT=1`.)

use std::path::Path;

use mesh_e2e::{scenarios, Cluster, E2eError, KindCluster, KindConfig, Sidecar};
use mesh_test_support::skip_optional;

fn run(name: &str, scenario: impl FnOnce(&mut dyn Cluster) -> Result<(), E2eError>) {
    if let Some(why) = KindCluster::unavailable() {
        skip_optional(&format!("kind suite ({name})"), &why);
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."));
    let mut c = KindCluster::create(&KindConfig::for_repo(repo))
        .unwrap_or_else(|e| panic!("creating the kind cluster: {e}"));
    if let Err(e) = scenario(&mut c) {
        panic!("{name} on kind: {e}");
    }
    c.teardown().unwrap_or_else(|e| panic!("teardown: {e}"));
}

#[test]
fn postcard_through_capture_on_kind() {
    run("postcard", |c| scenarios::postcard(c, Sidecar::MeshProxy));
}

#[test]
fn bookinfo_on_kind() {
    run("bookinfo", scenarios::bookinfo);
}

#[test]
fn tcp_through_capture_on_kind() {
    run("tcp", scenarios::tcp_through_capture);
}

#[test]
fn outbound_policy_on_kind() {
    run("outbound policy", scenarios::outbound_traffic_policy);
}

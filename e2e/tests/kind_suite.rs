//! The scenarios on kind. Where docker (with a running engine), kind or
//! kubectl is missing, each test prints `skipping kind suite: <what>` and
//! returns: it asserts nothing, so it claims nothing.

use std::path::Path;

use mesh_e2e::{scenarios, skip, Cluster, KindCluster, KindConfig, Sidecar};

fn cluster() -> Option<KindCluster> {
    if let Some(why) = KindCluster::unavailable() {
        skip("kind suite", &why);
        return None;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."));
    match KindCluster::create(&KindConfig::for_repo(repo)) {
        Ok(c) => Some(c),
        Err(e) => panic!("creating the kind cluster: {e}"),
    }
}

#[test]
fn postcard_through_capture_on_kind() {
    let Some(mut c) = cluster() else {
        return;
    };
    if let Err(e) = scenarios::postcard(&mut c, Sidecar::MeshProxy) {
        panic!("postcard on kind: {e}");
    }
    c.teardown().unwrap_or_else(|e| panic!("teardown: {e}"));
}

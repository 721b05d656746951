//! Retries, timeouts, circuit breaking, outlier detection, mirroring and
//! consistent hashing on the local driver (`mesh_e2e::scenarios`), against
//! the tool's deterministic servers. Root only; each test has a cluster
//! of its own.

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
fn retries_hide_an_upstream_failing_every_second_request() {
    run("retries", scenarios::retries_hide_flaky_upstream);
}

#[test]
fn a_route_timeout_cuts_a_slow_upstream_with_504_ut() {
    run("timeout", scenarios::route_timeout);
}

#[test]
fn the_circuit_breaker_overflows_with_503_uo_naming_the_rule() {
    run("circuit breaker", scenarios::circuit_breaker);
}

#[test]
fn outlier_detection_ejects_a_failing_endpoint_and_takes_it_back() {
    run("outlier detection", scenarios::outlier_detection);
}

#[test]
fn mirroring_copies_the_configured_share_to_the_shadow() {
    run("mirroring", scenarios::mirroring);
}

#[test]
fn consistent_hash_keeps_each_user_on_one_endpoint() {
    run("consistent hash", scenarios::consistent_hash_by_header);
}

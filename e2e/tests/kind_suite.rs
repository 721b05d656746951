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

#[test]
fn bookinfo_routes_all_to_v1_then_jason_to_v2_then_firefox_to_v2_on_kind() {
    run("request routing", scenarios::request_routing);
}

#[test]
fn reviews_weights_50_50_and_80_20_hold_over_1000_requests_on_kind() {
    run("traffic shifting", scenarios::traffic_shifting);
}

#[test]
fn a_7s_ratings_delay_for_jason_shows_productpages_own_error_in_time_on_kind() {
    run("fault delay", scenarios::fault_delay_for_jason);
}

#[test]
fn half_of_ratings_requests_abort_with_500_and_say_fi_on_kind() {
    run("fault abort", scenarios::fault_abort_half_of_ratings);
}

#[test]
fn retries_hide_an_upstream_failing_every_second_request_on_kind() {
    run("retries", scenarios::retries_hide_flaky_upstream);
}

#[test]
fn a_route_timeout_cuts_a_slow_upstream_with_504_ut_on_kind() {
    run("timeout", scenarios::route_timeout);
}

#[test]
fn the_circuit_breaker_overflows_with_503_uo_naming_the_rule_on_kind() {
    run("circuit breaker", scenarios::circuit_breaker);
}

#[test]
fn outlier_detection_ejects_a_failing_endpoint_and_takes_it_back_on_kind() {
    run("outlier detection", scenarios::outlier_detection);
}

#[test]
fn mirroring_copies_the_configured_share_to_the_shadow_on_kind() {
    run("mirroring", scenarios::mirroring);
}

#[test]
fn consistent_hash_keeps_each_user_on_one_endpoint_on_kind() {
    run("consistent hash", scenarios::consistent_hash_by_header);
}

#[test]
fn ingress_routes_paths_terminates_https_redirects_and_passes_tls_through_on_kind() {
    run("ingress", scenarios::ingress_gateway);
}

#[test]
fn registry_only_reaches_a_declared_database_refuses_another_and_uses_the_egress_gateway_on_kind() {
    run("egress", scenarios::egress_to_databases);
}

#[test]
fn websocket_and_grpc_pass_two_sidecars_on_kind() {
    run(
        "protocols",
        scenarios::websocket_and_grpc_through_two_sidecars,
    );
}

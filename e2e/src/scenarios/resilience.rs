//! Retries, timeouts, circuit breaking and outlier detection against the
//! tool's deterministic servers, with Istio's YAML:
//!
//! - a server failing every 2nd request with 500: about half fail without
//!   a retry policy (Istio's default retries no 500), none with
//!   `retries: {attempts: 3, retryOn: 5xx}`, each failed first attempt
//!   retried once and arriving with `x-envoy-attempt-count: 2`;
//! - a route `timeout: 1s` cuts a 3 s upstream: 504 with `x-mesh-reason:
//!   UT ...`, logged with flag `UT`;
//! - Istio's circuit-breaking task (`maxConnections: 1`,
//!   `http1MaxPendingRequests: 1`) under 20 concurrent clients: 200s and
//!   503s only, every 503 `UO ...` naming the DestinationRule, logged `UO`;
//! - outlier detection (`consecutive5xxErrors: 1`): of two endpoints the
//!   one switched to failing is ejected and gets no traffic, and gets it
//!   again after it heals and `baseEjectionTime` passes.

use std::time::{Duration, Instant};

use super::checks::{access_log, explained, load_from, logged, share_within};
use super::{client, eventually, settle, tool_pod, with_logs, ACCESS_LOG, CONVERGE};
use crate::cluster::{Cluster, Sidecar, Workload};
use crate::load::LoadSpec;
use crate::E2eError;

const RETRIES: &str = include_str!("../../istio/flaky-retries.yaml");
const TIMEOUT: &str = include_str!("../../istio/slow-timeout.yaml");
const BREAKER: &str = include_str!("../../istio/destination-rule-httpbin-circuit-breaker.yaml");
const OUTLIER: &str = include_str!("../../istio/destination-rule-outlier.yaml");

/// The tool's HTTP server as pod `name` of `service`, version `version`.
pub(super) fn server(
    cluster: &dyn Cluster,
    name: &str,
    service: &str,
    version: &str,
    extra: &[&str],
) -> Workload {
    let mut args = vec![
        "serve-http",
        "--listen",
        "0.0.0.0:8000",
        "--version",
        version,
    ];
    args.extend_from_slice(extra);
    tool_pod(cluster, name, service, &args)
        .label("version", version)
        .port("http", 8000, "HTTP")
}

fn url(cluster: &dyn Cluster, service: &str) -> String {
    format!("{}/get", cluster.service_url(service, "default", 8000))
}

/// Without retries about half fail; with them none, some on attempt 2.
pub fn retries_hide_flaky_upstream(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let flaky = server(
        cluster,
        "flaky-v1",
        "flaky",
        "v1",
        &[
            "--fail-every",
            "2",
            "--fail-status",
            "500",
            "--echo-headers",
        ],
    );
    cluster.deploy(&flaky)?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    check_retries(cluster).map_err(|e| with_logs(cluster, &["flaky-v1", "client"], e))
}

fn check_retries(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let target = url(cluster, "flaky");
    let spec = |n| LoadSpec::new(&target, n).body_pattern(r"x-envoy-attempt-count: (\d+)");
    settle("flaky answers", || {
        let r = load_from(cluster, "client", &spec(4))?;
        (r.count(|g| g.status == 200) > 0)
            .then_some(())
            .ok_or(r.summary())
    })?;
    let without = load_from(cluster, "client", &spec(200)).map_err(E2eError::Invalid)?;
    explained(&without).map_err(E2eError::Invalid)?;
    let failed = without.count(|g| g.status == 500);
    share_within(
        "failed without retries",
        failed,
        without.requests,
        50.0,
        5.0,
    )
    .map_err(|e| E2eError::Invalid(format!("{e}: {}", without.summary())))?;

    cluster.apply(RETRIES)?;
    settle("retries hide every failure", || {
        let r = load_from(cluster, "client", &spec(10))?;
        (r.count(|g| g.status == 200) == r.requests)
            .then_some(())
            .ok_or(r.summary())
    })?;
    let with = load_from(cluster, "client", &spec(200)).map_err(E2eError::Invalid)?;
    explained(&with).map_err(E2eError::Invalid)?;
    let ok = with.count(|g| g.status == 200);
    let second = with.count(|g| g.status == 200 && g.body == "2");
    let first = with.count(|g| g.status == 200 && g.body == "1");
    if ok != with.requests || first + second != ok {
        return Err(E2eError::Invalid(format!(
            "with retries every request should succeed on attempt 1 or 2: {}",
            with.summary()
        )));
    }
    // The server fails every 2nd request it sees, and one client sends one
    // request at a time: once a first attempt fails, its retry takes the
    // next (good) turn, so every later first attempt lands on a failing
    // turn. All but at most the first request need exactly one retry.
    if second + 1 < with.requests {
        return Err(E2eError::Invalid(format!(
            "every request after the first failure should be retried once: {} on attempt 2: {}",
            second,
            with.summary()
        )));
    }
    Ok(())
}

/// `timeout: 1s` cuts a 3 s upstream with a 504 `UT`.
pub fn route_timeout(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.set_mesh_config(ACCESS_LOG)?;
    cluster.deploy(&server(
        cluster,
        "slow-v1",
        "slow",
        "v1",
        &["--delay-ms", "3000"],
    ))?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    check_timeout(cluster).map_err(|e| with_logs(cluster, &["slow-v1", "client"], e))
}

fn check_timeout(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let target = url(cluster, "slow");
    let spec = |n| LoadSpec::new(&target, n).concurrency(5);
    // Istio's default is no route timeout: the slow answer arrives.
    let first = eventually("the slow upstream answers", CONVERGE, || {
        let r = load_from(cluster, "client", &spec(1))?;
        (r.count(|g| g.status == 200) == 1)
            .then_some(r.clone())
            .ok_or(r.summary())
    })?;
    if first.min_ms < 3000 {
        return Err(E2eError::Invalid(format!(
            "the upstream should take 3 s: {}",
            first.summary()
        )));
    }
    cluster.apply(TIMEOUT)?;
    eventually("the route timeout answers 504", CONVERGE, || {
        let r = load_from(cluster, "client", &spec(1))?;
        (r.count(|g| g.status == 504) == 1)
            .then_some(())
            .ok_or(r.summary())
    })?;
    let r = load_from(cluster, "client", &spec(10)).map_err(E2eError::Invalid)?;
    let ut = r.count(|g| {
        g.status == 504
            && g.headers
                .get(crate::REASON_HEADER)
                .is_some_and(|v| v.starts_with("UT"))
    });
    if ut != r.requests || r.max_ms >= 3000 || r.min_ms < 900 {
        return Err(E2eError::Invalid(format!(
            "every request should be cut after 1 s with 504 `x-mesh-reason: UT ...`: {}",
            r.summary()
        )));
    }
    logged(&access_log(cluster, "client")?, 504, "UT", "").map_err(E2eError::Invalid)
}

/// Istio's circuit-breaking task under 20 concurrent clients.
pub fn circuit_breaker(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.set_mesh_config(ACCESS_LOG)?;
    cluster.deploy(&server(
        cluster,
        "httpbin-v1",
        "httpbin",
        "v1",
        &["--delay-ms", "200"],
    ))?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(BREAKER)?;
    check_breaker(cluster).map_err(|e| with_logs(cluster, &["httpbin-v1", "client"], e))
}

fn overflow_reason(v: &str) -> bool {
    v.starts_with("UO")
        && v.contains("DestinationRule default/httpbin")
        && (v.contains("maxConnections") || v.contains("http1MaxPendingRequests"))
}

fn check_breaker(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let spec = LoadSpec::new(&url(cluster, "httpbin"), 100).concurrency(20);
    let r = eventually(
        "the breaker trips under 20 concurrent clients",
        CONVERGE,
        || {
            let r = load_from(cluster, "client", &spec)?;
            let tripped = r.count(|g| g.status == 503);
            (tripped > 0).then_some(r.clone()).ok_or(r.summary())
        },
    )?;
    let ok = r.count(|g| g.status == 200 && g.headers.get("x-version").is_some_and(|v| v == "v1"));
    let overflow = r.count(|g| {
        g.status == 503
            && g.headers
                .get(crate::REASON_HEADER)
                .is_some_and(|v| overflow_reason(v))
    });
    if ok == 0 || ok + overflow != r.requests {
        return Err(E2eError::Invalid(format!(
            "expected 200s and 503 `UO overflow: DestinationRule default/httpbin \
             maxConnections|http1MaxPendingRequests` only: {}",
            r.summary()
        )));
    }
    explained(&r).map_err(E2eError::Invalid)?;
    logged(
        &access_log(cluster, "client")?,
        503,
        "UO",
        "DestinationRule default/httpbin",
    )
    .map_err(E2eError::Invalid)
}

const OUTLIER_PODS: [&str; 3] = ["backend-a", "backend-b", "client"];
/// The rule's `baseEjectionTime`.
const EJECTION: Duration = Duration::from_secs(6);

/// One of two endpoints fails, is ejected, heals, and comes back.
pub fn outlier_detection(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.deploy(&server(cluster, "backend-a", "backend", "a", &[]))?;
    cluster.deploy(&server(cluster, "backend-b", "backend", "b", &[]))?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(OUTLIER)?;
    check_outlier(cluster).map_err(|e| with_logs(cluster, &OUTLIER_PODS, e))
}

/// Asks `pod`'s own server (on its loopback, not captured) for `path`.
fn control(cluster: &dyn Cluster, pod: &str, path: &str) -> Result<String, String> {
    let tool = cluster.tool().map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:8000{path}");
    let out = cluster
        .exec(pod, &[&tool, "fetch", &url])
        .map_err(|e| e.to_string())?;
    let r = crate::http::parse_fetch_output(&out.stdout).map_err(|e| e.to_string())?;
    (r.status == 200)
        .then_some(r.body)
        .ok_or(format!("{pod} {path}: {}", r.status))
}

fn served(cluster: &dyn Cluster, pod: &str) -> Result<u64, String> {
    let body = control(cluster, pod, "/__count")?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    v["served"]
        .as_u64()
        .ok_or(format!("{pod}: no count in {body}"))
}

fn check_outlier(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let spec = |n| LoadSpec::new(&url(cluster, "backend"), n);
    settle("both endpoints answer", || {
        let r = load_from(cluster, "client", &spec(20))?;
        let v = r.by_header("x-version");
        (r.count(|g| g.status == 200) == r.requests && v.contains_key("a") && v.contains_key("b"))
            .then_some(())
            .ok_or(r.summary())
    })?;
    control(cluster, "backend-b", "/__fail?status=503").map_err(E2eError::Invalid)?;
    eventually("backend-b is ejected", CONVERGE, || {
        let r = load_from(cluster, "client", &spec(20))?;
        let from_a =
            r.count(|g| g.status == 200 && g.headers.get("x-version").is_some_and(|v| v == "a"));
        (from_a == r.requests).then_some(()).ok_or(r.summary())
    })?;
    let ejected_at = Instant::now();
    control(cluster, "backend-b", "/__heal").map_err(E2eError::Invalid)?;
    // Healed, but still ejected until baseEjectionTime passes.
    let before = served(cluster, "backend-b").map_err(E2eError::Invalid)?;
    let r = load_from(cluster, "client", &spec(30)).map_err(E2eError::Invalid)?;
    explained(&r).map_err(E2eError::Invalid)?;
    let after = served(cluster, "backend-b").map_err(E2eError::Invalid)?;
    let measured_in = ejected_at.elapsed();
    let from_a =
        r.count(|g| g.status == 200 && g.headers.get("x-version").is_some_and(|v| v == "a"));
    if measured_in >= EJECTION {
        return Err(E2eError::Invalid(format!(
            "the check after healing took {measured_in:?}, longer than baseEjectionTime \
             {EJECTION:?}: it cannot show the ejection held"
        )));
    }
    if from_a != r.requests || after != before {
        return Err(E2eError::Invalid(format!(
            "while ejected backend-b got {} requests: {}",
            after.saturating_sub(before),
            r.summary()
        )));
    }
    eventually("backend-b gets traffic again", CONVERGE, || {
        let r = load_from(cluster, "client", &spec(20))?;
        r.by_header("x-version")
            .contains_key("b")
            .then_some(())
            .ok_or(r.summary())
    })
}

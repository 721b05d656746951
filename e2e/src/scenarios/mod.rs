//! Scenarios written once against [`Cluster`], run by each driver's tests.
//! Issue 3: postcard and bookinfo through transparent capture, a TCP
//! service (echo and server-first) through capture, and the outbound traffic
//! policy (ALLOW_ANY passes an unknown destination, REGISTRY_ONLY blocks
//! it). Traffic management (Istio's tasks, as users write them): request
//! routing, traffic shifting and fault injection on bookinfo
//! (`routing.rs`, `faults.rs`), retries, timeouts, circuit breaking and
//! outlier detection (`resilience.rs`), mirroring and consistent hashing
//! (`balancing.rs`), ingress with TLS and egress to a real database
//! (`ingress.rs`, `egress.rs`), WebSocket and gRPC through two sidecars
//! (`protocols.rs`). Each returns an error naming what it expected and what
//! it saw, with the pods' logs, so a failure on CI explains itself.
//!
//! Waits are bounded polls: config reaches proxies a little after it is
//! applied, so a scenario polls until it sees the expected behaviour, then
//! checks that it holds for several more requests, and only then measures.
//! Shares are measured over loads of at least 1,000 requests and compared
//! with a tolerance in percentage points; every response the mesh makes
//! itself must say why in `x-mesh-reason`, and where the scenario checks it,
//! the proxy's access log line for it carries the same flag.

mod balancing;
mod bookinfo;
mod checks;
mod egress;
mod faults;
mod ingress;
mod outbound_policy;
mod postcard;
mod protocols;
mod resilience;
mod routing;
mod tcp;

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, HttpResponse, Sidecar, Workload};
use crate::E2eError;
use mesh_local::LocalError;

pub use balancing::{consistent_hash_by_header, mirroring};
pub use bookinfo::{bookinfo, BOOKINFO_IMAGE};
pub use checks::{access_log, explained, load_from, logged, share_within, Checks};
pub use egress::egress_to_databases;
pub use faults::{fault_abort_half_of_ratings, fault_delay_for_jason};
pub use ingress::ingress_gateway;
pub use outbound_policy::outbound_traffic_policy;
pub use postcard::{postcard, POSTCARD_IMAGE};
pub use protocols::websocket_and_grpc_through_two_sidecars;
pub use resilience::{
    circuit_breaker, outlier_detection, retries_hide_flaky_upstream, route_timeout,
};
pub use routing::{request_routing, traffic_shifting};
pub use tcp::tcp_through_capture;

/// Mesh config that turns on the sidecars' access log on stdout (Istio's
/// `accessLogFile`); scenarios that read access logs set it before any pod.
pub const ACCESS_LOG: &str = "accessLogFile: /dev/stdout\n";

/// The image with `mesh-e2e-tool` (and curl) on kind, built from e2e/Dockerfile.
pub const TOOL_IMAGE: &str = "mesh-e2e-tool:e2e";

/// How long a scenario waits for applied config to take effect.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// How many further requests must agree once the expected answer is seen.
pub const CONFIRM: usize = 4;

/// A client pod that serves a trivial HTTP page on 8000 (so it is a normal
/// mesh workload with a Service) and in which tests run commands.
pub fn client(cluster: &dyn Cluster, sidecar: Sidecar) -> Workload {
    tool_pod(
        cluster,
        "client",
        "client",
        &["serve-http", "--listen", "0.0.0.0:8000", "--body", "client"],
    )
    .port("http", 8000, "HTTP")
    .sidecar(sidecar)
}

/// A pod running `mesh-e2e-tool ARGS` (locally the binary beside the tests,
/// on kind the tool image).
pub fn tool_pod(cluster: &dyn Cluster, name: &str, service: &str, args: &[&str]) -> Workload {
    let mut argv = vec!["mesh-e2e-tool"];
    argv.extend_from_slice(args);
    let w = Workload::new(name, service, &argv);
    match cluster.driver() {
        "kind" => w.image(TOOL_IMAGE),
        _ => w,
    }
}

/// Polls `probe` every 250 ms until it returns `Ok` or `timeout` passes;
/// `Err(observation)` means "not yet", and the last one is in the error.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, E2eError> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(seen) if Instant::now() >= deadline => {
                return Err(LocalError::Timeout {
                    what: format!("{what}; last seen: {seen}"),
                    seconds: timeout.as_secs(),
                }
                .into())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Waits (up to [`CONVERGE`]) until `probe` succeeds [`CONFIRM`] times in a
/// row, then requires [`CONFIRM`] more successes: config reaches proxies a
/// little after it is applied, and one lucky answer (round robin over the
/// old routes) must not count as the new behaviour.
pub fn settle(what: &str, mut probe: impl FnMut() -> Result<(), String>) -> Result<(), E2eError> {
    let mut streak = 0;
    eventually(what, CONVERGE, || {
        match probe() {
            Ok(()) => streak += 1,
            Err(seen) => {
                streak = 0;
                return Err(seen);
            }
        }
        if streak >= CONFIRM {
            Ok(())
        } else {
            Err(format!("{streak} in a row so far"))
        }
    })?;
    for _ in 0..CONFIRM {
        probe().map_err(|seen| E2eError::Invalid(format!("{what}: then {seen}")))?;
    }
    Ok(())
}

/// A GET from inside `pod` summarised for messages: the response, or the
/// error that stopped it (a refused or reset connection is an observation
/// here, not a failure of the scenario).
pub fn get_from(cluster: &dyn Cluster, pod: &str, url: &str) -> Result<HttpResponse, String> {
    cluster.http_get(pod, url).map_err(|e| e.to_string())
}

/// Short form of a response for error messages.
pub fn brief(r: &HttpResponse) -> String {
    let body: String = r.body.chars().take(300).collect();
    format!("status {} body {body:?}", r.status)
}

/// Adds the logs of `pods` to a scenario failure.
pub fn with_logs(cluster: &dyn Cluster, pods: &[&str], e: E2eError) -> E2eError {
    let logs: Vec<String> = pods
        .iter()
        .map(|p| {
            let text = cluster.logs(p).unwrap_or_else(|e| e.to_string());
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            format!("== {p} (last 30 lines) ==\n{tail}")
        })
        .collect();
    E2eError::Invalid(format!("{e}\n{}", logs.join("\n")))
}

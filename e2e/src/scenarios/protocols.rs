//! A WebSocket echo and a gRPC call through two sidecars (client pod → its
//! sidecar → the server's sidecar → the server): the Upgrade must pass
//! both and the streams be spliced; the gRPC call (HTTP/2, the health
//! service) must come back with its status in the trailers, SERVING for a
//! known service and NOT_FOUND for an unknown one.

use super::{client, eventually, tool_pod, with_logs, CONVERGE};
use crate::cluster::{Cluster, Sidecar};
use crate::tool::GrpcAnswer;
use crate::E2eError;

const PODS: [&str; 3] = ["ws-v1", "grpc-v1", "client"];
const TEXT: &str = "hello through two sidecars ✓";

/// Both protocols, each server with its own sidecar.
pub fn websocket_and_grpc_through_two_sidecars(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let ws = tool_pod(
        cluster,
        "ws-v1",
        "ws",
        &["serve-ws", "--listen", "0.0.0.0:8080"],
    )
    .label("version", "v1")
    .port("http-ws", 8080, "HTTP");
    let grpc = tool_pod(
        cluster,
        "grpc-v1",
        "grpc",
        &[
            "serve-grpc",
            "--listen",
            "0.0.0.0:9090",
            "--service",
            "mesh.e2e.Echo",
        ],
    )
    .label("version", "v1")
    .port("grpc", 9090, "GRPC");
    cluster.deploy(&ws)?;
    cluster.deploy(&grpc)?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    let mut checks = super::Checks::new();
    checks.run("websocket echo", || websocket(cluster));
    checks.run("grpc health check", || grpc_check(cluster));
    checks.finish().map_err(|e| with_logs(cluster, &PODS, e))
}

fn websocket(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let tool = cluster.tool()?;
    let url = "ws://ws:8080/echo";
    eventually("the websocket echo", CONVERGE, || {
        let out = cluster
            .exec("client", &[&tool, "ws-echo", url, TEXT])
            .map_err(|e| e.to_string())?;
        if out.success() && out.stdout == format!("{TEXT}\n") {
            Ok(())
        } else {
            Err(format!(
                "stdout {:?}, stderr {:?}",
                out.stdout,
                out.stderr.trim()
            ))
        }
    })?;
    let logs = cluster.logs("ws-v1")?;
    if !logs.contains("connection from 127.0.0.6:") || !logs.contains("websocket upgraded") {
        return Err(E2eError::Invalid(
            "ws-v1 should have upgraded a connection from its inbound sidecar (127.0.0.6)".into(),
        ));
    }
    Ok(())
}

fn check(cluster: &dyn Cluster, tool: &str, service: &str) -> Result<GrpcAnswer, String> {
    let out = cluster
        .exec(
            "client",
            &[tool, "grpc-check", "grpc:9090", "--service", service],
        )
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("grpc-check failed: {}", out.stderr.trim()));
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {:?}", out.stdout))
}

fn grpc_check(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let tool = cluster.tool()?;
    eventually("the gRPC health check answers SERVING", CONVERGE, || {
        let a = check(cluster, &tool, "mesh.e2e.Echo")?;
        let grpc = a
            .metadata
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/grpc"));
        (a.code == 0 && a.serving.as_deref() == Some("SERVING") && grpc)
            .then_some(())
            .ok_or(format!("{a:?}"))
    })?;
    let missing = check(cluster, &tool, "no.such.Service").map_err(E2eError::Invalid)?;
    if missing.code != 5 {
        return Err(E2eError::Invalid(format!(
            "an unknown service should be NOT_FOUND (grpc-status 5, from the trailers): {missing:?}"
        )));
    }
    Ok(())
}

//! Mesh config `outboundTrafficPolicy`: a call from a captured pod to an
//! address the mesh does not know (a pod with no Service, in the suite's own
//! 198.18.0.0/15) passes through with `ALLOW_ANY`, the default, and is
//! blocked with `REGISTRY_ONLY`, both for an HTTP port some service uses
//! (502 from the `block_all` route) and a port no service uses (the default
//! chain to BlackHoleCluster). Registered services keep working, and the
//! unknown pod stays reachable from outside the mesh: the block is the
//! sidecar's.

use super::{brief, client, get_from, settle, tool_pod, with_logs};
use crate::cluster::{Cluster, Sidecar};
use crate::E2eError;

const OUTSIDER_BODY: &str = "outsider reached";
const KNOWN_BODY: &str = "known service";
/// A port no service declares.
const OUTSIDER_TCP_PORT: u16 = 7070;

const PODS: [&str; 4] = ["client", "known-v1", "outsider-http", "outsider-tcp"];

/// Istio MeshConfig with the given outbound mode.
pub fn mesh_config(mode: &str) -> String {
    format!("outboundTrafficPolicy:\n  mode: {mode}\n")
}

/// Runs ALLOW_ANY first (the default), then switches to REGISTRY_ONLY.
pub fn outbound_traffic_policy(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let known = tool_pod(
        cluster,
        "known-v1",
        "known",
        &[
            "serve-http",
            "--listen",
            "0.0.0.0:8000",
            "--body",
            KNOWN_BODY,
        ],
    )
    .port("http", 8000, "HTTP");
    let outsider_http = tool_pod(
        cluster,
        "outsider-http",
        "outsider-http",
        &[
            "serve-http",
            "--listen",
            "0.0.0.0:8000",
            "--body",
            OUTSIDER_BODY,
        ],
    )
    .sidecar(Sidecar::None)
    .without_service();
    let tcp_listen = format!("0.0.0.0:{OUTSIDER_TCP_PORT}");
    let outsider_tcp = tool_pod(
        cluster,
        "outsider-tcp",
        "outsider-tcp",
        &["serve-tcp", "--listen", &tcp_listen],
    )
    .sidecar(Sidecar::None)
    .without_service();
    for w in [known, outsider_http, outsider_tcp] {
        cluster.deploy(&w)?;
    }
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    check(cluster).map_err(|e| with_logs(cluster, &PODS, e))
}

struct Targets {
    tool: String,
    http: String,
    tcp: String,
    known: String,
}

fn check(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let t = Targets {
        tool: cluster.tool()?,
        http: format!("http://{}:8000/", cluster.pod_address("outsider-http")?),
        tcp: format!(
            "{}:{OUTSIDER_TCP_PORT}",
            cluster.pod_address("outsider-tcp")?
        ),
        known: format!("{}/", cluster.service_url("known", "default", 8000)),
    };

    settle("ALLOW_ANY: the unknown pod answers", || passes(cluster, &t))?;

    cluster.set_mesh_config(&mesh_config("REGISTRY_ONLY"))?;
    settle("REGISTRY_ONLY: the unknown pod is blocked", || {
        blocked(cluster, &t)
    })?;
    // Not a broken pod: it still answers a pod outside the mesh.
    let direct = get_from(cluster, "outsider-tcp", &t.http).map_err(E2eError::Invalid)?;
    if direct.status != 200 || direct.body != OUTSIDER_BODY {
        return Err(E2eError::Invalid(format!(
            "outsider-http should answer outside the mesh: {}",
            brief(&direct)
        )));
    }
    Ok(())
}

fn echo(cluster: &dyn Cluster, t: &Targets) -> Result<String, String> {
    let out = cluster
        .exec(
            "client",
            &[&t.tool, "tcp-send", &t.tcp, "ping", "--timeout-ms", "3000"],
        )
        .map_err(|e| e.to_string())?;
    Ok(if out.success() {
        out.stdout
    } else {
        format!("failed: {}", out.stderr.trim())
    })
}

fn known_works(cluster: &dyn Cluster, t: &Targets) -> Result<(), String> {
    let r = get_from(cluster, "client", &t.known)?;
    if r.status == 200 && r.body == KNOWN_BODY {
        Ok(())
    } else {
        Err(format!("known service: {}", brief(&r)))
    }
}

/// Ok when both unknown destinations answer through the client's sidecar.
fn passes(cluster: &dyn Cluster, t: &Targets) -> Result<(), String> {
    known_works(cluster, t)?;
    let r = get_from(cluster, "client", &t.http)?;
    if r.status != 200 || r.body != OUTSIDER_BODY {
        return Err(format!("GET {}: {}", t.http, brief(&r)));
    }
    match echo(cluster, t)? {
        e if e == "ping\n" => Ok(()),
        e => Err(format!("tcp {}: {e:?}", t.tcp)),
    }
}

/// Ok when neither unknown destination answers but the known service does.
fn blocked(cluster: &dyn Cluster, t: &Targets) -> Result<(), String> {
    known_works(cluster, t)?;
    match get_from(cluster, "client", &t.http) {
        Ok(r) if r.body.contains(OUTSIDER_BODY) => {
            return Err(format!("GET {} passed: {}", t.http, brief(&r)))
        }
        Ok(r) if r.status == 200 => return Err(format!("GET {}: {}", t.http, brief(&r))),
        _ => {}
    }
    match echo(cluster, t)? {
        e if e.contains("ping") => Err(format!("tcp {} passed: {e:?}", t.tcp)),
        _ => Ok(()),
    }
}

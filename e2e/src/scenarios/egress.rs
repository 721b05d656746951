//! Egress to a real database with mesh config `outboundTrafficPolicy:
//! REGISTRY_ONLY`: an app pod's real client (`psql`) reaches a PostgreSQL
//! outside the mesh that a `ServiceEntry` declares (`MESH_EXTERNAL`, TCP,
//! `resolution: STATIC`), and cannot reach an undeclared one, whose
//! refusal is in the client sidecar's access log (`UH`, `BlackHoleCluster`,
//! the REGISTRY_ONLY reason); then the declared one through the egress
//! gateway, Istio's TCP pattern (a Gateway on the egress gateway, a
//! VirtualService with `gateways: [mesh, istio-egressgateway]` and tcp
//! routes, a DestinationRule for the gateway's subset): the database then
//! sees the egress gateway as its client, not the app pod. An undeclared
//! HTTP server on a port the mesh serves HTTP on is refused with a 502
//! that says why (`NR ... REGISTRY_ONLY`), in the header and the log.

use super::checks::{access_log, logged, Checks};
use super::{client, eventually, get_from, settle, tool_pod, with_logs, CONVERGE};
use crate::cluster::{Cluster, Port, Sidecar};
use crate::E2eError;

const SERVICE_ENTRY: &str = include_str!("../../istio/service-entry-orders-db.yaml");
const THROUGH_GATEWAY: &str = include_str!("../../istio/egress-gateway-orders-db.yaml");

const PODS: [&str; 5] = [
    "client",
    "orders-db",
    "audit-db",
    "outsider",
    "istio-egressgateway",
];

/// The mesh config of this scenario: REGISTRY_ONLY, access log on.
const MESH_CONFIG: &str =
    "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n";

/// Declared reachable, undeclared refused (and logged), then through the
/// egress gateway.
pub fn egress_to_databases(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.set_mesh_config(MESH_CONFIG)?;
    cluster.deploy_postgres("orders-db", "external")?;
    cluster.deploy_postgres("audit-db", "external")?;
    cluster.deploy_egress(&[Port {
        name: "tcp".into(),
        number: 7777,
        protocol: "TCP".into(),
    }])?;
    // The client serves HTTP on 8000, so sidecars have an HTTP listener
    // there: a call to the outsider's 8000 meets the route config's
    // REGISTRY_ONLY catch-all.
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    let outsider = tool_pod(
        cluster,
        "outsider",
        "outsider",
        &["serve-http", "--listen", "0.0.0.0:8000"],
    )
    .sidecar(Sidecar::None)
    .without_service();
    cluster.deploy(&outsider)?;
    let orders = cluster.pod_address("orders-db")?;
    cluster.apply(&SERVICE_ENTRY.replace("{{DB_IP}}", &orders))?;
    let mut checks = Checks::new();
    checks.run("the declared database answers psql", || declared(cluster));
    checks.run("the undeclared database is refused and logged", || {
        undeclared(cluster)
    });
    checks.run("an undeclared HTTP host gets 502 saying why", || {
        undeclared_http(cluster)
    });
    checks.run("the declared database through the egress gateway", || {
        through_gateway(cluster, &orders)
    });
    checks.finish().map_err(|e| with_logs(cluster, &PODS, e))
}

/// `psql` from the client pod to `pod`'s database: the query's answer, or
/// what psql said.
fn query(cluster: &dyn Cluster, pod: &str) -> Result<String, String> {
    let ip = cluster.pod_address(pod).map_err(|e| e.to_string())?;
    let conn = format!("host={ip} port=5432 user=postgres dbname=postgres connect_timeout=5");
    let out = cluster
        .exec("client", &["psql", &conn, "-tAc", "select 40 + 2"])
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(out.stdout.trim().to_string())
    } else {
        Err(format!("psql: {}", out.stderr.trim()))
    }
}

/// Peers `pod`'s PostgreSQL logged a connection from.
fn peers(cluster: &dyn Cluster, pod: &str) -> Result<Vec<String>, E2eError> {
    Ok(cluster
        .logs(pod)?
        .lines()
        .filter_map(|l| l.split("connection received: host=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(String::from)
        .collect())
}

fn declared(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    settle("psql reaches orders-db", || {
        match query(cluster, "orders-db")? {
            a if a == "42" => Ok(()),
            other => Err(format!("answer {other:?}")),
        }
    })?;
    let client_ip = cluster.pod_address("client")?;
    if !peers(cluster, "orders-db")?.contains(&client_ip) {
        return Err(E2eError::Invalid(format!(
            "orders-db should have seen the client pod ({client_ip}) connect"
        )));
    }
    Ok(())
}

fn undeclared(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let audit = cluster.pod_address("audit-db")?;
    let target = format!("{audit}:5432");
    // Every attempt must fail; the log line may lag the refusal a little.
    let client_ip = cluster.pod_address("client")?;
    for _ in 0..3 {
        if let Ok(answer) = query(cluster, "audit-db") {
            // Say who answered: the undeclared database itself, or the
            // declared one (a listener catching every connection to 5432).
            let by = if peers(cluster, "audit-db")?.contains(&client_ip) {
                "audit-db itself"
            } else {
                "not audit-db (another database took the connection)"
            };
            return Err(E2eError::Invalid(format!(
                "psql to the undeclared audit-db ({audit}) got an answer ({answer:?}) under \
                 REGISTRY_ONLY; it was answered by {by}"
            )));
        }
    }
    if peers(cluster, "audit-db")?.contains(&client_ip) {
        return Err(E2eError::Invalid("audit-db saw the client connect".into()));
    }
    eventually(
        "the refusal in the client sidecar's access log",
        CONVERGE,
        || {
            let entries = access_log(cluster, "client").map_err(|e| e.to_string())?;
            let refused = entries.iter().find(|e| e.downstream_local == target);
            match refused {
                Some(e)
                    if e.has_flag("UH")
                        && e.upstream_cluster == "BlackHoleCluster"
                        && e.explanation().contains("REGISTRY_ONLY") =>
                {
                    Ok(())
                }
                Some(e) => Err(format!(
                "the line for {target} should have UH, BlackHoleCluster and REGISTRY_ONLY: {:?}",
                e.raw
            )),
                None => Err(format!(
                    "no access log line for {target} in {} lines",
                    entries.len()
                )),
            }
        },
    )
}

fn undeclared_http(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    let url = format!("http://{}:8000/", cluster.pod_address("outsider")?);
    settle("the undeclared HTTP host is refused with a reason", || {
        let r = get_from(cluster, "client", &url)?;
        let why = r.header(crate::REASON_HEADER).unwrap_or("");
        if r.status == 502 && why.starts_with("NR") && why.contains("REGISTRY_ONLY") {
            Ok(())
        } else {
            Err(format!("status {}, x-mesh-reason {why:?}", r.status))
        }
    })?;
    logged(&access_log(cluster, "client")?, 502, "NR", "REGISTRY_ONLY").map_err(E2eError::Invalid)
}

fn through_gateway(cluster: &mut dyn Cluster, orders: &str) -> Result<(), E2eError> {
    cluster.apply(&THROUGH_GATEWAY.replace("{{DB_IP}}", orders))?;
    let gateway_ip = cluster.pod_address("istio-egressgateway")?;
    settle("psql reaches orders-db through the egress gateway", || {
        let before = peers(cluster, "orders-db")
            .map_err(|e| e.to_string())?
            .len();
        match query(cluster, "orders-db")? {
            a if a != "42" => return Err(format!("answer {a:?}")),
            _ => {}
        }
        let seen = peers(cluster, "orders-db").map_err(|e| e.to_string())?;
        match seen.get(before..) {
            Some(new) if !new.is_empty() && new.iter().all(|p| *p == gateway_ip) => Ok(()),
            other => Err(format!(
                "orders-db saw {other:?}, expected only the egress gateway {gateway_ip}"
            )),
        }
    })?;
    let entries = access_log(cluster, "istio-egressgateway")?;
    let via = entries
        .iter()
        .any(|e| e.upstream_cluster == "outbound|5432||orders-db.example.com");
    if !via {
        return Err(E2eError::Invalid(format!(
            "the egress gateway's access log has no line to outbound|5432||orders-db.example.com \
             ({} lines)",
            entries.len()
        )));
    }
    Ok(())
}

//! The kind driver's edge and extras: the ingress gateway's NodePorts
//! (one per Gateway server port, each mapped to a free port on the host's
//! 127.0.0.1), the egress gateway the installer made, files every pod can
//! read (a Secret mounted at [`FILES_DIR`]), PostgreSQL from its official
//! image, and requests made with curl from an app container.

use std::collections::BTreeMap;

use serde_json::json;

use super::manifest;
use super::KindCluster;
use crate::cluster::{HttpResponse, Port, Sidecar, Workload};
use crate::http::Request;
use crate::E2eError;
use mesh_local::registry::to_yaml_stream;
use mesh_local::LocalError;

pub use super::manifest::{FILES_DIR, FILES_SECRET};
/// The PostgreSQL image (Debian based, as the local driver's packages).
pub const POSTGRES_IMAGE: &str = "postgres:16-bookworm";

/// Gateway server port → (NodePort, the gateway's target port, port name).
pub const INGRESS_NODE_PORTS: [(u16, u16, u16, &str); 4] = [
    (80, 30080, 8080, "http2"),
    (443, 30443, 8443, "https"),
    (15443, 31443, 15443, "tls"),
    (31400, 31400, 31400, "tcp"),
];

impl KindCluster {
    /// Exposes every ingress port on its NodePort (mapped to the host).
    pub(super) fn expose_ingress(&self) -> Result<(), E2eError> {
        let ports: Vec<_> = INGRESS_NODE_PORTS
            .iter()
            .map(|(port, node, target, name)| {
                json!({"name": name, "port": port, "targetPort": target, "nodePort": node})
            })
            .collect();
        let patch = json!({"spec": {"type": "NodePort", "ports": ports}}).to_string();
        self.kubectl()
            .args([
                "-n",
                "istio-system",
                "patch",
                "service",
                "istio-ingressgateway",
            ])
            .args(["--type", "merge", "-p", &patch])
            .run()?;
        Ok(())
    }

    /// The installer's egress gateway, its Service given `ports`.
    pub(super) fn use_egress(&self, ports: &[Port]) -> Result<(), E2eError> {
        let found = self
            .kubectl()
            .args([
                "-n",
                "istio-system",
                "get",
                "deployment",
                "istio-egressgateway",
            ])
            .output()?;
        if !found.success() {
            return Err(E2eError::Unsupported {
                driver: "kind",
                what: "an egress gateway: the installer made no deployment \
                       istio-system/istio-egressgateway"
                    .into(),
            });
        }
        let ports: Vec<_> = ports
            .iter()
            .map(|p| json!({"name": p.name, "port": p.number, "targetPort": p.number}))
            .collect();
        let patch = json!({"spec": {"ports": ports}}).to_string();
        self.kubectl()
            .args([
                "-n",
                "istio-system",
                "patch",
                "service",
                "istio-egressgateway",
            ])
            .args(["--type", "merge", "-p", &patch])
            .run()?;
        Ok(())
    }

    /// PostgreSQL from its official image, outside the mesh.
    pub(super) fn postgres_workload(name: &str, namespace: &str) -> Workload {
        Workload::new(
            name,
            name,
            &[
                "docker-entrypoint.sh",
                "postgres",
                "-c",
                "log_connections=on",
            ],
        )
        .namespace(namespace)
        .image(POSTGRES_IMAGE)
        .env("POSTGRES_HOST_AUTH_METHOD", "trust")
        .port("tcp-postgres", mesh_local::POSTGRES_PORT, "TCP")
        .sidecar(Sidecar::None)
        .without_service()
    }

    /// Writes the files Secret into every namespace with pods (and
    /// istio-system) and mounts it into the gateways.
    pub(super) fn sync_files(&self) -> Result<(), E2eError> {
        let mut namespaces: Vec<&str> = self.pods.values().map(String::as_str).collect();
        namespaces.push("istio-system");
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            self.apply_files_secret(ns)?;
        }
        let patch = json!({"spec": {"template": {"spec": {
            "volumes": [manifest::files_volume()],
            "containers": [{"name": "istio-proxy", "volumeMounts": [manifest::files_mount()]}],
        }}}})
        .to_string();
        for gw in ["istio-ingressgateway", "istio-egressgateway"] {
            let exists = self
                .kubectl()
                .args(["-n", "istio-system", "get", "deployment", gw])
                .output()?;
            if !exists.success() {
                continue;
            }
            // Fails (and says why) if the gateway's container is not `istio-proxy`.
            self.kubectl()
                .args(["-n", "istio-system", "patch", "deployment", gw])
                .args(["--type", "strategic", "-p", &patch])
                .run()?;
            self.kubectl()
                .args(["-n", "istio-system", "rollout", "status"])
                .arg(format!("deployment/{gw}"))
                .arg("--timeout=180s")
                .timeout(super::SLOW)
                .run()?;
        }
        Ok(())
    }

    /// The files Secret in `namespace` (nothing when no file was put).
    pub(super) fn apply_files_secret(&self, namespace: &str) -> Result<(), E2eError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let secret = to_yaml_stream(&[json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": FILES_SECRET, "namespace": namespace},
            "stringData": self.files,
        })]);
        self.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(secret)
            .run()?;
        Ok(())
    }

    /// A request made with curl from `pod`'s app container (the app
    /// images carry curl).
    pub(super) fn curl(&self, pod: &str, req: &Request) -> Result<HttpResponse, E2eError> {
        let mut argv: Vec<String> = ["curl", "-sS", "-i", "-X", &req.method]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (k, v) in &req.headers {
            argv.extend(["-H".into(), format!("{k}: {v}")]);
        }
        if !req.body.is_empty() {
            argv.extend([
                "--data-binary".into(),
                String::from_utf8_lossy(&req.body).into_owned(),
            ]);
        }
        if let Some(addr) = req.connect_to {
            let (authority, _) = crate::http::split_url(&req.url).map_err(E2eError::Invalid)?;
            let (host, port) = crate::http::authority_addr(authority).map_err(E2eError::Invalid)?;
            argv.extend([
                "--connect-to".into(),
                format!("{host}:{port}:{}:{}", addr.ip(), addr.port()),
            ]);
        }
        argv.extend([
            "--max-time".into(),
            format!("{:.3}", req.timeout.as_secs_f64()),
            req.url.clone(),
        ]);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = crate::Cluster::exec(self, pod, &args)?;
        if !out.success() {
            return Err(LocalError::Command {
                command: format!("(in {pod}) {}", argv.join(" ")),
                status: format!("{:?}", out.code),
                stderr: out.stderr.trim().to_string(),
            }
            .into());
        }
        crate::http::parse_curl_include(&out.stdout)
    }
}

/// The host ports for every ingress NodePort, for the kind config.
pub fn ingress_port_map(
    free_port: impl Fn() -> Result<u16, E2eError>,
) -> Result<BTreeMap<u16, (u16, u16)>, E2eError> {
    let mut map = BTreeMap::new();
    for (port, node, _, _) in INGRESS_NODE_PORTS {
        map.insert(port, (node, free_port()?));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_runs_outside_the_mesh_from_its_image() {
        let w = KindCluster::postgres_workload("orders-db", "external");
        assert_eq!((w.sidecar, w.with_service), (Sidecar::None, false));
        assert_eq!(w.image, POSTGRES_IMAGE);
        assert_eq!(w.env["POSTGRES_HOST_AUTH_METHOD"], "trust");
    }
}

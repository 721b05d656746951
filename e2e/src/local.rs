//! The local driver: the scenarios' [`Cluster`] on this machine's network
//! namespaces, through the one-machine runtime `mesh-local` ([`LocalMesh`]:
//! bridge, pods with `mesh-proxy init` capture, the sidecar as UID 1337,
//! pilot on the bridge). This module adds only what tests need on top: the
//! workspace's binaries built and found beside the test binary, and
//! `mesh-e2e-tool` for HTTP checks made from inside a pod. Root only.

use std::path::{Path, PathBuf};

use mesh_local::{LocalError, LocalMesh, Options};
use mesh_test_support::bins;

use crate::cluster::{Cluster, ExecOutput, HttpResponse, Workload};
use crate::E2eError;

/// First characters of every name the e2e suite's local runs make.
pub const SUITE_TAG: &str = "e2e";

/// A cluster of network-namespace pods on this machine.
#[derive(Debug)]
pub struct LocalCluster {
    mesh: LocalMesh,
    applied: Vec<(PathBuf, String)>,
}

impl LocalCluster {
    /// Why the local driver cannot run here, if it cannot (not root, `ip`
    /// or iptables missing).
    pub fn unavailable() -> Option<String> {
        LocalMesh::unavailable()
    }

    /// Removes leftovers of killed runs of this suite, then makes a fresh
    /// bridge and run directory. Binaries (`mesh-pilot`, `mesh-proxy`,
    /// `mesh-e2e-tool`, the sample apps) are taken from `MESH_E2E_BIN_DIR`,
    /// else from the directory of the running test binary (`target/debug`),
    /// where they are built first if stale.
    pub fn new() -> Result<LocalCluster, E2eError> {
        if let Some(why) = LocalCluster::unavailable() {
            return Err(E2eError::missing(why));
        }
        let bin_dir = bins::bin_dir();
        bins::ensure_binaries(&bin_dir)?;
        let mesh = LocalMesh::new(Options::new(SUITE_TAG, &bin_dir))?;
        Ok(LocalCluster {
            mesh,
            applied: Vec::new(),
        })
    }

    /// The runtime underneath, for tests that look at its plumbing.
    pub fn mesh(&self) -> &LocalMesh {
        &self.mesh
    }

    /// This run's prefix (`e2e<pid>x<n>`), the start of every name it made.
    pub fn prefix(&self) -> &str {
        self.mesh.prefix()
    }

    /// This run's directory (config, logs).
    pub fn run_dir(&self) -> &Path {
        self.mesh.run_dir()
    }

    /// The network namespace of `pod`.
    pub fn netns(&self, pod: &str) -> Option<&str> {
        self.mesh.netns(pod)
    }

    /// Pilot's debug endpoint base URL (`/debug/configz`, `/debug/syncz`).
    pub fn pilot_debug_url(&self) -> String {
        self.mesh.pilot_debug_url()
    }

    /// The `mesh-e2e-tool` binary, which runs inside pods for checks.
    fn tool_path(&self) -> Result<String, E2eError> {
        let path = self.mesh.bin("mesh-e2e-tool");
        if path.is_file() {
            Ok(path.to_string_lossy().into_owned())
        } else {
            Err(E2eError::missing(format!(
                "{} (build it with `cargo build -p mesh-e2e`, or set MESH_E2E_BIN_DIR)",
                path.display()
            )))
        }
    }
}

impl Cluster for LocalCluster {
    fn driver(&self) -> &'static str {
        "local"
    }

    fn deploy(&mut self, workload: &Workload) -> Result<(), E2eError> {
        Ok(self.mesh.deploy(workload)?)
    }

    fn deploy_ingress(&mut self) -> Result<(), E2eError> {
        Ok(self.mesh.deploy_ingress()?)
    }

    fn apply(&mut self, yaml: &str) -> Result<(), E2eError> {
        let name = format!("applied-{:03}.yaml", self.applied.len() + 1);
        let path = self.mesh.write_config(&name, yaml)?;
        self.applied.push((path, yaml.to_string()));
        Ok(())
    }

    fn delete(&mut self, yaml: &str) -> Result<(), E2eError> {
        let Some(i) = self.applied.iter().position(|(_, y)| y == yaml) else {
            return Err(E2eError::Invalid(
                "the local driver deletes only YAML applied earlier, given verbatim".into(),
            ));
        };
        let (path, _) = self.applied.remove(i);
        std::fs::remove_file(&path).map_err(E2eError::io(path))
    }

    fn set_mesh_config(&mut self, yaml: &str) -> Result<(), E2eError> {
        Ok(self.mesh.set_mesh_config(yaml)?)
    }

    fn pod_address(&self, pod: &str) -> Result<String, E2eError> {
        self.mesh
            .pod_ip(pod)
            .map(|ip| ip.to_string())
            .ok_or_else(|| E2eError::Invalid(format!("no pod {pod:?} in this cluster")))
    }

    fn tool(&self) -> Result<String, E2eError> {
        self.tool_path()
    }

    fn ingress_url(&self) -> Result<String, E2eError> {
        self.mesh
            .ingress_url()
            .ok_or_else(|| E2eError::Invalid("no ingress deployed".into()))
    }

    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError> {
        Ok(self.mesh.exec(pod, argv)?)
    }

    fn http_get(&self, pod: &str, url: &str) -> Result<HttpResponse, E2eError> {
        // The tool resolves names through the pod's hosts file, as its app does.
        let tool = self.tool_path()?;
        let argv = [tool.as_str(), "fetch", url];
        let out = self.exec(pod, &argv)?;
        if !out.success() {
            return Err(LocalError::Command {
                command: format!("(in {pod}) {}", argv.join(" ")),
                status: format!("{:?}", out.code),
                stderr: out.stderr.trim().to_string(),
            }
            .into());
        }
        parse_fetch_output(&out.stdout)
    }

    fn logs(&self, pod: &str) -> Result<String, E2eError> {
        Ok(self.mesh.logs(pod)?)
    }

    fn teardown(&mut self) -> Result<(), E2eError> {
        Ok(self.mesh.teardown()?)
    }
}

/// Parses `mesh-e2e-tool fetch` output: `HTTP <status>`, a blank line, the body.
pub fn parse_fetch_output(stdout: &str) -> Result<HttpResponse, E2eError> {
    let (head, body) = stdout.split_once("\n\n").unwrap_or((stdout, ""));
    let status = head
        .strip_prefix("HTTP ")
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| E2eError::Invalid(format!("unexpected fetch output: {stdout:?}")))?;
    Ok(HttpResponse {
        status,
        body: body.to_string(),
    })
}

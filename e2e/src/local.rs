//! The local driver: the scenarios' [`Cluster`] on this machine's network
//! namespaces, through the one-machine runtime `mesh-local` ([`LocalMesh`]:
//! bridge, pods with `mesh-proxy init` capture, the sidecar as UID 1337,
//! pilot on the bridge). This module adds only what tests need on top: the
//! workspace's binaries built and found beside the test binary, and
//! `mesh-e2e-tool` for HTTP checks made from inside a pod. Root only.

use std::path::{Path, PathBuf};

use mesh_local::{LocalError, LocalMesh, Options};
use mesh_test_support::bins;

use crate::cluster::{Cluster, ExecOutput, HttpResponse, Port, Workload};
use crate::http::{parse_fetch_output, Request};
use crate::E2eError;

/// First characters of every name the e2e suite's local runs make.
pub const SUITE_TAG: &str = "e2e";

/// A cluster of network-namespace pods on this machine.
#[derive(Debug)]
pub struct LocalCluster {
    mesh: LocalMesh,
    /// Files written by `apply`, one per object (`kubectl apply`
    /// semantics: applying an object again replaces it).
    applied: Vec<PathBuf>,
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

    fn deploy_egress(&mut self, ports: &[Port]) -> Result<(), E2eError> {
        Ok(self.mesh.deploy_egress(ports)?)
    }

    fn deploy_postgres(&mut self, name: &str, namespace: &str) -> Result<(), E2eError> {
        Ok(self.mesh.deploy_postgres(name, namespace)?)
    }

    fn put_file(&mut self, name: &str, contents: &str) -> Result<String, E2eError> {
        let path = self.mesh.put_file(name, contents.as_bytes())?;
        Ok(path.to_string_lossy().into_owned())
    }

    fn apply(&mut self, yaml: &str) -> Result<(), E2eError> {
        for (key, doc) in objects(yaml)? {
            let path = self
                .mesh
                .write_config(&format!("applied-{key}.yaml"), &doc)?;
            if !self.applied.contains(&path) {
                self.applied.push(path);
            }
        }
        Ok(())
    }

    fn delete(&mut self, yaml: &str) -> Result<(), E2eError> {
        for (key, _) in objects(yaml)? {
            let path = self.mesh.config_dir().join(format!("applied-{key}.yaml"));
            let Some(i) = self.applied.iter().position(|p| *p == path) else {
                return Err(E2eError::Invalid(format!("{key} was not applied")));
            };
            self.applied.remove(i);
            std::fs::remove_file(&path).map_err(E2eError::io(path))?;
        }
        Ok(())
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

    fn ingress_address(&self, port: u16) -> Result<String, E2eError> {
        self.mesh
            .ingress_addr(port)
            .map(|a| a.to_string())
            .ok_or_else(|| {
                E2eError::Invalid(format!(
                    "no ingress deployed, or it does not serve port {port} (it maps {:?})",
                    mesh_local::INGRESS_PORTS
                ))
            })
    }

    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError> {
        Ok(self.mesh.exec(pod, argv)?)
    }

    fn request(&self, pod: &str, req: &Request) -> Result<HttpResponse, E2eError> {
        // The tool resolves names through the pod's hosts file, as its app does.
        let tool = self.tool_path()?;
        let args = req.tool_args();
        let mut argv: Vec<&str> = vec![tool.as_str()];
        argv.extend(args.iter().map(String::as_str));
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

    fn proxy_log(&self, pod: &str) -> Result<String, E2eError> {
        Ok(self.mesh.proxy_log(pod)?)
    }

    fn teardown(&mut self) -> Result<(), E2eError> {
        Ok(self.mesh.teardown()?)
    }
}

/// The documents of `yaml`, each with a file-name key `kind-namespace-name`
/// (namespace `default` when absent, as `kubectl apply` does).
fn objects(yaml: &str) -> Result<Vec<(String, String)>, E2eError> {
    let mut out = Vec::new();
    for doc in yaml.split("\n---") {
        let doc = doc.trim_start_matches("---").trim();
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: serde_yaml::Value = serde_yaml::from_str(doc)
            .map_err(|e| E2eError::Invalid(format!("applied YAML: {e}")))?;
        let field = |v: &serde_yaml::Value| v.as_str().map(str::to_ascii_lowercase);
        let kind = field(&value["kind"]);
        let name = field(&value["metadata"]["name"]);
        let ns = field(&value["metadata"]["namespace"]).unwrap_or_else(|| "default".into());
        let (Some(kind), Some(name)) = (kind, name) else {
            return Err(E2eError::Invalid(format!(
                "applied YAML needs kind and metadata.name: {doc}"
            )));
        };
        let key: String = format!("{kind}-{ns}-{name}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        out.push((key, format!("{doc}\n")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::objects;

    #[test]
    fn each_object_gets_one_key_so_applying_again_replaces_it() {
        let yaml = "# a comment\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec: {}\n---\nkind: DestinationRule\nmetadata:\n  name: reviews\n  namespace: shop\nspec: {}\n";
        let objs = objects(yaml).unwrap();
        let keys: Vec<&str> = objs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "virtualservice-default-reviews",
                "destinationrule-shop-reviews"
            ]
        );
        assert!(objs[0].1.contains("name: reviews"));
        assert!(objects("kind: VirtualService\nspec: {}\n").is_err());
    }
}

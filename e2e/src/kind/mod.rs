//! The kind driver: the same scenarios on a real Kubernetes (kind in
//! docker). It creates a cluster, builds and loads the images, runs the
//! mesh's installer, labels namespaces for injection, deploys with
//! `kubectl` and applies mesh config as Istio users do.
//!
//! It needs `docker` (with a running engine), `kind` and `kubectl`; without
//! them [`KindCluster::unavailable`] says what is missing and scenarios
//! skip, never claiming a pass they did not run.

mod edge;
mod manifest;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::{Cluster, ExecOutput, HttpResponse, Port, Sidecar, Workload};
use crate::http::Request;
use crate::local::SUITE_TAG;
use crate::E2eError;
use mesh_local::cmd::{self, Cmd};
use mesh_local::net::{new_prefix, prefix_pid};

/// Where kind runs keep their config and logs.
const RUN_ROOT: &str = "/tmp/mesh-e2e";

/// Time limit for cluster creation and rollouts.
pub(crate) const SLOW: Duration = Duration::from_secs(300);

/// An image built from a Dockerfile and loaded into the cluster.
#[derive(Debug, Clone)]
pub struct Image {
    /// Tag the Deployments refer to, e.g. `postcard:e2e`.
    pub tag: String,
    /// Dockerfile, relative to the repository root (the build context).
    pub dockerfile: PathBuf,
}

/// What to build and how to install the mesh.
#[derive(Debug, Clone)]
pub struct KindConfig {
    /// Repository root: the docker build context.
    pub repo_root: PathBuf,
    /// Images to build and load.
    pub images: Vec<Image>,
    /// The installer command, run with `KUBECONFIG` set.
    pub install: Vec<String>,
}

impl KindConfig {
    /// The samples' images and `meshctl install --profile demo`.
    pub fn for_repo(repo_root: &Path) -> KindConfig {
        let images = [
            ("postcard:e2e", "samples/postcard/Dockerfile"),
            ("bookinfo:e2e", "samples/bookinfo/Dockerfile"),
            ("mesh-e2e-tool:e2e", "e2e/Dockerfile"),
        ]
        .into_iter()
        .filter(|(_, f)| repo_root.join(f).is_file())
        .map(|(tag, f)| Image {
            tag: tag.into(),
            dockerfile: f.into(),
        })
        .collect();
        KindConfig {
            repo_root: repo_root.to_path_buf(),
            images,
            install: ["meshctl", "install", "--profile", "demo"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// A kind cluster made for one run, deleted at teardown.
#[derive(Debug)]
pub struct KindCluster {
    name: String,
    run_dir: PathBuf,
    kubeconfig: PathBuf,
    /// Gateway server port → (NodePort, host port on 127.0.0.1).
    ingress_ports: BTreeMap<u16, (u16, u16)>,
    pods: BTreeMap<String, String>,
    /// Shared files by name ([`Cluster::put_file`]).
    files: BTreeMap<String, String>,
    torn_down: bool,
}

impl KindCluster {
    /// What is missing for the kind driver, if anything.
    pub fn unavailable() -> Option<String> {
        let missing: Vec<&str> = ["docker", "kind", "kubectl"]
            .into_iter()
            .filter(|p| cmd::which(p).is_none())
            .collect();
        if !missing.is_empty() {
            return Some(format!("not installed: {}", missing.join(", ")));
        }
        let info = Cmd::new("docker")
            .arg("info")
            .timeout(Duration::from_secs(20));
        match info.output() {
            Ok(out) if out.success() => None,
            _ => Some("the docker engine is not running (`docker info` fails)".into()),
        }
    }

    /// Creates the cluster, loads the images and installs the mesh.
    pub fn create(cfg: &KindConfig) -> Result<KindCluster, E2eError> {
        if let Some(why) = KindCluster::unavailable() {
            return Err(E2eError::missing(why));
        }
        KindCluster::cleanup_stale(SUITE_TAG)?;
        let name = new_prefix(SUITE_TAG);
        let run_dir = Path::new(RUN_ROOT).join(&name);
        std::fs::create_dir_all(&run_dir).map_err(E2eError::io(&run_dir))?;
        let ingress_ports = edge::ingress_port_map(free_port)?;
        // From here on, drop deletes whatever was made.
        let cluster = KindCluster {
            kubeconfig: run_dir.join("kubeconfig"),
            name,
            run_dir,
            ingress_ports,
            pods: BTreeMap::new(),
            files: BTreeMap::new(),
            torn_down: false,
        };
        let kind_cfg = cluster.run_dir.join("kind.yaml");
        let mappings: String = cluster
            .ingress_ports
            .values()
            .map(|(node, host)| {
                format!(
                    "  - {{containerPort: {node}, hostPort: {host}, listenAddress: 127.0.0.1}}\n"
                )
            })
            .collect();
        let text = format!(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  \
             extraPortMappings:\n{mappings}"
        );
        std::fs::write(&kind_cfg, text).map_err(E2eError::io(&kind_cfg))?;
        Cmd::new("kind")
            .args([
                "create",
                "cluster",
                "--name",
                &cluster.name,
                "--wait",
                "180s",
            ])
            .arg("--config")
            .arg(kind_cfg.to_string_lossy())
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig.to_string_lossy())
            .timeout(SLOW)
            .run()?;
        for image in &cfg.images {
            let dockerfile = cfg.repo_root.join(&image.dockerfile);
            Cmd::new("docker")
                .args(["build", "-t", &image.tag, "-f"])
                .arg(dockerfile.to_string_lossy())
                .arg(cfg.repo_root.to_string_lossy())
                .timeout(Duration::from_secs(1800))
                .run()?;
            Cmd::new("kind")
                .args(["load", "docker-image", &image.tag, "--name", &cluster.name])
                .timeout(SLOW)
                .run()?;
        }
        if let Some((program, args)) = cfg.install.split_first() {
            Cmd::new(program.as_str())
                .args(args.iter().cloned())
                .env("KUBECONFIG", cluster.kubeconfig.to_string_lossy())
                .timeout(SLOW)
                .run()?;
        }
        Ok(cluster)
    }

    /// Deletes kind clusters of dead runs of this suite (named `TAG<pid>x..`).
    pub fn cleanup_stale(tag: &str) -> Result<Vec<String>, E2eError> {
        let clusters = Cmd::new("kind").args(["get", "clusters"]).run()?;
        let mut removed = Vec::new();
        for name in clusters.lines().map(str::trim) {
            let dead = prefix_pid(name, tag)
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if dead {
                Cmd::new("kind")
                    .args(["delete", "cluster", "--name", name])
                    .timeout(SLOW)
                    .run()?;
                removed.push(format!("kind cluster {name}"));
            }
        }
        Ok(removed)
    }

    fn kubectl(&self) -> Cmd {
        Cmd::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig.to_string_lossy())
    }

    fn namespace_of(&self, pod: &str) -> Result<&str, E2eError> {
        self.pods
            .get(pod)
            .map(String::as_str)
            .ok_or_else(|| E2eError::Invalid(format!("no pod {pod:?} in this cluster")))
    }
}

impl Cluster for KindCluster {
    fn driver(&self) -> &'static str {
        "kind"
    }

    fn deploy(&mut self, w: &Workload) -> Result<(), E2eError> {
        w.validate()?;
        if w.sidecar == Sidecar::Envoy {
            return Err(E2eError::Unsupported {
                driver: "kind",
                what: "an Envoy sidecar (the injector only injects mesh-proxy)".into(),
            });
        }
        let yaml = format!(
            "{}---\n{}",
            manifest::namespace(&w.namespace),
            manifest::workload(w)
        );
        self.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(yaml)
            .run()?;
        // The shared files, before the pod (which mounts them) starts.
        self.apply_files_secret(&w.namespace)?;
        self.kubectl()
            .args(["rollout", "status", "-n", &w.namespace])
            .arg(format!("deployment/{}", w.name))
            .arg("--timeout=180s")
            .timeout(SLOW)
            .run()?;
        self.pods.insert(w.name.clone(), w.namespace.clone());
        Ok(())
    }

    fn deploy_ingress(&mut self) -> Result<(), E2eError> {
        // The installer made the gateway; expose its ports on the mapped NodePorts.
        self.expose_ingress()?;
        self.pods
            .insert("istio-ingressgateway".into(), "istio-system".into());
        Ok(())
    }

    fn deploy_egress(&mut self, ports: &[Port]) -> Result<(), E2eError> {
        self.use_egress(ports)?;
        self.pods
            .insert("istio-egressgateway".into(), "istio-system".into());
        Ok(())
    }

    fn deploy_postgres(&mut self, name: &str, namespace: &str) -> Result<(), E2eError> {
        self.deploy(&KindCluster::postgres_workload(name, namespace))
    }

    fn put_file(&mut self, name: &str, contents: &str) -> Result<String, E2eError> {
        self.files.insert(name.to_string(), contents.to_string());
        self.sync_files()?;
        Ok(format!("{}/{name}", edge::FILES_DIR))
    }

    fn apply(&mut self, yaml: &str) -> Result<(), E2eError> {
        self.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(yaml)
            .run()?;
        Ok(())
    }

    fn delete(&mut self, yaml: &str) -> Result<(), E2eError> {
        self.kubectl()
            .args(["delete", "--ignore-not-found", "-f", "-"])
            .stdin(yaml)
            .run()?;
        Ok(())
    }

    fn set_mesh_config(&mut self, yaml: &str) -> Result<(), E2eError> {
        // Istio's shape: ConfigMap `istio` key `mesh`, read by istiod at start.
        let cm = mesh_local::registry::to_yaml_stream(&[serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": yaml},
        })]);
        self.kubectl().args(["apply", "-f", "-"]).stdin(cm).run()?;
        for step in ["restart", "status"] {
            self.kubectl()
                .args(["rollout", step, "-n", "istio-system", "deployment/istiod"])
                .timeout(SLOW)
                .run()?;
        }
        Ok(())
    }

    fn pod_address(&self, pod: &str) -> Result<String, E2eError> {
        let ns = self.namespace_of(pod)?;
        let ip = self
            .kubectl()
            .args(["get", "pods", "-n", ns, "-l"])
            // Gateways come from the installer, labelled `app: NAME` as in Istio.
            .arg(if pod.starts_with("istio-") {
                format!("app={pod}")
            } else {
                format!("e2e-pod={pod}")
            })
            .args(["-o", "jsonpath={.items[*].status.podIP}"])
            .run()?;
        match ip.split_whitespace().next() {
            Some(ip) => Ok(ip.to_string()),
            None => Err(E2eError::Invalid(format!("pod {pod} has no IP yet"))),
        }
    }

    fn tool(&self) -> Result<String, E2eError> {
        // On PATH in the tool image (e2e/Dockerfile).
        Ok("mesh-e2e-tool".into())
    }

    fn ingress_url(&self) -> Result<String, E2eError> {
        Ok(format!("http://{}", self.ingress_address(80)?))
    }

    fn ingress_address(&self, port: u16) -> Result<String, E2eError> {
        match self.ingress_ports.get(&port) {
            Some((_, host)) => Ok(format!("127.0.0.1:{host}")),
            None => Err(E2eError::Unsupported {
                driver: "kind",
                what: format!("ingress port {port} (mapped: 80, 443, 15443, 31400)"),
            }),
        }
    }

    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError> {
        let ns = self.namespace_of(pod)?;
        self.kubectl()
            .args([
                "exec",
                "-n",
                ns,
                &format!("deployment/{pod}"),
                "-c",
                "app",
                "--",
            ])
            .args(argv.iter().copied())
            // Loads of a few thousand requests run here too.
            .timeout(Duration::from_secs(300))
            .output()
            .map_err(E2eError::from)
    }

    fn request(&self, pod: &str, req: &Request) -> Result<HttpResponse, E2eError> {
        self.curl(pod, req)
    }

    fn logs(&self, pod: &str) -> Result<String, E2eError> {
        let ns = self.namespace_of(pod)?;
        self.kubectl()
            .args(["logs", "-n", ns, &format!("deployment/{pod}")])
            .args(["--all-containers", "--prefix"])
            .run()
            .map_err(E2eError::from)
    }

    fn proxy_log(&self, pod: &str) -> Result<String, E2eError> {
        let ns = self.namespace_of(pod)?;
        // The injected sidecar's container (Istio's name).
        self.kubectl()
            .args([
                "logs",
                "-n",
                ns,
                &format!("deployment/{pod}"),
                "-c",
                "istio-proxy",
            ])
            .run()
            .map_err(E2eError::from)
    }

    fn teardown(&mut self) -> Result<(), E2eError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let deleted = Cmd::new("kind")
            .args(["delete", "cluster", "--name", &self.name])
            .timeout(SLOW)
            .run();
        let _ = std::fs::remove_dir_all(&self.run_dir);
        deleted.map(|_| ()).map_err(E2eError::from)
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("mesh-e2e: deleting kind cluster {} failed: {e}", self.name);
        }
    }
}

/// A port on 127.0.0.1 that is free right now, for the ingress mapping.
fn free_port() -> Result<u16, E2eError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(E2eError::io("127.0.0.1:0"))
}

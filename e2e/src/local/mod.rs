//! The local driver: Kubernetes pods emulated on this machine as network
//! namespaces joined by a bridge (see [`net`]), with `mesh-proxy init`
//! capture and the sidecar running as UID 1337 inside each, exactly as in a
//! pod; pilot runs in the root namespace on the bridge address and learns the
//! workloads from generated ServiceEntry/WorkloadEntry config. Root only.
//!
//! A run lives under `/tmp/mesh-e2e/PREFIX/`: `config/` (pilot's watched
//! directory), `logs/POD.CONTAINER.log`, `envoy/` bootstraps. Teardown (also
//! on drop, so on a failing test too) stops every process, deletes the
//! namespaces, veths, bridge, `/etc/netns/*` entries and the run directory;
//! [`cleanup_stale`] removes what a killed run left behind.

mod build;
pub mod net;
mod pod;
pub mod procs;
pub mod registry;
mod stale;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::{Cluster, ExecOutput, HttpResponse, Workload};
use crate::cmd::{self, Cmd};
use crate::E2eError;

use net::Net;
use procs::Procs;
use registry::Registry;

pub use stale::{cleanup_run, cleanup_stale};

/// Where runs keep their config and logs.
pub const RUN_ROOT: &str = "/tmp/mesh-e2e";

/// Where `ip netns exec` finds per-namespace files such as `hosts`.
const ETC_NETNS: &str = "/etc/netns";

/// Time limit of [`Cluster::exec`].
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// How [`LocalCluster::with_options`] departs from [`LocalCluster::new`];
/// the default is exactly `new()`. Used by `meshctl local up` (namespaces
/// mode), which runs a sample's pods with this driver.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Start of every name the run makes, instead of [`net::SUITE_TAG`];
    /// leftovers of dead runs with this tag are removed first.
    pub tag: Option<String>,
    /// A directory the caller owns to use as the run directory (`config/`,
    /// `logs/`, `envoy/`); it is left in place at teardown.
    pub run_dir: Option<PathBuf>,
    /// Where the binaries are, instead of `MESH_E2E_BIN_DIR` or the test
    /// binary's directory.
    pub bin_dir: Option<PathBuf>,
    /// The caller registers the pods with pilot itself (from
    /// [`LocalCluster::pod_ip`] and [`LocalCluster::service_vip`]): the
    /// cluster writes no ServiceEntry/WorkloadEntry config of its own.
    pub caller_registers: bool,
}

/// A cluster of network-namespace pods on this machine.
#[derive(Debug)]
pub struct LocalCluster {
    prefix: String,
    run_dir: PathBuf,
    own_run_dir: bool,
    write_registry: bool,
    bin_dir: PathBuf,
    net: Net,
    procs: Procs,
    registry: Registry,
    pilot: bool,
    mesh_config: Option<PathBuf>,
    applied: Vec<(PathBuf, String)>,
    torn_down: bool,
}

impl LocalCluster {
    /// Why the local driver cannot run here, if it cannot (not root, `ip` or
    /// `setpriv` missing).
    pub fn unavailable() -> Option<String> {
        if !cmd::is_root() {
            return Some("needs root for network namespaces".into());
        }
        ["ip", "setpriv"]
            .into_iter()
            .find(|p| cmd::which(p).is_none())
            .map(|p| format!("`{p}` is not installed"))
    }

    /// Removes leftovers of killed runs of this suite, then makes a fresh
    /// bridge and run directory. Binaries (`mesh-pilot`, `mesh-proxy`,
    /// `mesh-e2e-tool`, the sample apps) are taken from `MESH_E2E_BIN_DIR`,
    /// else from the directory of the running test binary (`target/debug`).
    pub fn new() -> Result<LocalCluster, E2eError> {
        LocalCluster::with_options(LocalOptions::default())
    }

    /// As [`LocalCluster::new`], changed by `options`.
    pub fn with_options(options: LocalOptions) -> Result<LocalCluster, E2eError> {
        if let Some(why) = LocalCluster::unavailable() {
            return Err(E2eError::Missing(why));
        }
        let tag = options.tag.as_deref().unwrap_or(net::SUITE_TAG);
        for removed in cleanup_stale(tag)? {
            eprintln!("mesh-e2e: removed leftover of an earlier run: {removed}");
        }
        if options.bin_dir.is_none() {
            build::ensure_binaries(&bin_dir())?;
        }
        let prefix = net::new_prefix_tagged(tag);
        let own_run_dir = options.run_dir.is_none();
        let run_dir = options
            .run_dir
            .unwrap_or_else(|| Path::new(RUN_ROOT).join(&prefix));
        for dir in ["config", "logs", "envoy"] {
            let dir = run_dir.join(dir);
            std::fs::create_dir_all(&dir).map_err(E2eError::io(dir))?;
        }
        let net = match Net::create(&prefix) {
            Ok(net) => net,
            Err(e) => {
                if own_run_dir {
                    let _ = std::fs::remove_dir_all(&run_dir);
                }
                return Err(e);
            }
        };
        Ok(LocalCluster {
            procs: Procs::new(&prefix),
            prefix,
            run_dir,
            own_run_dir,
            write_registry: !options.caller_registers,
            bin_dir: options.bin_dir.unwrap_or_else(bin_dir),
            net,
            registry: Registry::default(),
            pilot: false,
            mesh_config: None,
            applied: Vec::new(),
            torn_down: false,
        })
    }

    /// This run's prefix (`e2e<pid>x<n>`), the start of every name it made.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This run's directory (config, logs).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The bridge's name in the root namespace.
    pub fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    /// The bridge address: the pods' gateway and pilot's address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.net.gateway()
    }

    /// The address of `pod`.
    pub fn pod_ip(&self, pod: &str) -> Option<Ipv4Addr> {
        self.registry.pods.get(pod).map(|p| p.ip)
    }

    /// The network namespace of `pod`.
    pub fn netns(&self, pod: &str) -> Option<&str> {
        self.registry.pods.get(pod).map(|p| p.netns.as_str())
    }

    /// The VIP of a service.
    pub fn service_vip(&self, service: &str, namespace: &str) -> Option<Ipv4Addr> {
        let key = (namespace.to_string(), service.to_string());
        self.registry.services.get(&key).map(|s| s.vip)
    }

    /// Pilot's debug endpoint base URL (`/debug/configz`, `/debug/syncz`).
    pub fn pilot_debug_url(&self) -> String {
        format!("http://{}:8080", self.gateway())
    }

    /// Pilot's xDS address (on the bridge), for proxies outside the pods.
    pub fn pilot_xds_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from((self.gateway(), pod::XDS_PORT))
    }

    /// Pilot's watched config directory (`RUN_DIR/config`).
    pub fn config_dir(&self) -> PathBuf {
        self.run_dir.join("config")
    }

    /// Path of a binary beside the test binaries.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    fn pod(&self, pod: &str) -> Result<&registry::Pod, E2eError> {
        self.registry
            .pods
            .get(pod)
            .ok_or_else(|| E2eError::Invalid(format!("no pod {pod:?} in this cluster")))
    }

    /// Rewrites every pod's hosts file in place (same inode, so processes
    /// already running see new services too).
    fn write_hosts_files(&self) -> Result<(), E2eError> {
        for pod in self.registry.pods.values() {
            let dir = Path::new(ETC_NETNS).join(&pod.netns);
            std::fs::create_dir_all(&dir).map_err(E2eError::io(&dir))?;
            let path = dir.join("hosts");
            std::fs::write(&path, self.registry.hosts_file(pod)).map_err(E2eError::io(path))?;
        }
        Ok(())
    }

    /// Writes a file into pilot's config directory atomically (pilot watches it).
    fn write_config(&self, name: &str, yaml: &str) -> Result<PathBuf, E2eError> {
        let dir = self.run_dir.join("config");
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        std::fs::write(&tmp, yaml).map_err(E2eError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(E2eError::io(&path))?;
        Ok(path)
    }

    fn log_path(&self, pod: &str, container: &str) -> PathBuf {
        self.run_dir
            .join("logs")
            .join(format!("{pod}.{container}.log"))
    }

    /// Prints the end of every log: called when tearing down after a panic,
    /// since the run directory is removed with everything else.
    fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join("logs")) else {
            return;
        };
        for entry in entries.flatten() {
            eprintln!(
                "---- {} (last 40 lines) ----\n{}",
                entry.path().display(),
                procs::tail(&entry.path(), 40)
            );
        }
    }
}

impl Cluster for LocalCluster {
    fn driver(&self) -> &'static str {
        "local"
    }

    fn deploy(&mut self, workload: &Workload) -> Result<(), E2eError> {
        self.deploy_pod(workload, false)
    }

    fn deploy_ingress(&mut self) -> Result<(), E2eError> {
        let gw = Workload::new(
            "istio-ingressgateway",
            "istio-ingressgateway",
            &["mesh-proxy"],
        )
        .namespace("istio-system")
        .label("istio", "ingressgateway")
        .service_account("istio-ingressgateway-service-account");
        self.deploy_pod(&gw, true)
    }

    fn apply(&mut self, yaml: &str) -> Result<(), E2eError> {
        let name = format!("applied-{:03}.yaml", self.applied.len() + 1);
        let path = self.write_config(&name, yaml)?;
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
        let path = self.run_dir.join("mesh-config.yaml");
        std::fs::write(&path, yaml).map_err(E2eError::io(&path))?;
        self.mesh_config = Some(path);
        if self.pilot {
            // Pilot reads mesh config at start only.
            self.procs.stop("pilot");
            self.pilot = false;
            self.ensure_pilot()?;
        }
        Ok(())
    }

    fn pod_address(&self, pod: &str) -> Result<String, E2eError> {
        Ok(self.pod(pod)?.ip.to_string())
    }

    fn tool(&self) -> Result<String, E2eError> {
        self.tool_path()
    }

    fn ingress_url(&self) -> Result<String, E2eError> {
        self.registry
            .pods
            .values()
            .find(|p| p.ingress)
            .map(|p| format!("http://{}:{}", p.ip, pod::INGRESS_HTTP_PORT))
            .ok_or_else(|| E2eError::Invalid("no ingress deployed".into()))
    }

    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError> {
        let netns = &self.pod(pod)?.netns;
        Cmd::new("ip")
            .args(["netns", "exec", netns])
            .args(argv.iter().copied())
            .timeout(EXEC_TIMEOUT)
            .output()
    }

    fn http_get(&self, pod: &str, url: &str) -> Result<HttpResponse, E2eError> {
        let tool = self.tool_path()?;
        let argv = [tool.as_str(), "fetch", url];
        let out = self.exec(pod, &argv)?;
        if !out.success() {
            return Err(E2eError::Command {
                command: format!("(in {pod}) {}", argv.join(" ")),
                status: format!("{:?}", out.code),
                stderr: out.stderr.trim().to_string(),
            });
        }
        parse_fetch_output(&out.stdout)
    }

    fn logs(&self, pod: &str) -> Result<String, E2eError> {
        self.pod(pod)?;
        let mut out = String::new();
        for container in ["init", "proxy", "app"] {
            let path = self.log_path(pod, container);
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push_str(&format!("==> {container} <==\n{text}"));
            }
        }
        Ok(out)
    }

    fn teardown(&mut self) -> Result<(), E2eError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.procs.stop_all(self.net.namespaces());
        let mut errors = self.net.teardown();
        for pod in self.registry.pods.values() {
            let dir = Path::new(ETC_NETNS).join(&pod.netns);
            if let Err(e) = remove_dir_if_present(&dir) {
                errors.push(e);
            }
        }
        if self.own_run_dir {
            if let Err(e) = remove_dir_if_present(&self.run_dir) {
                errors.push(e);
            }
        }
        match errors.into_iter().next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("mesh-e2e: teardown of {} incomplete: {e}", self.prefix);
        }
    }
}

fn remove_dir_if_present(dir: &Path) -> Result<(), E2eError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(E2eError::io(dir)(e)),
        _ => Ok(()),
    }
}

/// `MESH_E2E_BIN_DIR`, else the directory holding the test binary (with
/// cargo's `deps/` stripped): where cargo puts the workspace's binaries.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESH_E2E_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
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

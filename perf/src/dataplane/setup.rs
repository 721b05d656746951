//! Starting a run's processes, each pinned as in the original measurement
//! (upstream and pilot on CPU 0 with the load generators, every proxy on
//! CPU 1 with one worker), and waiting for each to be ready by polling.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use super::probe::Probe;
use super::procs::{pinned, wait_for, Proc};
use super::topology::{self, Pair, ADMIN_PORT, ENVOY_PAIR, MESH_PAIR, PILOT_IP, UPSTREAM_IP};
use super::workload::PathKind;

/// CPU of the load generators, the upstream and pilot.
pub const LOAD_CPU: u32 = 0;
/// CPU of every proxy.
pub const PROXY_CPU: u32 = 1;

const START_LIMIT: Duration = Duration::from_secs(30);

/// What a run needs to start its processes.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Directory of `mesh-pilot` and `mesh-proxy` (beside `mesh-bench`).
    pub bin_dir: PathBuf,
    /// `mesh-bench` itself, for the upstream.
    pub bench: PathBuf,
    /// An Envoy 1.40 binary, or `None` to leave the Envoy pair out.
    pub envoy: Option<PathBuf>,
    /// Where config, bootstraps and logs go.
    pub work: PathBuf,
}

/// One sidecar of a pair.
#[derive(Debug)]
pub struct Sidecar {
    /// The pair's path.
    pub path: PathKind,
    /// Server side (in front of the upstream) or client side.
    pub server: bool,
    /// The process.
    pub proc: Proc,
}

/// Every long-running process of a run; dropping it stops them all.
#[derive(Debug)]
pub struct Fleet {
    /// Proxies first, so they stop before what they talk to.
    pub sidecars: Vec<Sidecar>,
    /// mesh-pilot.
    pub pilot: Proc,
    /// The upstream.
    pub upstream: Proc,
}

impl Fleet {
    /// The sidecars on `path`; with `server_only`, just the server side.
    pub fn proxies(&self, path: PathKind, server_only: bool) -> Vec<&Sidecar> {
        self.sidecars
            .iter()
            .filter(|s| s.path == path && (s.server || !server_only))
            .collect()
    }

    /// An error if any process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.upstream.check_running()?;
        self.pilot.check_running()?;
        for s in &mut self.sidecars {
            s.proc.check_running()?;
        }
        Ok(())
    }
}

/// Start upstream, pilot and the sidecars, and wait until all are ready.
pub async fn start(setup: &Setup) -> anyhow::Result<Fleet> {
    let logs = setup.work.join("logs");
    std::fs::create_dir_all(&logs).context("create log dir")?;

    let mut upstream = pinned(LOAD_CPU, &setup.bench);
    upstream.arg("upstream");
    for port in [topology::HTTP1, topology::HTTP2, topology::GRPC] {
        upstream
            .arg("--http")
            .arg(topology::upstream(port).to_string());
    }
    upstream
        .arg("--tcp")
        .arg(topology::upstream(topology::TCP).to_string());
    let mut upstream = Proc::spawn("upstream", upstream, &logs)?;
    let probe_addr = topology::upstream(topology::HTTP1);
    let authority = probe_addr.to_string();
    wait_for(
        "the upstream",
        START_LIMIT,
        &mut [&mut upstream],
        || async {
            let reply = Probe::get(probe_addr, &authority, "/1k").send().await?;
            reply.status.is_success().then_some(())
        },
    )
    .await?;

    let config = setup.work.join("config");
    topology::write_config(&config).context("write pilot config")?;
    let xds = SocketAddr::from((PILOT_IP, topology::XDS_PORT));
    let mut pilot = pinned(LOAD_CPU, setup.bin_dir.join("mesh-pilot"));
    pilot
        .arg("--config-dir")
        .arg(&config)
        .args(["--xds-address", &xds.to_string()])
        .args([
            "--debug-address",
            &SocketAddr::from((PILOT_IP, topology::DEBUG_PORT)).to_string(),
        ]);
    let mut pilot = Proc::spawn("pilot", pilot, &logs)?;
    wait_for(
        "pilot's ADS port",
        START_LIMIT,
        &mut [&mut pilot],
        || async { tokio::net::TcpStream::connect(xds).await.ok().map(|_| ()) },
    )
    .await?;

    let mut sidecars = Vec::new();
    for server in [false, true] {
        let cmd = mesh_proxy(&setup.bin_dir, &MESH_PAIR, server, xds);
        let name = format!("mesh-proxy-{}", side(server));
        sidecars.push(Sidecar {
            path: PathKind::MeshProxy,
            server,
            proc: Proc::spawn(&name, cmd, &logs)?,
        });
    }
    if let Some(envoy) = &setup.envoy {
        for server in [false, true] {
            let bootstrap = setup.work.join(format!("envoy-{}.yaml", side(server)));
            std::fs::write(&bootstrap, topology::envoy_bootstrap(&ENVOY_PAIR, server))
                .context("write Envoy bootstrap")?;
            let mut cmd = pinned(PROXY_CPU, envoy);
            cmd.arg("-c")
                .arg(&bootstrap)
                .args(["--concurrency", "1", "--disable-hot-restart"])
                .args(["-l", "warning"]);
            let name = format!("envoy-{}", side(server));
            sidecars.push(Sidecar {
                path: PathKind::Envoy,
                server,
                proc: Proc::spawn(&name, cmd, &logs)?,
            });
        }
    }
    let mut fleet = Fleet {
        sidecars,
        pilot,
        upstream,
    };
    for i in 0..fleet.sidecars.len() {
        let s = &fleet.sidecars[i];
        let pair = s.path.pair().expect("sidecars are on pair paths");
        let (ip, _) = pair.node(s.server);
        let admin = SocketAddr::from((ip, ADMIN_PORT));
        let what = format!("{} to be ready", s.proc.name());
        let mut procs: Vec<&mut Proc> = vec![&mut fleet.pilot];
        procs.push(&mut fleet.sidecars[i].proc);
        let host = admin.to_string();
        wait_for(&what, START_LIMIT, &mut procs, || async {
            let reply = Probe::get(admin, &host, "/ready").send().await?;
            (reply.status.is_success() && reply.body.starts_with(b"LIVE")).then_some(())
        })
        .await?;
    }
    Ok(fleet)
}

fn side(server: bool) -> &'static str {
    if server {
        "server"
    } else {
        "client"
    }
}

/// A mesh-proxy sidecar in NONE mode with one runtime worker (mesh-proxy
/// has no thread flag; its `#[tokio::main]` runtime reads
/// `TOKIO_WORKER_THREADS`).
fn mesh_proxy(bin_dir: &Path, pair: &Pair, server: bool, xds: SocketAddr) -> Command {
    let (ip, _) = pair.node(server);
    let mut cmd = pinned(PROXY_CPU, bin_dir.join("mesh-proxy"));
    cmd.args(["--xds-address", &xds.to_string()])
        .args(["--node-id", &pair.node_id(server)])
        .args(["--namespace", "default", "--service-account", "bench"])
        .args(["--labels", &format!("app={}", pair.app_label(server))])
        .args(["--interception-mode", "NONE"])
        .args(["--http-proxy-port", &topology::HTTP_PROXY_PORT.to_string()])
        .args(["--app-ip", &UPSTREAM_IP.to_string()])
        .args([
            "--admin-address",
            &SocketAddr::from((ip, ADMIN_PORT)).to_string(),
        ])
        .env("TOKIO_WORKER_THREADS", "1")
        .env("RUST_LOG", "warn");
    cmd
}

/// `Ok(version line)` if `envoy --version` reports 1.40, else why not.
pub fn envoy_version(envoy: &Path) -> Result<String, String> {
    let out = Command::new(envoy)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", envoy.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.contains("/1.40.") {
        Ok(text)
    } else {
        Err(format!("{} --version: {text:?}, not 1.40", envoy.display()))
    }
}

//! `meshctl local up` in namespaces mode (root): each workload runs as a
//! pod of the one-machine runtime ([`mesh_local::LocalMesh`]): its own
//! network namespace on a bridge with a 198.18.N.x address, `mesh-proxy
//! init` capture, the sidecar as UID 1337, the app unmodified, service names
//! resolved to VIPs by the pod's hosts file. Pilot runs on the bridge
//! address; the ingress gateway runs in the root namespace in NONE mode on
//! 127.0.0.1:INGRESS_PORT and reaches the pods over the bridge.
//!
//! ```text
//!  host ─► 127.0.0.1:INGRESS_PORT ingress ──bridge──► pod 198.18.N.x:PORT ─(capture)─► sidecar ─► app
//!                                    │                     app ─► messenger:9080 (VIP) ─(capture)─► sidecar ─► pod
//!          pilot 198.18.N.1:15010 ◄──┴── sidecars           config: STATE/config (the sample, re-addressed)
//! ```
//!
//! The runtime's blocking steps run on a blocking thread; the mesh sits
//! behind a mutex so that a signal during start-up waits for the current
//! step and then tears down everything made so far.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use mesh_api::Object;
use mesh_local::process::Exited;
use mesh_local::{LocalMesh, Options, Spawn, Workload};

use super::plan::{self, LocalFile, Ports, TAG};
use super::pods::{self, PodPlan};
use super::session::{self, Signals};
use super::state::{write_atomic, ProcessInfo, State};
use super::{wait, Mode, UpArgs};

/// Addresses by the `(namespace, name)` of a config object.
type Addresses = BTreeMap<pods::Key, std::net::Ipv4Addr>;

/// The sample, loaded and validated by `local up`.
#[derive(Debug)]
pub struct Sample {
    /// Its `local.yaml`.
    pub local: LocalFile,
    /// Its mesh objects.
    pub objects: Vec<Object>,
    /// Its `mesh/*.yaml` files.
    pub mesh_files: Vec<PathBuf>,
    /// Its directory (absolute).
    pub dir: PathBuf,
}

/// The mode `local up` runs in: `auto` becomes namespaces where they work.
pub fn resolve_mode(mode: Mode) -> anyhow::Result<Mode> {
    match (mode, LocalMesh::unavailable()) {
        (Mode::Loopback, _) => Ok(Mode::Loopback),
        (Mode::Namespaces | Mode::Auto, None) => Ok(Mode::Namespaces),
        (Mode::Namespaces, Some(why)) => bail!("--mode namespaces cannot run here: {why}"),
        (Mode::Auto, Some(why)) => {
            eprintln!("running in loopback mode ({why}); see docs/local-mode.md");
            Ok(Mode::Loopback)
        }
    }
}

/// Runs `local up` in namespaces mode to the end; the state directory is
/// locked and emptied by the caller.
pub async fn run(
    args: &UpArgs,
    sample: Sample,
    state_dir: &Path,
    bin_dir: &Path,
    ports: &Ports,
) -> anyhow::Result<ExitCode> {
    let plan = pods::build(&sample.local, &sample.objects, &sample.dir, bin_dir)?;
    let mut signals = Signals::new()?;
    let options = Options {
        run_dir: Some(state_dir.to_path_buf()),
        caller_registers: true,
        ..Options::new(TAG, bin_dir)
    };
    let mesh = LocalMesh::new(options).context("cannot set up the pod network")?;
    let debug_url = mesh.pilot_debug_url();
    let mut state = State {
        pid: std::process::id(),
        config_dir: mesh.config_dir(),
        xds_address: mesh.pilot_xds_address().to_string(),
        debug_address: debug_url.trim_start_matches("http://").to_string(),
        ingress_url: sample.local.ingress_url(ports.ingress),
        run: mesh.prefix().to_string(),
        processes: vec![],
        ready: false,
        netns_prefix: Some(mesh.prefix().to_string()),
    };
    let mesh = Arc::new(Mutex::new(mesh));
    let cancel = Arc::new(AtomicBool::new(false));

    let start = Start {
        mesh: &mesh,
        cancel: &cancel,
        plan: &plan,
        sample: &sample,
        bin_dir,
        ports,
        timeout: Duration::from_secs(args.ready_timeout),
    };
    let started = async {
        state.save(state_dir)?;
        tokio::select! {
            r = start.run(&mut state, state_dir) => r.map(|()| true),
            name = signals.recv() => {
                eprintln!("{name} received while starting; stopping after the current step");
                Ok(false)
            }
        }
    }
    .await;
    cancel.store(true, Ordering::Relaxed);
    let outcome = match started {
        Ok(true) => {
            session::print_ready(&state.ingress_url, &state.debug_address, state_dir);
            session::foreground(&mut signals, || newly_exited(&mesh)).await;
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => Ok(ExitCode::from(130)),
        Err(e) => Err(e),
    };
    eprintln!("stopping the local mesh ...");
    let torn_down = tokio::task::spawn_blocking(move || lock(&mesh).teardown()).await;
    match torn_down {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: teardown incomplete: {e}"),
        Err(e) => eprintln!("warning: teardown failed: {e}"),
    }
    State::remove(state_dir);
    eprintln!("local mesh stopped");
    outcome
}

/// What starting the mesh needs.
struct Start<'a> {
    mesh: &'a Arc<Mutex<LocalMesh>>,
    cancel: &'a Arc<AtomicBool>,
    plan: &'a PodPlan,
    sample: &'a Sample,
    bin_dir: &'a Path,
    ports: &'a Ports,
    timeout: Duration,
}

impl Start<'_> {
    /// Deploys the pods, writes the re-addressed config for pilot, starts
    /// the ingress gateway and waits until the front page answers.
    async fn run(&self, state: &mut State, state_dir: &Path) -> anyhow::Result<()> {
        let (mesh, cancel) = (self.mesh.clone(), self.cancel.clone());
        let workloads = self.plan.workloads.clone();
        tokio::task::spawn_blocking(move || deploy_all(&mesh, &workloads, &cancel))
            .await
            .map_err(|e| anyhow!("deploying the pods failed: {e}"))??;

        let (pods, vips) = self.addresses()?;
        let config_dir = lock(self.mesh).config_dir();
        for file in &self.sample.mesh_files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file
                .file_name()
                .ok_or_else(|| anyhow!("{} has no file name", file.display()))?;
            write_atomic(
                &config_dir.join(name),
                pods::rewrite(&text, &pods, &vips)?.as_bytes(),
            )?;
        }

        let xds = lock(self.mesh).pilot_xds_address();
        let (ingress, admin) =
            plan::ingress_spec(&self.sample.local, self.bin_dir, xds, self.ports);
        if !ingress.program.is_file() {
            return Err(plan::missing_program(&ingress.name, &ingress.program));
        }
        {
            // In the root namespace, under the mesh's supervisor: tagged like
            // the pods' processes, so a crashed run's ingress goes with them.
            let mut mesh = lock(self.mesh);
            let log = state_dir.join("logs").join(format!("{}.log", ingress.name));
            mesh.supervisor()
                .spawn(&Spawn {
                    name: &ingress.name,
                    argv: &ingress.argv(),
                    netns: None,
                    uid: None,
                    env: &ingress.env,
                    log: &log,
                })
                .with_context(|| format!("cannot start {}", ingress.name))?;
            state.processes = ProcessInfo::list(mesh.supervisor().processes());
        }
        state.save(state_dir)?;
        let mut exited = || newly_exited(self.mesh);
        wait::until_ready(
            &mut exited,
            &[(ingress.name, admin)],
            &state.ingress_url,
            self.timeout,
        )
        .await?;
        state.ready = true;
        state.save(state_dir)
    }

    /// The pods' addresses by WorkloadEntry, the VIPs by ServiceEntry.
    fn addresses(&self) -> anyhow::Result<(Addresses, Addresses)> {
        let mesh = lock(self.mesh);
        let mut pods = BTreeMap::new();
        for w in &self.plan.workloads {
            let ip = mesh
                .pod_ip(&w.name)
                .ok_or_else(|| anyhow!("pod {} has no address", w.name))?;
            pods.insert((w.namespace.clone(), w.name.clone()), ip);
        }
        let mut vips = BTreeMap::new();
        for ((namespace, name), service) in &self.plan.services {
            let vip = mesh
                .service_vip(service, namespace)
                .ok_or_else(|| anyhow!("service {namespace}/{service} has no VIP"))?;
            vips.insert((namespace.clone(), name.clone()), vip);
        }
        Ok((pods, vips))
    }
}

/// Deploys each pod in turn (each waits for its sidecar and app), until
/// done, an error, or `cancel`.
fn deploy_all(
    mesh: &Mutex<LocalMesh>,
    workloads: &[Workload],
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    for w in workloads {
        if cancel.load(Ordering::Relaxed) {
            bail!("start-up cancelled");
        }
        eprintln!("starting pod {}/{} ...", w.namespace, w.name);
        lock(mesh)
            .deploy(w)
            .with_context(|| format!("cannot start pod {}", w.name))?;
    }
    Ok(())
}

/// Processes of the mesh that stopped since the last call.
fn newly_exited(mesh: &Mutex<LocalMesh>) -> Vec<Exited> {
    lock(mesh).supervisor().newly_exited()
}

/// The mesh, also after a panic on another thread (teardown must run).
fn lock(mesh: &Mutex<LocalMesh>) -> MutexGuard<'_, LocalMesh> {
    mesh.lock().unwrap_or_else(|e| e.into_inner())
}

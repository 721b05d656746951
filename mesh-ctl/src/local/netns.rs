//! `meshctl local up` in namespaces mode (root): each workload runs as a
//! pod of the e2e crate's local driver ([`mesh_e2e::LocalCluster`]): its
//! own network namespace on a bridge with a 198.18.N.x address, `mesh-proxy
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
//! The driver's blocking steps run on a blocking thread; the cluster sits
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
use mesh_e2e::{cmd, Cluster, LocalCluster, LocalOptions, Workload};

use super::down;
use super::plan::{self, LocalFile, Ports};
use super::pods::{self, PodPlan};
use super::process::Supervisor;
use super::state::{write_atomic, State};
use super::up::{self, Signals};
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
    let why_not = || {
        LocalCluster::unavailable().or_else(|| {
            cmd::which("iptables")
                .is_none()
                .then(|| "`iptables` is not installed".to_string())
        })
    };
    match mode {
        Mode::Loopback => Ok(Mode::Loopback),
        Mode::Namespaces => match why_not() {
            None => Ok(Mode::Namespaces),
            Some(why) => bail!("--mode namespaces cannot run here: {why}"),
        },
        Mode::Auto => match why_not() {
            None => Ok(Mode::Namespaces),
            Some(why) => {
                eprintln!("running in loopback mode ({why}); see docs/local-mode.md");
                Ok(Mode::Loopback)
            }
        },
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
    if let Some(old) = State::load(state_dir)? {
        // The lock is ours, so the meshctl of that run is gone.
        down::stop_leftovers(&old, state_dir);
    }
    for removed in mesh_e2e::cleanup_stale(pods::TAG)? {
        eprintln!("removed a leftover of an earlier run: {removed}");
    }
    let mut signals = Signals::new()?;
    let cluster = LocalCluster::with_options(LocalOptions {
        tag: Some(pods::TAG.into()),
        run_dir: Some(state_dir.to_path_buf()),
        bin_dir: Some(bin_dir.to_path_buf()),
        caller_registers: true,
    })
    .context("cannot set up the pod network")?;
    let debug_url = cluster.pilot_debug_url();
    let mut state = State {
        pid: std::process::id(),
        config_dir: cluster.config_dir(),
        xds_address: cluster.pilot_xds_address().to_string(),
        debug_address: debug_url.trim_start_matches("http://").to_string(),
        ingress_url: sample.local.ingress_url(ports.ingress),
        pgid: None,
        processes: vec![],
        ready: false,
        netns_prefix: Some(cluster.prefix().to_string()),
    };
    let cluster = Arc::new(Mutex::new(cluster));
    let cancel = Arc::new(AtomicBool::new(false));
    let mut sup = Supervisor::new(&state_dir.join("logs"));

    let start = Start {
        cluster: &cluster,
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
            r = start.run(&mut sup, &mut state, state_dir) => r.map(|()| true),
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
            up::print_ready(&state.ingress_url, &state.debug_address, state_dir);
            up::foreground(&mut sup, &mut signals).await;
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => Ok(ExitCode::from(130)),
        Err(e) => Err(e),
    };
    eprintln!("stopping the local mesh ...");
    sup.stop(up::GRACE).await;
    let torn_down = tokio::task::spawn_blocking(move || lock(&cluster).teardown()).await;
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
    cluster: &'a Arc<Mutex<LocalCluster>>,
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
    async fn run(
        &self,
        sup: &mut Supervisor,
        state: &mut State,
        state_dir: &Path,
    ) -> anyhow::Result<()> {
        let (cluster, cancel) = (self.cluster.clone(), self.cancel.clone());
        let workloads = self.plan.workloads.clone();
        tokio::task::spawn_blocking(move || deploy_all(&cluster, &workloads, &cancel))
            .await
            .map_err(|e| anyhow!("deploying the pods failed: {e}"))??;

        let (pods, vips) = self.addresses()?;
        let config_dir = lock(self.cluster).config_dir();
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

        let xds = lock(self.cluster).pilot_xds_address();
        let prefix = lock(self.cluster).prefix().to_string();
        let (mut ingress, admin) =
            plan::ingress_spec(&self.sample.local, self.bin_dir, xds, self.ports);
        // Tagged like the pods' processes, so a crashed run's ingress is
        // found and stopped with them.
        ingress
            .env
            .push((mesh_e2e::local::procs::RUN_ENV.into(), prefix));
        sup.spawn(&ingress)?;
        state.pgid = sup.pgid();
        state.processes = sup.processes();
        state.save(state_dir)?;
        wait::until_ready(
            sup,
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
        let cluster = lock(self.cluster);
        let mut pods = BTreeMap::new();
        for w in &self.plan.workloads {
            let ip = cluster
                .pod_ip(&w.name)
                .ok_or_else(|| anyhow!("pod {} has no address", w.name))?;
            pods.insert((w.namespace.clone(), w.name.clone()), ip);
        }
        let mut vips = BTreeMap::new();
        for ((namespace, name), service) in &self.plan.services {
            let vip = cluster
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
    cluster: &Mutex<LocalCluster>,
    workloads: &[Workload],
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    for w in workloads {
        if cancel.load(Ordering::Relaxed) {
            bail!("start-up cancelled");
        }
        eprintln!("starting pod {}/{} ...", w.namespace, w.name);
        lock(cluster)
            .deploy(w)
            .with_context(|| format!("cannot start pod {}", w.name))?;
    }
    Ok(())
}

/// The cluster, also after a panic on another thread (teardown must run).
fn lock(cluster: &Mutex<LocalCluster>) -> MutexGuard<'_, LocalCluster> {
    cluster.lock().unwrap_or_else(|e| e.into_inner())
}

//! `meshctl local up`: validate the sample, take the state directory's
//! lock, choose the mode, start everything in the plan's order, wait until
//! it is ready, then stay in the foreground until Ctrl-C, SIGTERM (`local
//! down`) or an error, and stop every process it started. This file runs
//! the loopback mode; [`super::namespaces`] the namespaces mode.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use mesh_local::{Spawn, Supervisor};

use super::namespaces::{self, Sample};
use super::plan::{self, missing_program, LocalFile, Plan, Ports, TAG};
use super::session::{self, Signals, GRACE};
use super::state::{self, ProcessInfo, State};
use super::{down, wait, Mode, UpArgs};
use crate::config;

/// Runs `local up` to the end.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let sample = args.sample.clone();
    let mesh_dir = sample.join("mesh");
    let local_path = sample.join("local.yaml");
    let local_text = fs::read_to_string(&local_path)
        .with_context(|| format!("cannot read {}", local_path.display()))?;
    let local = LocalFile::parse(&local_text)
        .with_context(|| format!("{} is not a valid local.yaml", local_path.display()))?;

    let mesh_files = config::yaml_files(std::slice::from_ref(&mesh_dir), false)?;
    let loaded = config::load_and_validate(&mesh_files);
    if !loaded.errors.is_empty() {
        for err in &loaded.errors {
            eprintln!("{err}");
        }
        return Err(anyhow!(
            "the sample's config in {} has {} error(s); nothing was started",
            mesh_dir.display(),
            loaded.errors.len()
        ));
    }

    let mode = namespaces::resolve_mode(args.mode)?;
    let state_dir = absolute(&args.state_dir)?;
    fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let _lock = state::lock(&state_dir)?;
    if let Some(old) = State::load(&state_dir)? {
        // The lock is ours, so the meshctl of that run is gone.
        down::stop_leftovers(&old, &state_dir);
    }
    let config_dir = state_dir.join("config");
    let log_dir = state_dir.join("logs");
    clear_dirs(&config_dir, &log_dir)?;

    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .context("cannot find meshctl's own path")?
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow!("meshctl's path has no directory"))?,
    };
    let ports = Ports {
        ingress: args.ingress_port,
        ingress_admin: args.ingress_admin_port,
        xds: args.xds_port,
        debug: args.debug_port,
    };
    let objects: Vec<_> = loaded.objects.into_iter().map(|l| l.object).collect();
    if mode == Mode::Namespaces {
        // Pilot and the pods listen in their own namespaces; only the
        // ingress is published on the host.
        ports_free(&ingress_addresses(&ports))?;
        let sample = Sample {
            local,
            objects,
            mesh_files,
            dir: absolute(&sample)?,
        };
        return namespaces::run(&args, sample, &state_dir, &bin_dir, &ports).await;
    }
    copy_files(&mesh_files, &config_dir)?;
    let plan = plan::build(
        &local,
        &objects,
        &absolute(&sample)?,
        &bin_dir,
        &config_dir,
        &ports,
    )?;
    for spec in &plan.processes {
        if !spec.program.is_file() {
            return Err(missing_program(&spec.name, &spec.program));
        }
    }
    ports_free(&listen_addresses(&plan, &ports))?;

    let run = mesh_local::net::new_prefix(TAG);
    let mut state = State {
        pid: std::process::id(),
        config_dir: config_dir.clone(),
        xds_address: plan.xds_address.to_string(),
        debug_address: plan.debug_address.to_string(),
        ingress_url: plan.ingress_url.clone(),
        run: run.clone(),
        processes: vec![],
        ready: false,
        netns_prefix: None,
    };
    state.save(&state_dir)?;

    let mut signals = Signals::new()?;
    let mut sup = Supervisor::new(&run);
    let started = tokio::select! {
        r = start(&mut sup, &plan, &mut state, &state_dir, args.ready_timeout) => r.map(|()| true),
        name = signals.recv() => {
            eprintln!("{name} received while starting; stopping");
            Ok(false)
        }
    };
    let outcome = match started {
        Ok(true) => {
            session::print_ready(&plan.ingress_url, &plan.debug_address, &state_dir);
            session::foreground(&mut signals, || sup.newly_exited()).await;
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => Ok(ExitCode::from(130)),
        Err(e) => Err(e),
    };
    eprintln!("stopping the local mesh ...");
    tokio::task::block_in_place(|| sup.stop_all(GRACE));
    State::remove(&state_dir);
    eprintln!("local mesh stopped");
    outcome
}

/// The addresses `local up` publishes on the host in either mode: the
/// ingress gateway's and its admin's, each with what it is for.
fn ingress_addresses(ports: &Ports) -> Vec<(SocketAddr, String)> {
    let loopback = Ipv4Addr::LOCALHOST;
    vec![
        (
            (loopback, ports.ingress).into(),
            "the ingress gateway, --ingress-port".into(),
        ),
        (
            (loopback, ports.ingress_admin).into(),
            "the ingress gateway's admin, --ingress-admin-port".into(),
        ),
    ]
}

/// Every address the loopback plan listens on, each with what it is for:
/// the ingress's, pilot's, each proxy's admin and each process's
/// `--listen`/`--admin-address` or `LISTEN`.
fn listen_addresses(plan: &Plan, ports: &Ports) -> Vec<(SocketAddr, String)> {
    let mut out = ingress_addresses(ports);
    out.push((plan.xds_address, "pilot's xDS, --xds-port".into()));
    out.push((plan.debug_address, "pilot's debug API, --debug-port".into()));
    for (name, admin) in &plan.proxy_admins {
        out.push((*admin, format!("the admin of {name}")));
    }
    for spec in &plan.processes {
        for pair in spec.args.windows(2) {
            if matches!(pair[0].as_str(), "--listen" | "--admin-address") {
                if let Ok(address) = pair[1].parse() {
                    out.push((address, spec.name.clone()));
                }
            }
        }
        if let Some(address) = spec.env.get("LISTEN").and_then(|v| v.parse().ok()) {
            out.push((address, spec.name.clone()));
        }
    }
    // One line per address: the first purpose found names it.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(address, _)| seen.insert(*address));
    out
}

/// Fails at once, before anything starts, naming each address in use, what
/// the mesh needs it for and the process holding it, rather than waiting
/// for a process that cannot bind (or for the other program's answers on
/// our port).
fn ports_free(wanted: &[(SocketAddr, String)]) -> anyhow::Result<()> {
    let addresses: Vec<SocketAddr> = wanted.iter().map(|(a, _)| *a).collect();
    let busy = mesh_local::ports::busy(&addresses);
    if busy.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = busy
        .iter()
        .map(|b| {
            let purpose = wanted
                .iter()
                .find(|(a, _)| *a == b.address)
                .map_or("", |(_, p)| p.as_str());
            format!("port {} ({purpose}): {b}", b.address.port())
        })
        .collect();
    Err(anyhow!(
        "cannot start the local mesh, {} in use:\n  {}\nstop what holds {} or give the mesh other ports",
        if lines.len() == 1 { "a port it needs is" } else { "ports it needs are" },
        lines.join("\n  "),
        if lines.len() == 1 { "it" } else { "them" },
    ))
}

/// Starts every process of the plan and waits until the mesh is ready:
/// pilot first (its xDS port listening), then the proxies and apps.
async fn start(
    sup: &mut Supervisor,
    plan: &Plan,
    state: &mut State,
    state_dir: &Path,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(timeout_secs);
    let log_dir = state_dir.join("logs");
    for (i, spec) in plan.processes.iter().enumerate() {
        let log = log_dir.join(format!("{}.log", spec.name));
        sup.spawn(&Spawn {
            name: &spec.name,
            argv: &spec.argv(),
            netns: None,
            uid: None,
            env: &spec.env,
            log: &log,
        })
        .with_context(|| format!("cannot start {}", spec.name))?;
        state.processes = ProcessInfo::list(sup.processes());
        state.save(state_dir)?;
        if i == 0 {
            let mut exited = || sup.newly_exited();
            wait::until_listening(&mut exited, "pilot", plan.xds_address, timeout).await?;
        }
    }
    let mut exited = || sup.newly_exited();
    wait::until_ready(&mut exited, &plan.proxy_admins, &plan.ingress_url, timeout).await?;
    state.ready = true;
    state.save(state_dir)
}

/// Empties `config/` and `logs/` of an earlier run.
fn clear_dirs(config_dir: &Path, log_dir: &Path) -> anyhow::Result<()> {
    for dir in [config_dir, log_dir] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Copies the sample's mesh files into `config/`.
fn copy_files(mesh_files: &[PathBuf], config_dir: &Path) -> anyhow::Result<()> {
    for file in mesh_files {
        let name = file
            .file_name()
            .ok_or_else(|| anyhow!("{} has no file name", file.display()))?;
        fs::copy(file, config_dir.join(name)).with_context(|| {
            format!("cannot copy {} to {}", file.display(), config_dir.display())
        })?;
    }
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

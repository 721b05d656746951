//! `meshctl local up`: validate the sample, prepare the state directory,
//! choose the mode, start everything in the plan's order, wait until it is
//! ready, then stay in the foreground until Ctrl-C, SIGTERM (`local down`)
//! or an error, and stop every process it started. This file runs the
//! loopback mode; [`super::netns`] the namespaces mode.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::plan::{self, LocalFile, Plan, Ports};
use super::process::{log_tail, Supervisor};
use super::state::{Lock, State};
use super::{netns, wait, Mode, UpArgs};
use crate::config;

/// How long processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

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

    let mode = netns::resolve_mode(args.mode)?;
    let state_dir = absolute(&args.state_dir)?;
    fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let _lock = Lock::acquire(&state_dir)?;
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
        let sample = netns::Sample {
            local,
            objects,
            mesh_files,
            dir: absolute(&sample)?,
        };
        return netns::run(&args, sample, &state_dir, &bin_dir, &ports).await;
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

    let mut state = State {
        pid: std::process::id(),
        config_dir: config_dir.clone(),
        xds_address: plan.xds_address.to_string(),
        debug_address: plan.debug_address.to_string(),
        ingress_url: plan.ingress_url.clone(),
        pgid: None,
        processes: vec![],
        ready: false,
        netns_prefix: None,
    };
    state.save(&state_dir)?;

    let mut signals = Signals::new()?;
    let mut sup = Supervisor::new(&log_dir);
    let started = tokio::select! {
        r = start(&mut sup, &plan, &mut state, &state_dir, args.ready_timeout) => r.map(|()| true),
        name = signals.recv() => {
            eprintln!("{name} received while starting; stopping");
            Ok(false)
        }
    };
    let outcome = match started {
        Ok(true) => {
            print_ready(&plan.ingress_url, &plan.debug_address, &state_dir);
            foreground(&mut sup, &mut signals).await;
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => Ok(ExitCode::from(130)),
        Err(e) => Err(e),
    };
    eprintln!("stopping the local mesh ...");
    sup.stop(GRACE).await;
    State::remove(&state_dir);
    eprintln!("local mesh stopped");
    outcome
}

/// Starts every process of the plan and waits until the mesh is ready.
async fn start(
    sup: &mut Supervisor,
    plan: &Plan,
    state: &mut State,
    state_dir: &Path,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let result = async {
        for spec in &plan.processes {
            sup.spawn(spec)?;
            state.pgid = sup.pgid();
            state.processes = sup.processes();
            state.save(state_dir)?;
            // Let pilot bind before the proxies dial it.
            tokio::time::sleep(Duration::from_millis(if spec.mesh { 100 } else { 20 })).await;
            wait::check_processes(sup)?;
        }
        wait::until_ready(
            sup,
            &plan.proxy_admins,
            &plan.ingress_url,
            Duration::from_secs(timeout_secs),
        )
        .await
    }
    .await;
    result?;
    state.ready = true;
    state.save(state_dir)
}

/// Stays up until a signal; reports processes that stop on their own.
pub async fn foreground(sup: &mut Supervisor, signals: &mut Signals) {
    loop {
        tokio::select! {
            name = signals.recv() => {
                eprintln!("{name} received");
                return;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                for exited in sup.newly_exited() {
                    eprintln!(
                        "warning: {} exited ({}); last lines of {}:\n{}",
                        exited.name,
                        exited.status,
                        exited.log.display(),
                        log_tail(&exited.log, 10)
                    );
                }
            }
        }
    }
}

/// Tells the user where the mesh is.
pub fn print_ready(ingress_url: &str, debug_address: &dyn std::fmt::Display, state_dir: &Path) {
    println!("local mesh is up: {ingress_url}");
    println!(
        "  config:  {}  (change it with `meshctl apply -f FILE`)",
        state_dir.join("config").display()
    );
    println!("  logs:    {}", state_dir.join("logs").display());
    println!("  pilot:   http://{debug_address}/debug/configz");
    println!("stop it with Ctrl-C or `meshctl local down`");
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

/// SIGINT (Ctrl-C), SIGTERM (`local down`) and SIGHUP (the terminal went
/// away): each stops the mesh.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers: from now on these signals only reach `recv`.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    /// The name of the next signal received.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

//! `meshctl local`: a whole mesh on this machine without Kubernetes, as
//! docs/architecture.md ("Local mode") and docs/local-mode.md describe. Two
//! modes: loopback (no root: explicit ports on 127.x addresses, apps told
//! their sidecar by `HTTP_PROXY`) and namespaces (root: each workload a pod
//! of the one-machine runtime `mesh-local`, with transparent capture). Both
//! run their processes under `mesh_local::Supervisor`.
//!
//! ```text
//! local.yaml + mesh/*.yaml ──► plan (loopback) │ pods (namespaces): what to run
//!                                 │
//!    state dir: lock, config/, logs/, state.json ◄── up ─► namespaces (LocalMesh)
//!                                 │
//!    wait: pilot, proxies' /ready, the front page ─► session: foreground until a signal
//! ```

mod down;
mod namespaces;
mod plan;
mod pods;
mod session;
pub mod state;
mod up;
mod wait;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

/// `meshctl local` subcommands.
#[derive(Subcommand, Debug)]
pub enum LocalCommand {
    /// Start pilot, the ingress gateway, and every workload of a sample with
    /// its sidecar; stay in the foreground until Ctrl-C or `local down`.
    Up(UpArgs),
    /// Stop the local mesh started by `local up`.
    Down(DownArgs),
}

/// Flags of `meshctl local up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// The sample directory (with `local.yaml` and `mesh/`).
    #[arg(short = 'f', long = "filename")]
    pub sample: PathBuf,
    /// Port of the ingress gateway on 127.0.0.1 (the Gateway's port 80).
    #[arg(long, default_value_t = 8080)]
    pub ingress_port: u16,
    /// Port of the ingress gateway's admin server on 127.0.0.1.
    #[arg(long, default_value_t = 15000)]
    pub ingress_admin_port: u16,
    /// Port of pilot's xDS server on 127.0.0.1.
    #[arg(long, default_value_t = 15010)]
    pub xds_port: u16,
    /// Port of pilot's debug server on 127.0.0.1.
    #[arg(long, default_value_t = 15014)]
    pub debug_port: u16,
    /// Where logs, the live config and state.json go.
    #[arg(long, default_value_os_t = default_state_dir())]
    pub state_dir: PathBuf,
    /// Directory of the mesh-pilot, mesh-proxy and sample binaries; default
    /// the directory meshctl runs from.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// How long to wait for the mesh to become ready, in seconds.
    #[arg(long, default_value_t = 90)]
    pub ready_timeout: u64,
    /// How to run the workloads: `namespaces` (root: a network namespace
    /// per workload with transparent capture), `loopback` (explicit ports
    /// on 127.x addresses), or `auto` (namespaces when root and `ip`,
    /// `iptables` and `setpriv` exist, else loopback).
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
}

/// How `local up` runs the workloads.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Namespaces when possible, else loopback.
    Auto,
    /// Each workload a pod: network namespace, capture, sidecar as UID 1337.
    Namespaces,
    /// Every process on loopback addresses, apps using `HTTP_PROXY`.
    Loopback,
}

/// Flags of `meshctl local down`.
#[derive(Args, Debug, Clone)]
pub struct DownArgs {
    /// State directory of the local mesh.
    #[arg(long, default_value_os_t = default_state_dir())]
    pub state_dir: PathBuf,
    /// How long to wait for it to stop, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// `/tmp/mesh-local-$UID`.
pub fn default_state_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    PathBuf::from(format!("/tmp/mesh-local-{uid}"))
}

/// Runs a `meshctl local` subcommand.
pub fn run(command: LocalCommand) -> anyhow::Result<ExitCode> {
    match command {
        LocalCommand::Up(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(up::run(args))
        }
        LocalCommand::Down(args) => down::run(&args),
    }
}

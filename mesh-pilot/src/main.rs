//! `mesh-pilot`: the control plane in local mode. Loads and watches a
//! config directory, serves ADS on `--xds-address` and the debug endpoints
//! on `--debug-address`, and stops cleanly on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::watch;

use mesh_pilot::debug::{self, DebugState};
use mesh_pilot::mesh_config::MeshConfig;
use mesh_pilot::push::{self, PushContext};
use mesh_pilot::source::{self, dir::DirSource};
use mesh_pilot::xds::server::{AdsServer, SyncTable};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Istio-compatible control plane: config directory in, xDS out.
#[derive(Debug, Parser)]
#[command(name = "mesh-pilot", version)]
struct Args {
    /// Directory of Istio YAML files to load and watch.
    #[arg(long)]
    config_dir: PathBuf,
    /// Address of the ADS (xDS over gRPC, plaintext) server.
    #[arg(long, default_value = "127.0.0.1:15010")]
    xds_address: SocketAddr,
    /// Address of the debug HTTP server (/debug/configz, /debug/pushz,
    /// /debug/syncz).
    #[arg(long, default_value = "127.0.0.1:8080")]
    debug_address: SocketAddr,
    /// Quiet time after a config change before pushing, in milliseconds.
    #[arg(long, default_value_t = 100)]
    debounce_ms: u64,
    /// Istio MeshConfig YAML (`outboundTrafficPolicy`), read at start.
    #[arg(long)]
    mesh_config: Option<PathBuf>,
    /// ADS streams one peer address may hold open at once; more are
    /// refused with RESOURCE_EXHAUSTED (docs/reliability.md).
    #[arg(long, default_value_t = mesh_pilot::xds::DEFAULT_MAX_STREAMS_PER_PEER)]
    max_streams_per_peer: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "jemalloc background purging unavailable");
    }
    let args = Args::parse();

    let mesh = match &args.mesh_config {
        Some(path) => MeshConfig::load(path)?,
        None => MeshConfig::default(),
    };
    let mut dir = DirSource::new(&args.config_dir).with_mesh_config(mesh);
    let first = dir
        .reload()
        .with_context(|| format!("loading {}", args.config_dir.display()))?
        .unwrap_or_default();
    tracing::info!(
        dir = %args.config_dir.display(),
        version = first.version,
        objects = first.objects.len(),
        errors = first.errors.len(),
        "config loaded"
    );
    let first = Arc::new(first);

    let (shutdown_tx, shutdown) = watch::channel(false);
    let (config_tx, config_rx) = watch::channel(first.clone());
    let (push_tx, push_rx) = watch::channel(Arc::new(PushContext::new(first)));
    let sync = SyncTable::default();

    let _watch = source::watch::spawn(dir, config_tx, shutdown.clone())?;
    let debouncer = tokio::spawn(push::debounce(
        config_rx.clone(),
        push_tx,
        Duration::from_millis(args.debounce_ms),
        shutdown.clone(),
    ));
    let ads = AdsServer::new(push_rx, sync.clone(), shutdown.clone())
        .with_max_streams_per_peer(args.max_streams_per_peer);
    let state = DebugState {
        config: config_rx,
        sync,
        caches: ads.caches(),
    };
    let mut ads_task = tokio::spawn(ads.bind_and_serve(args.xds_address));
    let mut debug_task = tokio::spawn(debug::serve(args.debug_address, state, shutdown.clone()));

    let outcome: anyhow::Result<()> = tokio::select! {
        sig = shutdown_signal() => {
            tracing::info!(signal = sig, "shutting down");
            Ok(())
        }
        res = &mut ads_task => res.context("ADS task")?.context("ADS server"),
        res = &mut debug_task => res.context("debug task")?.context("debug server"),
    };
    let _ = shutdown_tx.send(true);
    let grace = Duration::from_secs(5);
    let _ = tokio::time::timeout(grace, async {
        for task in [ads_task, debug_task] {
            if !task.is_finished() {
                let _ = task.await;
            }
        }
        let _ = debouncer.await;
    })
    .await;
    tracing::info!("stopped");
    outcome
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

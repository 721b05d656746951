//! `mesh-proxy`: the sidecar and gateway proxy. Wires the pieces of
//! DESIGN.md's data plane together: the xDS client fills the
//! [`SnapshotStore`], the listeners serve from it, and the admin server
//! reports on both. SIGINT or SIGTERM cancels one token that every task
//! watches; the listeners then drain their connections.
//!
//! `mesh-proxy init ...` instead writes the pod's iptables capture rules
//! ([`mesh_proxy::init`]) and exits.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mesh_api::node::{parse_labels, parse_port_map, InterceptionMode, Locality, Node};
use mesh_proxy::admin::{self, AdminState};
use mesh_proxy::listener::CaptureOptions;
use mesh_proxy::model::SnapshotStore;
use mesh_proxy::xds::node::{self, WorkloadFlags};
use mesh_proxy::xds::{self, XdsConfig, XdsStatus};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;

/// How long tasks get to finish after shutdown before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Sidecar and gateway proxy driven by xDS (docs/architecture.md).
#[derive(Debug, Parser)]
#[command(
    name = "mesh-proxy",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    /// Run a step other than the proxy itself.
    #[command(subcommand)]
    command: Option<Command>,
    /// Pilot's ADS address.
    #[arg(long, default_value = "127.0.0.1:15010")]
    xds_address: String,
    /// Istio-form node id: `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
    #[arg(long, required = true)]
    node_id: Option<String>,
    /// The workload's namespace (default: the one in the node id).
    #[arg(long)]
    namespace: Option<String>,
    /// The workload's labels, `k=v,k=v`.
    #[arg(long, default_value = "", value_parser = parse_labels)]
    labels: BTreeMap<String, String>,
    /// The workload's service account.
    #[arg(long)]
    service_account: Option<String>,
    /// REDIRECT (iptables capture) or NONE (loopback mode).
    #[arg(long, default_value = "REDIRECT")]
    interception_mode: InterceptionMode,
    /// NONE mode: port of the outbound HTTP-proxy listener on the node IP.
    #[arg(long)]
    http_proxy_port: Option<u16>,
    /// NONE mode: the IP the application listens on (default: the node IP).
    #[arg(long)]
    app_ip: Option<IpAddr>,
    /// Gateways: `80=8080,...`, the port each Gateway server port is bound to.
    #[arg(long, default_value = "", value_parser = parse_port_map)]
    gateway_ports: BTreeMap<u16, u16>,
    /// Where this proxy runs, `REGION/ZONE/SUBZONE` (later parts optional):
    /// sent to pilot as the node's locality.
    #[arg(long)]
    locality: Option<Locality>,
    /// Admin server address (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin_address: SocketAddr,
    /// How long a capture listener waits for a client's first bytes to
    /// detect its protocol (`100ms`, `1s`; docs/capture.md).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    protocol_detection_timeout: Duration,
    /// Downstream connections open at once on all listeners; more are
    /// closed at accept (Envoy's `global_downstream_max_connections`).
    #[arg(long, default_value_t = mesh_proxy::data_plane::DEFAULT_MAX_DOWNSTREAM_CONNECTIONS)]
    max_downstream_connections: usize,
}

/// `250ms`, `2s` or a bare number of milliseconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "ms"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected e.g. 100ms or 1s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => Err(format!("{text:?}: unit must be ms or s")),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the iptables rules that capture the pod's traffic, then exit.
    Init(mesh_proxy::init::InitConfig),
}

impl Args {
    fn node(&self) -> anyhow::Result<Node> {
        let id = self.node_id.as_deref().context("--node-id is required")?;
        let flags = WorkloadFlags {
            namespace: self.namespace.clone(),
            labels: self.labels.clone(),
            service_account: self.service_account.clone(),
            interception_mode: self.interception_mode,
            http_proxy_port: self.http_proxy_port,
            app_ip: self.app_ip,
            gateway_ports: self.gateway_ports.clone(),
            locality: self.locality.clone(),
        };
        Ok(node::from_flags(id, &flags)?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Command::Init(cfg)) = &args.command {
        return mesh_proxy::init::run(cfg).context("mesh-proxy init");
    }
    let node = args.node()?;
    tracing::info!(node_id = %node.id, xds = %args.xds_address, admin = %args.admin_address, "starting");

    let store = Arc::new(SnapshotStore::new());
    let status = Arc::new(XdsStatus::new());
    let shutdown = CancellationToken::new();
    let admin_listener = tokio::net::TcpListener::bind(args.admin_address)
        .await
        .with_context(|| format!("bind admin address {}", args.admin_address))?;

    let mut tasks = JoinSet::new();
    tasks.spawn(signals(shutdown.clone()));
    let xds_config = XdsConfig {
        address: args.xds_address.clone(),
        node,
    };
    let (s, st, sd) = (store.clone(), status.clone(), shutdown.clone());
    let span = tracing::info_span!("xds", address = %args.xds_address);
    tasks.spawn(
        async move { xds::run(xds_config, s, st, sd).await.context("xDS client") }.instrument(span),
    );
    let admin_state = AdminState {
        store: store.clone(),
        status,
    };
    let sd = shutdown.clone();
    tasks.spawn(
        async move {
            admin::serve(admin_listener, admin_state, sd).await;
            Ok(())
        }
        .instrument(tracing::info_span!("admin", address = %args.admin_address)),
    );
    let capture = CaptureOptions {
        detection_timeout: args.protocol_detection_timeout,
        max_downstream_connections: args.max_downstream_connections,
        ..CaptureOptions::default()
    };
    tasks.spawn(mesh_proxy::listener::run_with(
        store,
        shutdown.clone(),
        capture,
    ));

    // The first task to end, for whatever reason, ends the process.
    let mut result = match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(join)) => Err(anyhow::anyhow!("task panicked: {join}")),
        None => Ok(()),
    };
    if let Err(error) = &result {
        tracing::error!("{error:#}");
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Err(e)) if result.is_ok() => result = Err(e),
                Err(join) if result.is_ok() => {
                    result = Err(anyhow::anyhow!("task panicked: {join}"))
                }
                _ => {}
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("tasks still running after {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    tracing::info!("stopped");
    result
}

/// Waits for SIGINT or SIGTERM (or another task's shutdown) and cancels.
async fn signals(shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for SIGINT")?,
        _ = term.recv() => {}
        () = shutdown.cancelled() => return Ok(()),
    }
    tracing::info!("signal received, shutting down");
    shutdown.cancel();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_timeout_takes_ms_s_or_a_bare_number() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn locality_flag_reaches_the_node() {
        let args = Args::try_parse_from([
            "mesh-proxy",
            "--node-id",
            "sidecar~127.0.10.1~greeter.default~default.svc.cluster.local",
            "--locality",
            "us-east1/us-east1-b",
        ])
        .unwrap();
        let node = args.node().unwrap();
        let locality = node.locality.expect("locality");
        assert_eq!(
            (locality.region.as_str(), locality.zone.as_str()),
            ("us-east1", "us-east1-b")
        );
        assert!(
            Args::try_parse_from(["mesh-proxy", "--node-id", "x", "--locality", "a/b/c/d"])
                .is_err()
        );
    }
}

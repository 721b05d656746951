//! The listener stage, where the data path starts (snapshot ─► **listeners**
//! ─► filter chain ─► HCM | tcp_proxy ─► cluster ─► upstream pool): it owns
//! the sockets and, per connection, everything up to the choice of network
//! filter, which it hands the connection to with the shared
//! [`DataPlane`] and the connection's [`Downstream`](crate::data_plane::Downstream).
//!
//! ```text
//!  SnapshotStore ──subscribe()──► run(): reconcile on every publish
//!                                   ├─ new listener      ─► bind, spawn accept loop
//!                                   ├─ unchanged         ─► keep the socket
//!                                   ├─ config changed    ─► keep the socket, drain
//!                                   │                       its old connections
//!                                   ├─ removed / moved   ─► stop accepting, drain
//!                                   └─ bind failed       ─► log, retry next snapshot
//!  accept loop ─► one task per connection (span: listener, peer)
//!                   └─ load snapshot once ─► original destination (use_original_dst)
//!                        ─► dispatch (bind_to_port=false listener for it)
//!                        ─► detect (only if its chains need it) ─► filter chain ─► match filter
//!                        ├─ Http ─► hcm::serve (HTTP/1.1 + h2c)
//!                        └─ Tcp  ─► tcp_proxy::relay
//! ```

mod accept;
pub mod detect;
pub mod original_dst;
pub mod select;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::data_plane::DataPlane;
use crate::model::{Snapshot, SnapshotStore};

pub use detect::Detected;
pub use original_dst::OriginalDst;
pub use select::{select_chain, select_filter_chain, ConnectionAddresses};

/// How often listeners that failed to bind are tried again, besides on
/// every new snapshot.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// How long `run` waits for connections to drain after shutdown: short
/// enough to fit in the grace a process gets from its supervisor.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// How capture listeners learn and inspect their connections
/// (docs/capture.md).
#[derive(Debug, Clone, Copy)]
pub struct CaptureOptions {
    /// Where the original destination comes from (the kernel, or a test).
    pub original_dst: OriginalDst,
    /// How long protocol detection waits for the client's first bytes
    /// (`--protocol-detection-timeout`).
    pub detection_timeout: Duration,
    /// Downstream connections open at once on all listeners
    /// (`--max-downstream-connections`).
    pub max_downstream_connections: usize,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            original_dst: OriginalDst::SocketOption,
            detection_timeout: detect::DEFAULT_TIMEOUT,
            max_downstream_connections: crate::data_plane::DEFAULT_MAX_DOWNSTREAM_CONNECTIONS,
        }
    }
}

/// A listener that is bound and accepting.
struct Active {
    address: SocketAddr,
    /// The listener's config when bound or last changed, as JSON: a new
    /// snapshot usually carries new `Arc`s for unchanged listeners.
    config: String,
    /// Cancelled to stop accepting and drain this listener's connections.
    drain: CancellationToken,
    /// Token handed to new connections; replaced (and the old one
    /// cancelled) when the config changes, so that connections holding the
    /// old filter chains finish their requests and reconnect.
    generation: watch::Sender<CancellationToken>,
    accept_loop: JoinHandle<()>,
}

/// Run the data plane: keep the bound listeners equal to the listeners of
/// the store's current snapshot (those with `bind_to_port`) until `shutdown`
/// fires, then drain every connection (at most [`SHUTDOWN_DRAIN`]).
///
/// Never fails on config: a listener that cannot bind is logged with its
/// address and tried again on the next snapshot (and every few seconds).
pub async fn run(store: Arc<SnapshotStore>, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(store, shutdown, CaptureOptions::default()).await
}

/// [`run`] with explicit capture settings: the `--protocol-detection-timeout`
/// flag, or an injected original destination in tests.
pub async fn run_with(
    store: Arc<SnapshotStore>,
    shutdown: CancellationToken,
    capture: CaptureOptions,
) -> anyhow::Result<()> {
    let data_plane = Arc::new(DataPlane::with_connection_limit(
        store.clone(),
        capture.max_downstream_connections,
    ));
    let mut changes = store.subscribe();
    let mut active: HashMap<String, Active> = HashMap::new();
    let connections = TaskTracker::new();
    loop {
        let snapshot = store.load();
        let failed = reconcile(
            &data_plane,
            capture,
            &snapshot,
            &mut active,
            &shutdown,
            &connections,
        )
        .await;
        data_plane.forget_unused(&snapshot);
        drop(snapshot);
        let retry = async {
            if failed {
                tokio::time::sleep(BIND_RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    // Cannot happen while we hold the store; stop cleanly anyway.
                    break;
                }
            }
            () = retry => {}
        }
    }

    tracing::info!(listeners = active.len(), "shutting down listeners");
    for (_, listener) in active.drain() {
        listener.drain.cancel();
        let _ = listener.accept_loop.await;
    }
    connections.close();
    if tokio::time::timeout(SHUTDOWN_DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "drain timeout; dropping connections"
        );
    }
    Ok(())
}

/// Bring `active` in line with `snapshot`. Returns whether some bind failed.
async fn reconcile(
    data_plane: &Arc<DataPlane>,
    capture: CaptureOptions,
    snapshot: &Snapshot,
    active: &mut HashMap<String, Active>,
    shutdown: &CancellationToken,
    connections: &TaskTracker,
) -> bool {
    let wanted: HashMap<&str, (SocketAddr, String)> = snapshot
        .listeners
        .values()
        .filter(|listener| listener.bind_to_port)
        .map(|listener| {
            let config = serde_json::to_string(&**listener).unwrap_or_default();
            (listener.name.as_str(), (listener.address, config))
        })
        .collect();

    // Stop first, so a listener that moved or was renamed can take its
    // address again. The accept loop returns as soon as it is cancelled,
    // which closes the socket; its connections drain on their own.
    let stale: Vec<String> = active
        .iter()
        .filter(|(name, listener)| {
            wanted
                .get(name.as_str())
                .is_none_or(|(address, _)| *address != listener.address)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        if let Some(listener) = active.remove(&name) {
            tracing::info!(listener = %name, address = %listener.address, "stopping listener");
            listener.drain.cancel();
            let _ = listener.accept_loop.await;
        }
    }

    let mut failed = false;
    for (name, (address, config)) in wanted {
        if let Some(listener) = active.get_mut(name) {
            if listener.config != config {
                tracing::info!(listener = %name, "listener changed; draining its connections");
                let old = listener
                    .generation
                    .send_replace(listener.drain.child_token());
                old.cancel();
                listener.config = config;
            }
            continue;
        }
        match TcpListener::bind(address).await {
            Ok(socket) => {
                let bound = socket.local_addr().unwrap_or(address);
                tracing::info!(listener = %name, address = %bound, "listening");
                let drain = shutdown.child_token();
                let (generation, current) = watch::channel(drain.child_token());
                let accept_loop = tokio::spawn(
                    accept::BoundListener {
                        name: name.to_owned(),
                        socket,
                        data_plane: data_plane.clone(),
                        capture,
                        drain: drain.clone(),
                        generation: current,
                        connections: connections.clone(),
                    }
                    .run(),
                );
                active.insert(
                    name.to_owned(),
                    Active {
                        address,
                        config,
                        drain,
                        generation,
                        accept_loop,
                    },
                );
            }
            Err(error) => {
                failed = true;
                tracing::warn!(listener = %name, %address, %error, "bind failed; will retry");
            }
        }
    }
    failed
}

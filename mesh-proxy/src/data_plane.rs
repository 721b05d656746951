//! State the data path shares, between the listener stage and the network
//! filters it hands connections to (listener ─► HCM | tcp_proxy ─► cluster
//! ─► upstream pool):
//!
//! ```text
//!                    ┌──────────── DataPlane ─────────────────────────────┐
//!  listener stage ─► │ store      the current Snapshot                    │ ◄─ HCM (per request)
//!   (makes it,       │ clusters   per cluster: LB, breakers, outlier, DNS │ ◄─ tcp_proxy (per connection)
//!    forgets unused) │ pool       upstream HTTP pools per cluster/endpoint│
//!                    └────────────────────────────────────────────────────┘
//!  Downstream: the addresses of one accepted connection, handed along with it
//! ```
//!
//! Only what outlives a snapshot lives here; the config itself is the
//! snapshot, loaded once per connection or request.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::access_log::Sinks;
use crate::cluster::ClusterManager;
use crate::model::{Snapshot, SnapshotStore};
use crate::upstream::UpstreamPool;

/// State the whole data path shares: the config and everything that must
/// outlive a snapshot (load balancer positions, connection pools).
#[derive(Debug)]
pub struct DataPlane {
    /// The current config.
    pub store: Arc<SnapshotStore>,
    /// Endpoint discovery and load balancing, keyed by cluster name.
    pub clusters: ClusterManager,
    /// Pooled upstream HTTP connections, per endpoint.
    pub pool: UpstreamPool,
    /// Access log writers, one per destination.
    pub access_logs: Sinks,
    /// Downstream connections open on all listeners together, each holding
    /// a permit (`--max-downstream-connections`, Envoy's overload manager
    /// `global_downstream_max_connections`); a connection over the limit is
    /// closed at accept.
    pub downstream_connections: Arc<tokio::sync::Semaphore>,
    /// How many the limit allows.
    pub max_downstream_connections: usize,
    /// Connections closed at accept because the limit was reached.
    pub downstream_overflow: std::sync::atomic::AtomicU64,
}

/// Default of `--max-downstream-connections`.
pub const DEFAULT_MAX_DOWNSTREAM_CONNECTIONS: usize = 65_536;

impl DataPlane {
    /// Data plane state over `store`, with no load balancer or pool state yet.
    pub fn new(store: Arc<SnapshotStore>) -> Self {
        Self::with_connection_limit(store, DEFAULT_MAX_DOWNSTREAM_CONNECTIONS)
    }

    /// [`DataPlane::new`] with at most `max` downstream connections.
    pub fn with_connection_limit(store: Arc<SnapshotStore>, max: usize) -> Self {
        let max = max.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            store,
            clusters: ClusterManager::new(),
            pool: UpstreamPool::new(),
            access_logs: Sinks::new(),
            downstream_connections: Arc::new(tokio::sync::Semaphore::new(max)),
            max_downstream_connections: max,
            downstream_overflow: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Drop the state of clusters `snapshot` no longer has (balancers,
    /// circuit breakers, outlier state, DNS answers, pools) and the pools of
    /// endpoints it no longer lists (the listener stage calls it after each
    /// new snapshot). A cluster that stays keeps all of it.
    pub fn forget_unused(&self, snapshot: &Snapshot) {
        self.clusters.retain(snapshot);
        self.pool.retain(snapshot);
    }
}

/// The addresses of one downstream connection.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the connection was accepted on.
    pub local: SocketAddr,
    /// Where the client meant to connect: SO_ORIGINAL_DST on listeners with
    /// `use_original_dst` or the `original_dst` listener filter, else (and
    /// when nothing was redirected) `local`.
    pub original_dst: SocketAddr,
    /// Set when the listener terminated TLS on this connection.
    pub tls: Option<DownstreamTls>,
}

/// What the TLS handshake of a downstream connection settled.
#[derive(Debug, Clone, Default)]
pub struct DownstreamTls {
    /// The SNI the client asked for.
    pub server_name: Option<String>,
    /// The ALPN protocol agreed on (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The client presented a certificate the listener verified.
    pub peer_certificate: bool,
}

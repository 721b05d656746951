//! The proxy's own configuration model: what `xds/` converts Envoy resources
//! into and what listeners, the router and clusters read. Protobuf never
//! crosses this line (STYLE.md rule 6).
//!
//! A [`Snapshot`] is immutable and replaced whole by [`SnapshotStore::publish`];
//! a connection or request loads it once and keeps using that copy, so a new
//! snapshot never disturbs work in flight.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

mod access_log;
mod cluster;
mod downstream_tls;
mod format;
mod hcm;
mod listener;
mod matcher;
mod policy;
mod route;

pub use access_log::*;
pub use cluster::*;
pub use downstream_tls::*;
pub use format::*;
pub use hcm::*;
pub use listener::*;
pub use matcher::*;
pub use policy::*;
pub use route::*;

/// Everything the proxy currently serves, keyed by Envoy resource name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Snapshot {
    /// Listeners by name (LDS).
    pub listeners: BTreeMap<String, Arc<Listener>>,
    /// Route configurations by name (RDS).
    pub route_configs: BTreeMap<String, Arc<RouteConfig>>,
    /// Clusters by name (CDS).
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// Endpoints by cluster name (EDS `cluster_name`).
    pub endpoints: BTreeMap<String, Arc<LoadAssignment>>,
}

/// The current snapshot for readers on the hot path, plus a change signal
/// for tasks that must react (the listener manager).
#[derive(Debug)]
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
    changed: watch::Sender<u64>,
}

impl Default for SnapshotStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            current: ArcSwap::from_pointee(Snapshot::default()),
            changed,
        }
    }

    /// The snapshot to use for one connection or request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replace the snapshot whole and wake watchers.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// A receiver that changes on every publish.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

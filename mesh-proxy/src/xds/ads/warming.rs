//! Listener warming, between conversion and publish (response ─► convert ─►
//! **warming** ─► publish): a listener LDS asked for serves only once what
//! it needs has arrived, as Envoy's listener manager does.
//!
//! ```text
//! wanted (last LDS) ──► warm? every RDS route config it names is in the snapshot, and
//!                       every EDS cluster it (or those route configs) sends to has
//!                       its ClusterLoadAssignment
//!                         ├─ yes                  ─► published as it is
//!                         ├─ no, older version    ─► the older version keeps serving
//!                         ├─ no, new name         ─► left out (dispatch falls back to
//!                         │                          the capture listener's own chains)
//!                         └─ no for WARMING_TIMEOUT ─► published anyway (Envoy's
//!                                                    initial_fetch_timeout)
//! ```
//!
//! Holding a listener for its clusters' endpoints gives what Envoy gets by
//! initialising CDS and EDS before LDS: a fresh proxy never answers `no
//! healthy upstream` only because EDS is a moment behind LDS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Discovery, Listener, NetworkFilter, RouteSource, Snapshot};
use crate::xds::convert::{route_config_clusters, target_clusters};

/// How long a listener may warm before it is served anyway (Envoy's
/// default `initial_fetch_timeout`).
pub const WARMING_TIMEOUT: Duration = Duration::from_secs(15);

/// The listeners LDS asked for and which of them are still warming.
#[derive(Debug, Default)]
pub(super) struct Warming {
    /// The last accepted LDS set.
    pub(super) wanted: BTreeMap<String, Arc<Listener>>,
    /// Listeners not served as wanted yet: when each started warming, and
    /// its config (JSON), so a re-sent unchanged listener keeps its clock.
    pending: BTreeMap<String, (String, Instant)>,
    /// Listeners whose warming timed out, by config: served as they are.
    expired: BTreeMap<String, String>,
}

impl Warming {
    /// Warming state that wants `listeners` (those already published).
    pub(super) fn new(listeners: BTreeMap<String, Arc<Listener>>) -> Warming {
        Warming {
            wanted: listeners,
            ..Default::default()
        }
    }

    /// The listeners to publish with `next` (whose other resources are
    /// final): each wanted listener if warm, else its published older
    /// version if any. Updates which listeners are pending.
    pub(super) fn resolve(
        &mut self,
        next: &Snapshot,
        published: &BTreeMap<String, Arc<Listener>>,
        now: Instant,
    ) -> BTreeMap<String, Arc<Listener>> {
        let mut out = BTreeMap::new();
        let mut pending = BTreeMap::new();
        for (name, listener) in &self.wanted {
            if is_warm(listener, next) {
                out.insert(name.clone(), listener.clone());
                continue;
            }
            // Only cold listeners are serialised: EDS pushes are frequent.
            let config = serde_json::to_string(&**listener).unwrap_or_default();
            if self.expired.get(name) == Some(&config) {
                out.insert(name.clone(), listener.clone());
                continue;
            }
            let since = match self.pending.get(name) {
                Some((old, since)) if *old == config => *since,
                _ => now,
            };
            tracing::debug!(listener = %name, "warming: waiting for its routes or endpoints");
            pending.insert(name.clone(), (config, since));
            if let Some(older) = published.get(name) {
                out.insert(name.clone(), older.clone());
            }
        }
        self.pending = pending;
        self.expired
            .retain(|name, _| self.wanted.contains_key(name));
        out
    }

    /// When the next pending listener times out.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|(_, since)| *since + WARMING_TIMEOUT)
            .min()
    }

    /// Mark the listeners that warmed for [`WARMING_TIMEOUT`] as served;
    /// whether any did.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let mut any = false;
        for (name, (config, since)) in &self.pending {
            if now >= *since + WARMING_TIMEOUT {
                tracing::warn!(listener = %name, "warming timed out; serving without what it waits for");
                self.expired.insert(name.clone(), config.clone());
                any = true;
            }
        }
        any
    }

    /// Names of the listeners still warming.
    pub(super) fn pending(&self) -> impl Iterator<Item = &String> {
        self.pending.keys()
    }
}

/// Whether everything `listener` needs is in `snapshot`.
pub fn is_warm(listener: &Listener, snapshot: &Snapshot) -> bool {
    let cluster_ready = |name: &str| match snapshot.clusters.get(name).map(|c| &c.discovery) {
        Some(Discovery::Eds { service_name }) => snapshot.endpoints.contains_key(service_name),
        // Missing clusters are the dangling-cluster check's business.
        _ => true,
    };
    listener
        .filter_chains
        .iter()
        .chain(&listener.default_filter_chain)
        .all(|chain| match &chain.filter {
            NetworkFilter::Tcp(tcp) => target_clusters(&tcp.destination).all(cluster_ready),
            NetworkFilter::Http(hcm) => {
                let config = match &hcm.routes {
                    RouteSource::Inline(config) => Some(config),
                    RouteSource::Rds(name) => snapshot.route_configs.get(name),
                };
                config.is_some_and(|config| {
                    route_config_clusters(config).all(|(cluster, _)| cluster_ready(&cluster))
                })
            }
        })
}

/// RDS names a set of listeners needs.
pub fn rds_names<'a>(listeners: impl IntoIterator<Item = &'a Arc<Listener>>) -> BTreeSet<String> {
    listeners
        .into_iter()
        .flat_map(|l| l.filter_chains.iter().chain(&l.default_filter_chain))
        .filter_map(|fc| match &fc.filter {
            NetworkFilter::Http(hcm) => match &hcm.routes {
                RouteSource::Rds(name) => Some(name.clone()),
                RouteSource::Inline(_) => None,
            },
            NetworkFilter::Tcp(_) => None,
        })
        .collect()
}

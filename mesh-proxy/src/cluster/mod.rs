//! The cluster stage of the data path (router / tcp_proxy ─► **cluster** ─►
//! upstream pool): pick one cluster of a weighted target, find its endpoints
//! (EDS, static, DNS or the original destination) and load-balance to one.
//!
//! ```text
//!  pick ─► endpoints (snapshot EDS | static | dns.rs | original dst)
//!       ─► state.rs: host set (hosts.rs: priority, panic, locality; outlier.rs: ejections)
//!       ─► lb.rs: policy (hash.rs: ring, maglev) ─► Picked ─► upstream pool
//!  Picked::report ─► outlier.rs        begin_retry / pool ─► breaker.rs
//! ```
//!
//! [`ClusterManager`] is owned by the data plane, not by the snapshot: the
//! per-cluster [`ClusterState`] (breakers, outlier state, balancer
//! positions, DNS answers) is keyed by cluster name and outlives snapshot
//! swaps; [`ClusterManager::retain`] drops the state of clusters that go.

pub mod breaker;
pub mod dns;
pub mod hash;
pub mod hosts;
pub mod lb;
pub mod outlier;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::error::ProxyError;
use crate::model::{Cluster, ClusterTarget, Discovery, LoadAssignment, Snapshot};

pub use breaker::{Limit, Permit, Resources};
pub use dns::{Resolver, SystemResolver};
pub use outlier::Outcome;
pub use state::{ClusterState, Picked};

/// What the cluster stage needs to know of the request or connection it
/// picks an endpoint for.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// Where the client meant to connect (ORIGINAL_DST clusters dial it).
    pub original_dst: SocketAddr,
    /// The local address the downstream connection was accepted on.
    pub listener: SocketAddr,
    /// The request's consistent-hash key (the route's `hash_policy`), for
    /// RING_HASH and MAGLEV clusters; without one they pick at random.
    /// Also chooses the priority, so a key sticks to one priority.
    pub hash: Option<u64>,
    /// Endpoints already tried by earlier attempts of this request, to
    /// avoid when another one is available (`previous_hosts`): the pick is
    /// redrawn up to three times.
    pub avoid: &'a [SocketAddr],
}

impl PickContext<'_> {
    /// The context of a connection with no hash key and nothing to avoid.
    pub fn new(original_dst: SocketAddr, listener: SocketAddr) -> PickContext<'static> {
        PickContext {
            original_dst,
            listener,
            hash: None,
            avoid: &[],
        }
    }
}

/// Admission of one retry against the cluster's `max_retries` circuit
/// breaker; the retry counts as active until it is dropped.
#[derive(Debug)]
pub struct RetryGuard {
    _permit: Permit,
}

/// Choose the cluster name of a target: the cluster itself, or one arm of a
/// weighted choice with probability weight / total. An empty choice yields
/// `""`, which no cluster is named, so the caller answers "cluster not found".
pub fn choose_cluster(target: &ClusterTarget) -> &str {
    match target {
        ClusterTarget::Cluster(name) => name,
        ClusterTarget::Weighted(arms) => {
            let total: u64 = arms.iter().map(|arm| u64::from(arm.weight)).sum();
            if total == 0 {
                return arms.first().map_or("", |arm| arm.name.as_str());
            }
            let mut point = rand::rng().random_range(0..total);
            for arm in arms {
                let weight = u64::from(arm.weight);
                if point < weight {
                    return &arm.name;
                }
                point -= weight;
            }
            arms.last().map_or("", |arm| arm.name.as_str())
        }
    }
}

/// Endpoint discovery, load balancing, circuit breakers and outlier
/// detection for all clusters.
#[derive(Debug)]
pub struct ClusterManager {
    states: Mutex<HashMap<String, Arc<ClusterState>>>,
    resolver: Arc<dyn Resolver>,
}

impl Default for ClusterManager {
    fn default() -> Self {
        Self::with_resolver(Arc::new(SystemResolver))
    }
}

impl ClusterManager {
    /// An empty manager resolving DNS clusters with the system resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty manager with its own resolver (tests).
    pub fn with_resolver(resolver: Arc<dyn Resolver>) -> Self {
        ClusterManager {
            states: Mutex::new(HashMap::new()),
            resolver,
        }
    }

    /// Pick the endpoint for one request or connection to `cluster`.
    ///
    /// Errors: `NoHealthyUpstream` (no endpoint, or a DNS cluster whose
    /// first lookup failed), `Blocked` (no endpoint, and pilot's metadata
    /// says why: `BlackHoleCluster`), `EjectedUpstream` (every candidate
    /// ejected), `OriginalDstLoop`.
    pub async fn pick(
        &self,
        snapshot: &Snapshot,
        cluster: &Cluster,
        ctx: &PickContext<'_>,
    ) -> Result<Picked, ProxyError> {
        self.pick_from(snapshot, cluster, ctx)
            .await
            .map_err(|error| match (&error, &cluster.metadata.reason) {
                (ProxyError::NoHealthyUpstream(_), Some(reason)) => ProxyError::Blocked {
                    cluster: cluster.name.clone(),
                    reason: reason.clone(),
                },
                _ => error,
            })
    }

    async fn pick_from(
        &self,
        snapshot: &Snapshot,
        cluster: &Cluster,
        ctx: &PickContext<'_>,
    ) -> Result<Picked, ProxyError> {
        let state = self.state(&cluster.name);
        let assignment = match &cluster.discovery {
            Discovery::Eds { service_name } => match snapshot.endpoints.get(service_name) {
                Some(assignment) => assignment.clone(),
                None => return Err(ProxyError::NoHealthyUpstream(cluster.name.clone())),
            },
            Discovery::Static(assignment) => assignment.clone(),
            Discovery::StrictDns(dns) | Discovery::LogicalDns(dns) => {
                let logical = matches!(cluster.discovery, Discovery::LogicalDns(_));
                state
                    .dns
                    .assignment(&self.resolver, &cluster.name, dns, logical)
                    .await
                    .map_err(|error| {
                        tracing::debug!(cluster = %cluster.name, %error, "no DNS answer");
                        ProxyError::NoHealthyUpstream(cluster.name.clone())
                    })?
            }
            Discovery::OriginalDst => {
                // Without capture the original destination is the listener
                // itself; dialling one of our own sockets would loop
                // through us without end.
                if is_own_socket(snapshot, ctx.original_dst, ctx.listener) {
                    return Err(ProxyError::OriginalDstLoop(ctx.original_dst));
                }
                return Ok(Picked::direct(ctx.original_dst, state));
            }
        };
        state.pick(cluster, &assignment, ctx.hash, ctx.avoid)
    }

    /// Admit one retry of a request to `cluster` (its `max_retries` circuit
    /// breaker): `Err(Overflow)` naming `maxRetries` when that many retries
    /// are already in flight. Hold the guard for the retry's life.
    pub fn begin_retry(&self, cluster: &Cluster) -> Result<RetryGuard, ProxyError> {
        let permit = self
            .state(&cluster.name)
            .resources
            .admit(cluster, Limit::Retries)?;
        Ok(RetryGuard { _permit: permit })
    }

    /// The state of a cluster name, made on first use.
    pub fn state(&self, cluster: &str) -> Arc<ClusterState> {
        let mut states = self.lock();
        if let Some(state) = states.get(cluster) {
            return state.clone();
        }
        let state = Arc::new(ClusterState::default());
        states.insert(cluster.to_owned(), state.clone());
        state
    }

    /// The current host set of `cluster` for its `assignment` (tests and the
    /// admin page).
    pub fn host_set(
        &self,
        cluster: &Cluster,
        assignment: &Arc<LoadAssignment>,
    ) -> Arc<hosts::HostSet> {
        self.state(&cluster.name).host_set(cluster, assignment)
    }

    /// Forget the state of clusters that the snapshot no longer has
    /// (breakers, outlier state, balancers, DNS answers).
    pub fn retain(&self, snapshot: &Snapshot) {
        self.lock()
            .retain(|name, _| snapshot.clusters.contains_key(name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ClusterState>>> {
        self.states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `destination` is a socket this proxy listens on: the one the
/// connection came in on, or a bound listener of the snapshot (a wildcard
/// listener counts for loopback and for the local address).
pub fn is_own_socket(snapshot: &Snapshot, destination: SocketAddr, local: SocketAddr) -> bool {
    destination == local
        || snapshot
            .listeners
            .values()
            .filter(|l| l.bind_to_port)
            .any(|l| {
                l.address == destination
                    || (l.address.ip().is_unspecified()
                        && l.address.port() == destination.port()
                        && (destination.ip().is_loopback() || destination.ip() == local.ip()))
            })
}

#[cfg(test)]
mod tests;

//! The state of one cluster that outlives snapshots (cluster stage): its
//! circuit breaker counters, outlier detection, DNS answers, and the host
//! set built from its current endpoints, with the balancers' positions and
//! active-request counts. Keyed by cluster name in the
//! [`ClusterManager`](super::ClusterManager); a cluster that stays across a
//! snapshot swap keeps all of it, and a cluster that goes takes it along.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::breaker::{Permit, Resources};
use super::dns::DnsState;
use super::hosts::HostSet;
use super::lb::Host;
use super::outlier::{Detector, Outcome};
use crate::error::ProxyError;
use crate::model::{Cluster, LbConfig, LbPolicy, LoadAssignment};

/// Everything kept for one cluster name.
#[derive(Debug, Default)]
pub struct ClusterState {
    /// Circuit breaker counters (shared with the upstream pool).
    pub resources: Arc<Resources>,
    /// Outlier detection.
    pub outlier: Detector,
    /// DNS answers of a DNS cluster.
    pub dns: Arc<DnsState>,
    /// The host set in use, read without a lock on every pick.
    current: ArcSwapOption<Current>,
    cache: Mutex<Cache>,
}

/// A host set and what it was built from.
#[derive(Debug)]
struct Current {
    assignment: Arc<LoadAssignment>,
    generation: u64,
    lb: LbConfig,
    policy: LbPolicy,
    set: Arc<HostSet>,
}

impl Current {
    fn fits(&self, cluster: &Cluster, assignment: &Arc<LoadAssignment>, generation: u64) -> bool {
        Arc::ptr_eq(&self.assignment, assignment)
            && self.generation == generation
            && self.policy == cluster.lb_policy
            && self.lb == cluster.lb
    }
}

/// What rebuilding a host set carries over, behind the rebuild lock.
#[derive(Debug, Default)]
struct Cache {
    active: HashMap<SocketAddr, Arc<AtomicUsize>>,
    /// When each host joined (`None`: it was in the first list).
    added: HashMap<SocketAddr, Option<Instant>>,
    built_once: bool,
}

/// An endpoint chosen for one request or connection. It counts as an
/// active request on the endpoint (least request) until dropped, and is
/// how the attempt's outcome reaches outlier detection.
#[derive(Debug)]
pub struct Picked {
    /// Where to connect.
    pub address: SocketAddr,
    state: Arc<ClusterState>,
    total_hosts: usize,
    _active: ActiveRequest,
}

impl Picked {
    /// A pick of `address` that is not one of a host set's hosts (the
    /// original destination).
    pub(super) fn direct(address: SocketAddr, state: Arc<ClusterState>) -> Picked {
        Picked {
            address,
            state,
            total_hosts: 1,
            _active: ActiveRequest::new(Arc::default()),
        }
    }

    /// Record how the attempt on this endpoint ended: outlier detection
    /// counts it (nothing happens for a cluster without detection).
    pub fn report(&self, outcome: Outcome) {
        self.state
            .outlier
            .report(self.address, outcome, self.total_hosts);
    }

    /// The cluster's circuit breaker counters.
    pub fn resources(&self) -> &Arc<Resources> {
        &self.state.resources
    }

    /// Take a circuit breaker slot of `cluster` (the one picked from).
    pub fn admit(&self, cluster: &Cluster, limit: super::Limit) -> Result<Permit, ProxyError> {
        self.state.resources.admit(cluster, limit)
    }
}

/// Counts one request in flight on an endpoint for as long as it lives.
#[derive(Debug)]
struct ActiveRequest(Arc<AtomicUsize>);

impl ActiveRequest {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many times a pick may be redrawn to avoid a host already tried.
const AVOID_ATTEMPTS: usize = 3;

impl ClusterState {
    /// The host set of `assignment` with the current ejections, built again
    /// only when the endpoints, the ejections or the balancing config
    /// changed.
    pub fn host_set(&self, cluster: &Cluster, assignment: &Arc<LoadAssignment>) -> Arc<HostSet> {
        self.outlier.sync(cluster.outlier_detection.as_ref());
        let generation = self.outlier.generation();
        if let Some(current) = self.current.load().as_deref() {
            if current.fits(cluster, assignment, generation) {
                return current.set.clone();
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Another pick may have rebuilt it while this one waited.
        if let Some(current) = self.current.load().as_deref() {
            if current.fits(cluster, assignment, generation) {
                return current.set.clone();
            }
        }
        let now = Instant::now();
        let first = !cache.built_once;
        cache.built_once = true;
        let live: std::collections::HashSet<SocketAddr> =
            assignment.endpoints.iter().map(|e| e.address).collect();
        if cache.added.len() > live.len() || cache.active.len() > live.len() {
            cache.added.retain(|a, _| live.contains(a));
            // In-flight picks keep their own counter, so this is safe.
            cache.active.retain(|a, _| live.contains(a));
            self.outlier.retain(|a| live.contains(a));
        }
        let hosts: Vec<Host> = assignment
            .endpoints
            .iter()
            .map(|e| {
                let added =
                    *cache
                        .added
                        .entry(e.address)
                        .or_insert(if first { None } else { Some(now) });
                Host {
                    address: e.address,
                    weight: e.weight.max(1),
                    active: cache.active.entry(e.address).or_default().clone(),
                    added,
                }
            })
            .collect();
        let addresses: Vec<SocketAddr> = hosts.iter().map(|h| h.address).collect();
        let ejected = self.outlier.ejected_among(&addresses);
        let generation = self.outlier.generation();
        let previous = self.current.load_full();
        let set = Arc::new(HostSet::build(
            assignment,
            hosts,
            &ejected,
            &cluster.lb,
            previous.as_ref().map(|p| &*p.set),
        ));
        self.current.store(Some(Arc::new(Current {
            assignment: assignment.clone(),
            generation,
            lb: cluster.lb.clone(),
            policy: cluster.lb_policy,
            set: set.clone(),
        })));
        set
    }

    /// Pick one endpoint of `assignment` for a request with `hash`,
    /// avoiding `avoid` while another host is available.
    pub fn pick(
        self: &Arc<Self>,
        cluster: &Cluster,
        assignment: &Arc<LoadAssignment>,
        hash: Option<u64>,
        avoid: &[SocketAddr],
    ) -> Result<Picked, ProxyError> {
        // The hot path borrows the current host set instead of cloning it.
        let guard = self.current.load();
        let fresh;
        let set: &HostSet = match guard.as_deref() {
            Some(current)
                if {
                    self.outlier.sync(cluster.outlier_detection.as_ref());
                    current.fits(cluster, assignment, self.outlier.generation())
                } =>
            {
                &current.set
            }
            _ => {
                fresh = self.host_set(cluster, assignment);
                &fresh
            }
        };
        // Only slow start needs the time.
        let now = cluster.lb.slow_start.as_ref().map(|_| Instant::now());
        let mut chosen = None;
        for attempt in 0..=AVOID_ATTEMPTS {
            // A redraw of a hashing policy moves the key, as Envoy's
            // previous-hosts retry predicate does.
            let key =
                hash.map(|h| h.wrapping_add((attempt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            let Some(subset) = set.select(key) else { break };
            let Some(index) = subset.pick(&set.hosts, cluster.lb_policy, &cluster.lb, key, now)
            else {
                break;
            };
            let avoided = |i: usize| avoid.contains(&set.hosts[i].address);
            if !avoided(index) {
                chosen = Some(index);
                break;
            }
            // Redraws exhausted: any host of the subset not tried yet, else
            // the one drawn (trying a host again beats not trying).
            chosen = Some(index);
            if attempt == AVOID_ATTEMPTS {
                chosen = subset
                    .hosts
                    .iter()
                    .copied()
                    .find(|&i| !avoided(i))
                    .or(chosen);
            }
        }
        let Some(index) = chosen else {
            return Err(if set.ejected > 0 {
                ProxyError::EjectedUpstream {
                    cluster: cluster.name.clone(),
                    ejected: set.ejected,
                    total: set.hosts.len(),
                    config: cluster.describe(),
                }
            } else {
                ProxyError::NoHealthyUpstream(cluster.name.clone())
            });
        };
        let host = &set.hosts[index];
        Ok(Picked {
            address: host.address,
            state: self.clone(),
            total_hosts: set.hosts.len(),
            _active: ActiveRequest::new(host.active.clone()),
        })
    }

    /// Requests in flight on `address` (tests and the admin page).
    pub fn active_requests(&self, address: SocketAddr) -> usize {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .active
            .get(&address)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

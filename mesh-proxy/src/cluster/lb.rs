//! Load balancing, the last step of the cluster stage: from a cluster's
//! endpoint list to one endpoint address.
//!
//! A [`LoadBalancer`] lives as long as its cluster name does in the data
//! plane (not in the snapshot), so round-robin position and active-request
//! counts survive snapshot swaps. State is keyed by endpoint address, so an
//! endpoint that stays across an EDS update keeps its place too.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::model::{Endpoint, LbPolicy};

/// Per-cluster balancing state.
#[derive(Debug, Default)]
pub struct LoadBalancer {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Smooth weighted round robin: current weight per endpoint.
    current: HashMap<SocketAddr, i64>,
    /// Requests in flight per endpoint (for least-request).
    active: HashMap<SocketAddr, Arc<AtomicUsize>>,
}

/// An endpoint chosen for one request; holds its active-request count up
/// until dropped.
#[derive(Debug)]
pub struct Picked {
    /// Where to connect.
    pub address: SocketAddr,
    _active: ActiveRequest,
}

/// How one attempt on a picked endpoint ended, as outlier detection sees
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered with this status.
    Status(u16),
    /// The connection could not be made.
    ConnectFailure,
    /// The upstream reset or closed the connection before answering.
    Reset,
    /// No answer within the attempt's timeout.
    Timeout,
}

impl Picked {
    /// Record how the attempt on this endpoint ended.
    pub fn report(&self, _outcome: Outcome) {}
}

/// Counts one request in flight on an endpoint for as long as it lives.
#[derive(Debug)]
struct ActiveRequest(Arc<AtomicUsize>);

impl ActiveRequest {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LoadBalancer {
    /// Choose one of `endpoints` by `policy`; `None` when the list is empty.
    pub fn pick(&self, policy: LbPolicy, endpoints: &[Endpoint]) -> Option<Picked> {
        if endpoints.is_empty() {
            return None;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.forget_departed(endpoints);
        let index = match policy {
            LbPolicy::RoundRobin => state.smooth_round_robin(endpoints),
            LbPolicy::Random => weighted_random(endpoints),
            LbPolicy::LeastRequest => state.least_request(endpoints),
        };
        let address = endpoints[index].address;
        let counter = state.active.entry(address).or_default().clone();
        Some(Picked {
            address,
            _active: ActiveRequest::new(counter),
        })
    }

    /// Requests in flight on `address` (for tests and the admin page).
    pub fn active_requests(&self, address: SocketAddr) -> usize {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state
            .active
            .get(&address)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }
}

impl State {
    /// Drop state of endpoints no longer in the list, so it cannot grow
    /// without bound as EDS churns. Cheap when nothing changed.
    fn forget_departed(&mut self, endpoints: &[Endpoint]) {
        if self.current.len() <= endpoints.len() && self.active.len() <= endpoints.len() {
            return;
        }
        let live: HashSet<SocketAddr> = endpoints.iter().map(|e| e.address).collect();
        self.current.retain(|addr, _| live.contains(addr));
        // An in-flight request still holds its own Arc, so forgetting is safe.
        self.active.retain(|addr, _| live.contains(addr));
    }

    /// nginx's smooth weighted round robin: each pick adds every endpoint's
    /// weight to its current value, takes the largest, and subtracts the
    /// total from it. Equal weights give plain round robin in list order.
    fn smooth_round_robin(&mut self, endpoints: &[Endpoint]) -> usize {
        let mut total = 0i64;
        let mut best = 0usize;
        let mut best_value = i64::MIN;
        for (index, endpoint) in endpoints.iter().enumerate() {
            let weight = i64::from(endpoint.weight.max(1));
            total += weight;
            let value = self.current.entry(endpoint.address).or_insert(0);
            *value += weight;
            if *value > best_value {
                best_value = *value;
                best = index;
            }
        }
        if let Some(value) = self.current.get_mut(&endpoints[best].address) {
            *value -= total;
        }
        best
    }

    /// Power of two choices: of two random endpoints, the one with fewer
    /// requests in flight per unit of weight.
    fn least_request(&self, endpoints: &[Endpoint]) -> usize {
        if endpoints.len() == 1 {
            return 0;
        }
        let mut rng = rand::rng();
        let first = rng.random_range(0..endpoints.len());
        let mut second = rng.random_range(0..endpoints.len() - 1);
        if second >= first {
            second += 1;
        }
        let load = |index: usize| {
            let endpoint = &endpoints[index];
            let active = self
                .active
                .get(&endpoint.address)
                .map_or(0, |count| count.load(Ordering::Relaxed));
            // Compare active/weight without floats: a/wa < b/wb <=> a*wb < b*wa.
            (active as u64, u64::from(endpoint.weight.max(1)))
        };
        let (a, wa) = load(first);
        let (b, wb) = load(second);
        if b * wa < a * wb {
            second
        } else {
            first
        }
    }
}

/// An endpoint with probability weight / total weight.
fn weighted_random(endpoints: &[Endpoint]) -> usize {
    let total: u64 = endpoints.iter().map(|e| u64::from(e.weight.max(1))).sum();
    let mut point = rand::rng().random_range(0..total);
    for (index, endpoint) in endpoints.iter().enumerate() {
        let weight = u64::from(endpoint.weight.max(1));
        if point < weight {
            return index;
        }
        point -= weight;
    }
    endpoints.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(port: u16, weight: u32) -> Endpoint {
        Endpoint {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            weight,
        }
    }

    fn ports(lb: &LoadBalancer, policy: LbPolicy, endpoints: &[Endpoint], n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| lb.pick(policy, endpoints).map_or(0, |p| p.address.port()))
            .collect()
    }

    #[test]
    fn round_robin_cycles_in_order() {
        let lb = LoadBalancer::default();
        let eps = [endpoint(1, 1), endpoint(2, 1), endpoint(3, 1)];
        assert_eq!(
            ports(&lb, LbPolicy::RoundRobin, &eps, 6),
            [1, 2, 3, 1, 2, 3]
        );
    }

    #[test]
    fn round_robin_honours_weights_smoothly() {
        let lb = LoadBalancer::default();
        let eps = [endpoint(1, 5), endpoint(2, 1), endpoint(3, 1)];
        let picks = ports(&lb, LbPolicy::RoundRobin, &eps, 7);
        assert_eq!(picks, [1, 1, 2, 1, 3, 1, 1]);
    }

    #[test]
    fn round_robin_position_survives_a_new_endpoint_list() {
        let lb = LoadBalancer::default();
        let eps = [endpoint(1, 1), endpoint(2, 1), endpoint(3, 1)];
        assert_eq!(ports(&lb, LbPolicy::RoundRobin, &eps, 1), [1]);
        // The same endpoints in a freshly converted list: continue, don't restart.
        let again = eps.to_vec();
        assert_eq!(ports(&lb, LbPolicy::RoundRobin, &again, 2), [2, 3]);
        // One endpoint leaves: its state is forgotten, the rest go on.
        let fewer = [endpoint(1, 1), endpoint(3, 1)];
        let picks = ports(&lb, LbPolicy::RoundRobin, &fewer, 4);
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 2);
        assert_eq!(picks.iter().filter(|p| **p == 3).count(), 2);
    }

    #[test]
    fn empty_list_picks_nothing() {
        let lb = LoadBalancer::default();
        assert!(lb.pick(LbPolicy::RoundRobin, &[]).is_none());
        assert!(lb.pick(LbPolicy::LeastRequest, &[]).is_none());
    }

    #[test]
    fn random_honours_weights() {
        let lb = LoadBalancer::default();
        let eps = [endpoint(1, 3), endpoint(2, 1)];
        let picks = ports(&lb, LbPolicy::Random, &eps, 4000);
        let ones = picks.iter().filter(|p| **p == 1).count();
        assert!((2700..3300).contains(&ones), "{ones} of 4000");
    }

    #[test]
    fn least_request_avoids_the_busy_endpoint() {
        let lb = LoadBalancer::default();
        let eps = [endpoint(1, 1), endpoint(2, 1)];
        // Hold many requests on endpoint 1 by picking until we have 10 there.
        let mut held = Vec::new();
        for _ in 0..1000 {
            if let Some(p) = lb.pick(LbPolicy::RoundRobin, &eps) {
                if p.address.port() == 1 {
                    held.push(p);
                }
            }
            if held.len() == 10 {
                break;
            }
        }
        assert_eq!(lb.active_requests(eps[0].address), 10);
        // With two endpoints both are always compared, so the idle one wins.
        let picks = ports(&lb, LbPolicy::LeastRequest, &eps, 50);
        assert!(picks.iter().all(|p| *p == 2), "{picks:?}");
        drop(held);
        assert_eq!(lb.active_requests(eps[0].address), 0);
    }
}

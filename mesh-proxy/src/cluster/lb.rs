//! Load balancing, the last step of the cluster stage: from the hosts the
//! priority and locality step left (a [`Subset`]) to one host, by the
//! cluster's policy.
//!
//! | policy | pick | cost |
//! | --- | --- | --- |
//! | ROUND_ROBIN, equal weights | next index | O(1) |
//! | ROUND_ROBIN, weighted or slow start | nginx's smooth weighted round robin | O(hosts) |
//! | RANDOM | uniform, or by weight (binary search) | O(1) / O(log hosts) |
//! | LEAST_REQUEST | fewest active requests per weight of `choice_count` random hosts | O(choice_count) |
//! | RING_HASH, MAGLEV | table lookup of the hash key (a random key without one) | O(log points) / O(1) |
//!
//! Slow start scales a new host's weight by
//! `max(min_weight, (age / window) ^ (1 / aggression))` until it is
//! `window` old; while any host of the subset is in its window, weights
//! are computed at each pick.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rand::Rng;
use tokio::time::Instant;

use super::hash::{Maglev, Ring};
use crate::model::{LbConfig, LbPolicy, SlowStart};

/// One host as the balancers see it.
#[derive(Debug)]
pub struct Host {
    /// Where to connect.
    pub address: SocketAddr,
    /// Its configured weight (>= 1).
    pub weight: u32,
    /// Requests in flight on it (shared with the picks that hold it).
    pub active: Arc<AtomicUsize>,
    /// When it joined an existing cluster (slow start); `None` for hosts
    /// of the cluster's first endpoint list.
    pub added: Option<Instant>,
}

/// Hosts to balance over, with the policy state that belongs to them.
#[derive(Debug, Default)]
pub struct Subset {
    /// Indices into the host list.
    pub hosts: Vec<usize>,
    weights: Vec<u32>,
    equal: bool,
    cumulative: Vec<u64>,
    rr: AtomicUsize,
    /// Smooth weighted round robin: current value per host (weights in
    /// thousandths so slow-start fractions count).
    swrr: Mutex<Vec<i64>>,
    ring: OnceLock<Ring>,
    maglev: OnceLock<Maglev>,
}

impl Subset {
    /// A subset of `hosts` (indices into `all`).
    pub fn new(all: &[Host], hosts: Vec<usize>) -> Subset {
        let weights: Vec<u32> = hosts.iter().map(|&i| all[i].weight.max(1)).collect();
        let equal = weights.windows(2).all(|w| w[0] == w[1]);
        let mut total = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += u64::from(*w);
                total
            })
            .collect();
        Subset {
            swrr: Mutex::new(vec![0; hosts.len()]),
            hosts,
            weights,
            equal,
            cumulative,
            ..Subset::default()
        }
    }

    /// Carry the round-robin position of `old` over (same hosts by address
    /// keep their smooth-round-robin value), so a new endpoint list does not
    /// restart the rotation.
    pub fn continue_from(&self, old: &Subset, old_hosts: &[Host], new_hosts: &[Host]) {
        self.rr
            .store(old.rr.load(Ordering::Relaxed), Ordering::Relaxed);
        let old_values = old.swrr.lock().unwrap_or_else(|p| p.into_inner());
        let mut values = self.swrr.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, &i) in self.hosts.iter().enumerate() {
            let address = new_hosts[i].address;
            if let Some(pos) = old
                .hosts
                .iter()
                .position(|&j| old_hosts[j].address == address)
            {
                values[slot] = old_values[pos];
            }
        }
    }

    /// Whether there is no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// One host (an index into `all`) by `policy`; `None` when empty.
    pub fn pick(
        &self,
        all: &[Host],
        policy: LbPolicy,
        lb: &LbConfig,
        hash: Option<u64>,
        now: Option<Instant>,
    ) -> Option<usize> {
        if self.hosts.is_empty() {
            return None;
        }
        // Slow start is the only user of the time: read it only then.
        let slow = lb
            .slow_start
            .as_ref()
            .map(|s| (s, now.unwrap_or_else(Instant::now)))
            .filter(|(s, now)| self.hosts.iter().any(|&i| in_window(&all[i], s, *now)));
        let slot = match policy {
            LbPolicy::RoundRobin | LbPolicy::ClusterProvided => match slow {
                None if self.equal => self.rr.fetch_add(1, Ordering::Relaxed) % self.hosts.len(),
                _ => self.smooth_round_robin(all, slow),
            },
            LbPolicy::Random => match slow {
                Some(slow) => weighted_random(&self.effective(all, slow)),
                None => self.weighted_random(),
            },
            LbPolicy::LeastRequest => self.least_request(all, lb.choice_count, slow),
            LbPolicy::RingHash => {
                let ring = self
                    .ring
                    .get_or_init(|| Ring::new(&self.weighted_hosts(all), lb.ring_min, lb.ring_max));
                ring.pick(hash.unwrap_or_else(random_hash))?
            }
            LbPolicy::Maglev => {
                let maglev = self
                    .maglev
                    .get_or_init(|| Maglev::new(&self.weighted_hosts(all), lb.maglev_table_size));
                maglev.pick(hash.unwrap_or_else(random_hash))?
            }
        };
        self.hosts.get(slot).copied()
    }

    fn weighted_hosts(&self, all: &[Host]) -> Vec<(SocketAddr, u32)> {
        self.hosts
            .iter()
            .zip(&self.weights)
            .map(|(&i, w)| (all[i].address, *w))
            .collect()
    }

    /// Weights in thousandths, slow start applied.
    fn effective(&self, all: &[Host], (slow, now): (&SlowStart, Instant)) -> Vec<u64> {
        self.hosts
            .iter()
            .zip(&self.weights)
            .map(|(&i, w)| {
                let factor = slow_start_factor(&all[i], slow, now);
                ((f64::from(*w) * 1000.0 * factor) as u64).max(1)
            })
            .collect()
    }

    fn smooth_round_robin(&self, all: &[Host], slow: Option<(&SlowStart, Instant)>) -> usize {
        let weights: Vec<u64> = match slow {
            Some(slow) => self.effective(all, slow),
            None => self.weights.iter().map(|w| u64::from(*w) * 1000).collect(),
        };
        let mut values = self.swrr.lock().unwrap_or_else(|p| p.into_inner());
        let mut total = 0i64;
        let mut best = 0usize;
        let mut best_value = i64::MIN;
        for (slot, (value, weight)) in values.iter_mut().zip(&weights).enumerate() {
            let weight = *weight as i64;
            total += weight;
            *value += weight;
            if *value > best_value {
                best_value = *value;
                best = slot;
            }
        }
        values[best] -= total;
        best
    }

    fn weighted_random(&self) -> usize {
        if self.equal {
            return rand::rng().random_range(0..self.hosts.len());
        }
        let total = self.cumulative.last().copied().unwrap_or(1);
        let point = rand::rng().random_range(0..total);
        self.cumulative.partition_point(|c| *c <= point)
    }

    fn least_request(
        &self,
        all: &[Host],
        choices: u32,
        slow: Option<(&SlowStart, Instant)>,
    ) -> usize {
        let n = self.hosts.len();
        if n == 1 {
            return 0;
        }
        let mut rng = rand::rng();
        let mut best = rng.random_range(0..n);
        let load = |slot: usize| {
            let host = &all[self.hosts[slot]];
            let weight = f64::from(self.weights[slot])
                * slow.map_or(1.0, |(s, now)| slow_start_factor(host, s, now));
            host.active.load(Ordering::Relaxed) as f64 / weight
        };
        let mut best_load = load(best);
        for _ in 1..choices.max(2) {
            let mut other = rng.random_range(0..n - 1);
            if other >= best {
                other += 1;
            }
            let other_load = load(other);
            if other_load < best_load {
                best = other;
                best_load = other_load;
            }
        }
        best
    }
}

fn in_window(host: &Host, slow: &SlowStart, now: Instant) -> bool {
    host.added
        .is_some_and(|added| now.saturating_duration_since(added) < slow.window)
}

/// The weight factor of `host` under slow start at `now` (1 outside its
/// window).
pub fn slow_start_factor(host: &Host, slow: &SlowStart, now: Instant) -> f64 {
    let Some(added) = host.added else {
        return 1.0;
    };
    let age = now.saturating_duration_since(added);
    if age >= slow.window {
        return 1.0;
    }
    let time = age.as_secs_f64() / slow.window.as_secs_f64();
    time.powf(1.0 / slow.aggression).max(slow.min_weight)
}

fn weighted_random(weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    let mut point = rand::rng().random_range(0..total.max(1));
    for (slot, w) in weights.iter().enumerate() {
        if point < *w {
            return slot;
        }
        point -= w;
    }
    weights.len() - 1
}

fn random_hash() -> u64 {
    rand::rng().random()
}

#[cfg(test)]
mod tests;

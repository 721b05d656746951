//! The cluster stage's host set: a cluster's endpoints arranged by priority
//! and locality with their health, and the choice of the priority and
//! locality a request goes to (load balancing then picks inside it).
//!
//! ```text
//!  LoadAssignment + ejections ─► HostSet ─► select(): priority by load ─► panic? all hosts
//!                                                      └─► locality by weight × health ─► Subset ─► lb
//! ```
//!
//! Envoy's arithmetic: a priority's health is
//! `min(100, overprovisioning_factor × healthy / total)` percent; the
//! priorities take load in order up to their health, normalised by the
//! total health when it is below 100, so load spills to the next priority as
//! hosts fail. Below 100 total health, a priority whose healthy share is
//! under `healthy_panic_threshold` is in panic: it balances over all its
//! hosts, healthy or not. A host is healthy when EDS does not mark it
//! UNHEALTHY, DRAINING or TIMEOUT and outlier detection has not ejected it.
//!
//! A host set is built once per endpoint list and ejection change, and
//! cached by the cluster's state.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::lb::{Host, Subset};
use crate::model::{LbConfig, LoadAssignment};
use rand::Rng;

/// One priority level.
#[derive(Debug)]
struct Level {
    number: u32,
    healthy: Subset,
    all: Subset,
    panic: bool,
    /// Localities with their effective weight (locality-weighted only).
    localities: Vec<(usize, u64, Subset)>,
    locality_rr: Mutex<Vec<i64>>,
}

/// A cluster's hosts by priority and locality, with health applied.
#[derive(Debug)]
pub struct HostSet {
    /// Every host of every priority.
    pub hosts: Vec<Host>,
    levels: Vec<Level>,
    /// Cumulative load per level in percent (the last is 100); empty when
    /// there is no host at all.
    cumulative_load: Vec<u32>,
    /// Hosts ejected by outlier detection when it was built.
    pub ejected: usize,
}

impl HostSet {
    /// Arrange `assignment`'s endpoints; `hosts` are its endpoints as the
    /// balancers see them (same order), `ejected` per host.
    pub fn build(
        assignment: &LoadAssignment,
        hosts: Vec<Host>,
        ejected: &[bool],
        lb: &LbConfig,
        old: Option<&HostSet>,
    ) -> HostSet {
        let healthy = |i: usize| assignment.endpoints[i].healthy && !ejected[i];
        let mut by_level: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, endpoint) in assignment.endpoints.iter().enumerate() {
            by_level.entry(endpoint.priority).or_default().push(i);
        }
        let factor = u64::from(assignment.overprovisioning_factor);
        let mut levels = Vec::new();
        let mut health = Vec::new();
        for (number, members) in by_level {
            let healthy_members: Vec<usize> =
                members.iter().copied().filter(|&i| healthy(i)).collect();
            let total = members.len() as u64;
            health.push((factor * healthy_members.len() as u64 / total).min(100) as u32);
            let healthy_percent = healthy_members.len() as f64 * 100.0 / total as f64;
            let mut localities = Vec::new();
            if lb.locality_weighted {
                let mut by_locality: BTreeMap<usize, (Vec<usize>, usize)> = BTreeMap::new();
                for &i in &members {
                    let entry = by_locality
                        .entry(assignment.endpoints[i].locality)
                        .or_default();
                    entry.1 += 1;
                    if healthy(i) {
                        entry.0.push(i);
                    }
                }
                for (locality, (members, total)) in by_locality {
                    let weight = assignment
                        .localities
                        .get(locality)
                        .map_or(0, |l| u64::from(l.weight));
                    let availability = (factor * members.len() as u64 / total as u64).min(100);
                    let effective = weight * availability;
                    if effective > 0 {
                        localities.push((locality, effective, Subset::new(&hosts, members)));
                    }
                }
            }
            levels.push(Level {
                number,
                healthy: Subset::new(&hosts, healthy_members),
                all: Subset::new(&hosts, members),
                // Decided below, once the total health is known.
                panic: healthy_percent < lb.healthy_panic_threshold,
                locality_rr: Mutex::new(vec![0; localities.len()]),
                localities,
            });
        }
        let normalized: u32 = health.iter().sum::<u32>().min(100);
        let mut loads = vec![0u32; levels.len()];
        if !levels.is_empty() {
            if let Some(normalized) = std::num::NonZeroU32::new(normalized) {
                let mut remaining = 100u32;
                for (load, h) in loads.iter_mut().zip(&health) {
                    *load = (h * 100 / normalized).min(remaining);
                    remaining -= *load;
                }
                if let Some(first) = health.iter().position(|h| *h > 0) {
                    loads[first] += remaining;
                }
            } else {
                loads[0] = 100;
            }
        }
        for level in &mut levels {
            // Panic only matters when the priorities together are short of
            // healthy hosts, and never with a threshold of 0.
            level.panic &= normalized < 100 && lb.healthy_panic_threshold > 0.0;
        }
        let mut total = 0;
        let cumulative_load = loads
            .iter()
            .map(|l| {
                total += l;
                total
            })
            .collect();
        let set = HostSet {
            levels,
            cumulative_load,
            ejected: ejected.iter().filter(|e| **e).count(),
            hosts,
        };
        if let Some(old) = old {
            set.continue_from(old);
        }
        set
    }

    fn continue_from(&self, old: &HostSet) {
        for level in &self.levels {
            let Some(before) = old.levels.iter().find(|l| l.number == level.number) else {
                continue;
            };
            level
                .healthy
                .continue_from(&before.healthy, &old.hosts, &self.hosts);
            level
                .all
                .continue_from(&before.all, &old.hosts, &self.hosts);
            for (locality, _, subset) in &level.localities {
                if let Some((_, _, was)) = before.localities.iter().find(|(l, _, _)| l == locality)
                {
                    subset.continue_from(was, &old.hosts, &self.hosts);
                }
            }
        }
    }

    /// The subset a request goes to: its priority by the priority loads
    /// (chosen with the hash key when there is one, so consistent hashing
    /// stays consistent), then all hosts in panic, else a locality by
    /// weight (locality-weighted), else the priority's healthy hosts.
    pub fn select(&self, hash: Option<u64>) -> Option<&Subset> {
        if self.cumulative_load.is_empty() {
            return None;
        }
        let index = if self.levels.len() == 1 {
            0
        } else {
            let point = match hash {
                Some(h) => (h % 100) as u32,
                None => rand::rng().random_range(0..100),
            };
            self.cumulative_load
                .iter()
                .position(|c| *c > point)
                .unwrap_or(0)
        };
        let level = &self.levels[index];
        if level.panic {
            return Some(&level.all);
        }
        if !level.localities.is_empty() {
            return Some(&level.localities[locality_round_robin(level)].2);
        }
        Some(&level.healthy)
    }

    /// Per priority level (ascending), its load in percent and whether it is
    /// in panic, for tests and the admin page.
    pub fn loads(&self) -> Vec<(u32, u32, bool)> {
        let mut previous = 0;
        self.levels
            .iter()
            .zip(&self.cumulative_load)
            .map(|(level, c)| {
                let load = c - previous;
                previous = *c;
                (level.number, load, level.panic)
            })
            .collect()
    }
}

/// Smooth weighted round robin over a level's localities (Envoy uses an
/// EDF schedule; both give each locality its weight's share in order).
fn locality_round_robin(level: &Level) -> usize {
    let mut values = level.locality_rr.lock().unwrap_or_else(|p| p.into_inner());
    let mut total = 0i64;
    let mut best = 0;
    let mut best_value = i64::MIN;
    for (slot, (value, (_, weight, _))) in values.iter_mut().zip(&level.localities).enumerate() {
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

#[cfg(test)]
mod tests;

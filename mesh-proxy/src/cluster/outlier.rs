//! Outlier detection, the cluster stage's passive health check: the router
//! reports how each attempt ended ([`Outcome`]), consecutive failures eject
//! an endpoint at once, and sweeps every `interval` let ejected endpoints
//! back and apply success-rate and failure-percentage ejection, as Envoy
//! does. Ejected endpoints are unhealthy to every load balancer and to the
//! priority and panic arithmetic.
//!
//! Sweeps run lazily: the first pick or report after an interval boundary
//! runs the sweep of that boundary, as of the boundary's time, so a host
//! comes back at the first boundary after its ejection expired, exactly
//! when Envoy's timer would let it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::model::OutlierDetection;

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

impl Outcome {
    fn is_local_origin(self) -> bool {
        !matches!(self, Outcome::Status(_))
    }
}

/// A cluster's outlier state, keyed by endpoint address (so it survives
/// EDS updates that keep the endpoint).
#[derive(Debug)]
pub struct Detector {
    inner: Mutex<Inner>,
    /// Goes up whenever the set of ejected hosts changes, so cached host
    /// sets know to rebuild.
    generation: AtomicU64,
    /// The hot path's shortcut past the lock: the address of the config
    /// last synced (0: none) and when the next sweep is due (nanoseconds
    /// after `start`).
    config_at: AtomicUsize,
    next_sweep: AtomicU64,
    start: Instant,
}

#[derive(Debug)]
struct Inner {
    /// The cluster's current `outlier_detection`; `None`: off.
    config: Option<OutlierDetection>,
    start: Instant,
    /// Interval boundaries already swept.
    swept: u64,
    hosts: HashMap<SocketAddr, HostState>,
}

#[derive(Debug, Default)]
struct HostState {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    ejected_at: Option<Instant>,
    /// Envoy's ejection multiplier: up at each ejection, down at each sweep
    /// the host is not ejected.
    ejections: u32,
    /// Attempts and successes since the last sweep.
    total: u64,
    success: u64,
}

impl Default for Detector {
    fn default() -> Self {
        let start = Instant::now();
        Detector {
            inner: Mutex::new(Inner {
                config: None,
                start,
                swept: 0,
                hosts: HashMap::new(),
            }),
            generation: AtomicU64::new(0),
            config_at: AtomicUsize::new(0),
            next_sweep: AtomicU64::new(0),
            start,
        }
    }
}

impl Detector {
    /// The ejection generation (changes whenever the ejected set does).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether `address` is ejected now.
    pub fn is_ejected(&self, address: SocketAddr) -> bool {
        self.lock()
            .hosts
            .get(&address)
            .is_some_and(|h| h.ejected_at.is_some())
    }

    /// The ejected addresses among `hosts`.
    pub fn ejected_among(&self, hosts: &[SocketAddr]) -> Vec<bool> {
        let inner = self.lock();
        hosts
            .iter()
            .map(|a| inner.hosts.get(a).is_some_and(|h| h.ejected_at.is_some()))
            .collect()
    }

    /// Take the cluster's current config (from the snapshot the pick
    /// reads) and run the sweeps due by now. Turning detection off lets
    /// every ejected host back at once.
    pub fn sync(&self, config: Option<&OutlierDetection>) {
        // Same config as last time (by address: the snapshot's cluster),
        // and no sweep due: nothing to do, and no lock taken.
        let at = config.map_or(0, |c| std::ptr::from_ref(c) as usize);
        if at == self.config_at.load(Ordering::Acquire) {
            if at == 0 {
                return;
            }
            let elapsed = Instant::now()
                .saturating_duration_since(self.start)
                .as_nanos();
            if (elapsed as u64) < self.next_sweep.load(Ordering::Acquire) {
                return;
            }
        }
        let mut inner = self.lock();
        let mut changed = false;
        if inner.config.as_ref() != config {
            inner.config = config.cloned();
            if config.is_none() {
                changed = inner.hosts.values().any(|h| h.ejected_at.is_some());
                inner.hosts.clear();
            }
        }
        if let Some(config) = inner.config.clone() {
            changed |= inner.sweep(&config, Instant::now());
            let interval = config.interval.max(Duration::from_millis(1)).as_nanos() as u64;
            self.next_sweep.store(
                (inner.swept + 1).saturating_mul(interval),
                Ordering::Release,
            );
        }
        self.config_at.store(at, Ordering::Release);
        drop(inner);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Record `outcome` of an attempt on `address`, one of `total_hosts`
    /// endpoints; ejects it when a consecutive-failure count reaches its
    /// threshold and enforcement rolls it. Nothing without a config.
    pub fn report(&self, address: SocketAddr, outcome: Outcome, total_hosts: usize) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Some(config) = inner.config.clone() else {
            return;
        };
        let config = &config;
        let mut changed = inner.sweep(config, now);
        let ejected_now = inner
            .hosts
            .values()
            .filter(|h| h.ejected_at.is_some())
            .count();
        let host = inner.hosts.entry(address).or_default();
        host.total += 1;
        let failed = match outcome {
            Outcome::Status(status) => status >= 500,
            _ => true,
        };
        if !failed {
            host.success += 1;
        }
        let mut trip = None;
        if outcome.is_local_origin() && config.split_local_origin {
            host.consecutive_local += 1;
            if host.consecutive_local >= config.consecutive_local_origin_failure {
                trip = Some(config.enforcing_consecutive_local_origin_failure);
            }
        } else if failed {
            // Without the split, connect failures, resets and timeouts count
            // as 503-like gateway failures (Envoy's mapping).
            let gateway =
                matches!(outcome, Outcome::Status(502..=504)) || outcome.is_local_origin();
            host.consecutive_5xx += 1;
            if gateway {
                host.consecutive_gateway += 1;
            } else {
                host.consecutive_gateway = 0;
            }
            if host.consecutive_5xx >= config.consecutive_5xx {
                trip = Some(config.enforcing_consecutive_5xx);
            } else if gateway && host.consecutive_gateway >= config.consecutive_gateway_failure {
                trip = Some(config.enforcing_consecutive_gateway_failure);
            }
        } else {
            host.consecutive_5xx = 0;
            host.consecutive_gateway = 0;
            if !config.split_local_origin || !outcome.is_local_origin() {
                host.consecutive_local = 0;
            }
        }
        if let Some(enforcing) = trip {
            let allowed = may_eject(config, ejected_now, total_hosts);
            if host.ejected_at.is_none() && allowed && roll(enforcing) {
                host.ejected_at = Some(now);
                host.ejections += 1;
                host.consecutive_5xx = 0;
                host.consecutive_gateway = 0;
                host.consecutive_local = 0;
                changed = true;
                tracing::info!(%address, ejections = host.ejections, "outlier detection: ejected");
            } else if host.ejected_at.is_none() && !allowed {
                tracing::debug!(%address, "outlier detection: max_ejection_percent reached");
            }
        }
        drop(inner);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Forget hosts no longer in the cluster.
    pub fn retain(&self, keep: impl Fn(&SocketAddr) -> bool) {
        let mut inner = self.lock();
        let before = inner.hosts.len();
        inner.hosts.retain(|a, _| keep(a));
        if inner.hosts.len() != before {
            drop(inner);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Envoy's cap: eject only while fewer than `max_ejection_percent` of the
/// hosts are ejected, but one host is always ejectable.
fn may_eject(config: &OutlierDetection, ejected: usize, total: usize) -> bool {
    ejected == 0 || (total > 0 && ejected * 100 / total < config.max_ejection_percent as usize)
}

fn roll(percent: u32) -> bool {
    percent >= 100 || (percent > 0 && rand::rng().random_range(0..100) < percent)
}

impl Inner {
    /// Sweep every interval boundary passed since the last sweep, each as
    /// of its own time; returns whether the ejected set changed.
    fn sweep(&mut self, config: &OutlierDetection, now: Instant) -> bool {
        let interval = config.interval.max(Duration::from_millis(1));
        let due =
            (now.saturating_duration_since(self.start).as_nanos() / interval.as_nanos()) as u64;
        if due <= self.swept {
            return false;
        }
        let boundaries = due - self.swept;
        self.swept = due;
        let at = u32::try_from(due)
            .ok()
            .and_then(|n| interval.checked_mul(n))
            .map_or(now, |offset| self.start + offset);
        let mut changed = false;
        for host in self.hosts.values_mut() {
            match host.ejected_at {
                Some(ejected_at) => {
                    let multiplier = host.ejections.max(1);
                    let base = config.base_ejection_time.saturating_mul(multiplier);
                    let cap = config.max_ejection_time.max(config.base_ejection_time);
                    if at >= ejected_at + base.min(cap) {
                        host.ejected_at = None;
                        changed = true;
                    }
                }
                None => {
                    host.ejections = host
                        .ejections
                        .saturating_sub(u32::try_from(boundaries).unwrap_or(u32::MAX));
                }
            }
        }
        changed |= self.statistical_ejection(config, at);
        for host in self.hosts.values_mut() {
            host.total = 0;
            host.success = 0;
        }
        changed
    }

    /// Success-rate and failure-percentage ejection over the interval's
    /// counts.
    fn statistical_ejection(&mut self, config: &OutlierDetection, at: Instant) -> bool {
        let total_hosts = self.hosts.len();
        let sr = config.success_rate;
        let fp = config.failure_percentage;
        let mut candidates: Vec<SocketAddr> = Vec::new();
        if sr.enforcing > 0 {
            let rates: Vec<(SocketAddr, f64)> = self
                .hosts
                .iter()
                .filter(|(_, h)| h.ejected_at.is_none() && h.total >= u64::from(sr.request_volume))
                .map(|(a, h)| (*a, h.success as f64 * 100.0 / h.total as f64))
                .collect();
            if rates.len() >= sr.minimum_hosts as usize && !rates.is_empty() {
                let mean = rates.iter().map(|(_, r)| r).sum::<f64>() / rates.len() as f64;
                let variance =
                    rates.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64;
                let threshold = mean - variance.sqrt() * f64::from(sr.stdev_factor) / 1000.0;
                for (a, r) in rates {
                    if r < threshold && roll(sr.enforcing) {
                        candidates.push(a);
                    }
                }
            }
        }
        if fp.enforcing > 0 {
            let volume: Vec<(SocketAddr, f64)> = self
                .hosts
                .iter()
                .filter(|(_, h)| h.ejected_at.is_none() && h.total >= u64::from(fp.request_volume))
                .map(|(a, h)| (*a, (h.total - h.success) as f64 * 100.0 / h.total as f64))
                .collect();
            if volume.len() >= fp.minimum_hosts as usize {
                for (a, failed) in volume {
                    if failed >= f64::from(fp.threshold) && roll(fp.enforcing) {
                        candidates.push(a);
                    }
                }
            }
        }
        let mut changed = false;
        for address in candidates {
            let ejected = self
                .hosts
                .values()
                .filter(|h| h.ejected_at.is_some())
                .count();
            if !may_eject(config, ejected, total_hosts) {
                break;
            }
            if let Some(host) = self.hosts.get_mut(&address) {
                if host.ejected_at.is_none() {
                    host.ejected_at = Some(at);
                    host.ejections += 1;
                    changed = true;
                    tracing::info!(%address, "outlier detection: ejected by success rate / failure percentage");
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests;

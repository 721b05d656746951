//! The figures of a run, computed from what the load generators and
//! `/proc` report: latency percentiles, a load run's counts, proxy CPU per
//! request and per core, and the mesh-proxy / Envoy ratios.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds; `None` when nothing completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `sorted` (ascending).
    pub fn of_sorted(sorted: &[Duration]) -> Self {
        let at = |p| percentile(sorted, p).map(|d| d.as_secs_f64() * 1000.0);
        Self {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            p999: at(99.9),
        }
    }
}

/// Nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted`: the
/// smallest value with at least p% of the values at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // The epsilon keeps float error (99.9% of 1000 is 999.0000000000001)
    // from moving the rank up by one.
    let rank = (p / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What one load run did, from either load generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Responses with a 2xx status (TCP: echoes that came back whole).
    pub ok: u64,
    /// Other statuses and failed requests; requests cut off by the end of
    /// the run are not counted at all.
    pub errors: u64,
    /// Errors by kind (`status 503`, `connection reset`, ...).
    pub error_kinds: std::collections::BTreeMap<String, u64>,
    /// How long the load ran, seconds.
    pub wall_secs: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Latency of completed requests (at a fixed rate: from the scheduled
    /// send time, so a stall counts against every request it delays).
    pub latency_ms: Percentiles,
}

impl LoadResult {
    /// Requests that got an answer or an error.
    pub fn requests(&self) -> u64 {
        self.ok + self.errors
    }

    /// Whether most requests failed (or none were made): the run is broken.
    pub fn mostly_failed(&self) -> bool {
        self.ok == 0 || self.errors > self.ok
    }
}

/// CPU seconds the proxies used per 1,000 requests.
pub fn cpu_per_1k(cpu_secs: f64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu_secs * 1000.0 / requests as f64)
}

/// Requests per second per core the proxies kept busy: `rps / (cpu / wall)`.
pub fn rps_per_core(rps: f64, cpu_secs: f64, wall_secs: f64) -> Option<f64> {
    (cpu_secs > 0.0 && wall_secs > 0.0).then(|| rps / (cpu_secs / wall_secs))
}

/// The latency a pair adds over the direct path.
pub fn added(pair: Option<f64>, direct: Option<f64>) -> Option<f64> {
    Some(pair? - direct?)
}

/// `mesh / envoy`, when both are known and Envoy's is positive.
pub fn ratio(mesh: Option<f64>, envoy: Option<f64>) -> Option<f64> {
    let (m, e) = (mesh?, envoy?);
    (e > 0.0 && m.is_finite()).then(|| m / e)
}

/// A target on a ratio or figure, and whether a measured value meets it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Target {
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be at least this.
    AtLeast(f64),
}

impl Target {
    /// Whether `value` meets the target (`None` when there is no value).
    pub fn holds(self, value: Option<f64>) -> Option<bool> {
        let v = value?;
        Some(match self {
            Target::AtMost(t) => v <= t,
            Target::AtLeast(t) => v >= t,
        })
    }

    /// By how much `value` misses: the factor it is off the target by
    /// (1.6 means 60% over a maximum, or 1.6× below a minimum).
    pub fn miss_factor(self, value: f64) -> f64 {
        match self {
            Target::AtMost(t) => value / t,
            Target::AtLeast(t) => t / value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = ms(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(500)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(990)));
        assert_eq!(percentile(&sorted, 99.9), Some(Duration::from_millis(999)));
        assert_eq!(
            percentile(&sorted, 100.0),
            Some(Duration::from_millis(1000))
        );
        // Fewer values than 1/p: the tail percentiles are the maximum.
        let few = ms(&[1, 2, 3]);
        assert_eq!(percentile(&few, 99.9), Some(Duration::from_millis(3)));
        assert_eq!(percentile(&few, 50.0), Some(Duration::from_millis(2)));
        assert_eq!(percentile(&[], 50.0), None);
        let p = Percentiles::of_sorted(&ms(&[4]));
        assert_eq!((p.p50, p.p999), (Some(4.0), Some(4.0)));
    }

    #[test]
    fn cpu_and_core_figures() {
        assert_eq!(cpu_per_1k(2.0, 10_000), Some(0.2));
        assert_eq!(cpu_per_1k(2.0, 0), None);
        // 20k rps using half a core is 40k rps per core.
        assert_eq!(rps_per_core(20_000.0, 5.0, 10.0), Some(40_000.0));
        assert_eq!(rps_per_core(20_000.0, 0.0, 10.0), None);
    }

    #[test]
    fn ratios_need_both_sides_and_a_positive_envoy() {
        assert_eq!(added(Some(0.9), Some(0.4)), Some(0.5));
        assert_eq!(added(None, Some(0.4)), None);
        assert_eq!(ratio(Some(1.0), Some(4.0)), Some(0.25));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(1.0), Some(-0.1)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
    }

    #[test]
    fn targets_hold_and_miss() {
        assert_eq!(Target::AtMost(0.5).holds(Some(0.4)), Some(true));
        assert_eq!(Target::AtMost(0.5).holds(Some(0.8)), Some(false));
        assert_eq!(Target::AtLeast(2.0).holds(Some(1.0)), Some(false));
        assert_eq!(Target::AtLeast(2.0).holds(None), None);
        assert!((Target::AtMost(0.5).miss_factor(0.8) - 1.6).abs() < 1e-9);
        assert!((Target::AtLeast(2.0).miss_factor(1.25) - 1.6).abs() < 1e-9);
    }

    #[test]
    fn a_run_with_mostly_errors_is_broken() {
        let mut r = LoadResult {
            ok: 10,
            errors: 11,
            ..Default::default()
        };
        assert!(r.mostly_failed());
        r.errors = 10;
        assert!(!r.mostly_failed());
        assert!(LoadResult::default().mostly_failed());
        assert_eq!(r.requests(), 20);
    }
}

//! The figures of one harness run, as a table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

/// Latency percentiles over the proxies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples`.
    pub fn of(samples: impl IntoIterator<Item = Duration>) -> Percentiles {
        let mut v: Vec<f64> = samples.into_iter().map(|d| d.as_secs_f64() * 1e3).collect();
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// Responses, resources and bytes the proxies received in a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Resources {
    /// Responses by type (cds, eds, lds, rds).
    pub responses: BTreeMap<&'static str, u64>,
    /// Resources in them, by type.
    pub resources: BTreeMap<&'static str, u64>,
    /// Encoded bytes of all of them.
    pub bytes: u64,
}

/// The first full push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sync {
    /// Per proxy: from the start of the connect storm to its last ACK of
    /// the four types.
    pub latency: Percentiles,
    /// Until the last proxy was done.
    pub wall_ms: f64,
    /// Pilot CPU seconds spent.
    pub pilot_cpu_s: f64,
    /// Pilot RSS once every proxy was done.
    pub pilot_rss_mb: f64,
    /// What was sent.
    pub sent: Resources,
}

/// A change of one file, pushed to every proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Per proxy: from the file's rename to its ACK of the changed type
    /// (pilot's file watch, reload and debounce included).
    pub latency: Percentiles,
    /// Per proxy: from the start of the push (`/debug/pushz`) to its ACK.
    pub from_push: Percentiles,
    /// Until the last proxy ACKed.
    pub wall_ms: f64,
    /// Pilot CPU seconds spent, until things were quiet again.
    pub pilot_cpu_s: f64,
    /// What was sent, until things were quiet again.
    pub sent: Resources,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `sotw` (state of the world) or `delta`.
    pub protocol: &'static str,
    /// N.
    pub services: usize,
    /// M.
    pub proxies: usize,
    /// Size of the generated config.
    pub yaml_bytes: u64,
    /// Pilot's debounce, part of every change's latency.
    pub debounce_ms: u64,
    /// Pilot RSS with the config loaded, before any proxy.
    pub pilot_rss_loaded_mb: f64,
    /// Pilot's peak RSS over the run.
    pub pilot_rss_peak_mb: f64,
    /// Pilot CPU seconds over the run.
    pub pilot_cpu_total_s: f64,
    /// Every proxy connects and ACKs a full push.
    pub first_push: Sync,
    /// One VirtualService's weights change.
    pub route_change: Change,
    /// One endpoint's address changes.
    pub endpoint_change: Change,
}

fn sent(r: &Resources) -> String {
    let by_type: Vec<String> = r
        .responses
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    format!(
        "{} ({:.1} MB)",
        by_type.join(", "),
        r.bytes as f64 / (1024.0 * 1024.0)
    )
}

impl Report {
    /// The run as a markdown table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pilot scale: {} services ({:.1} MB of YAML), {} sidecars (REDIRECT, {} xDS), debounce {} ms",
            self.services,
            self.yaml_bytes as f64 / (1024.0 * 1024.0),
            self.proxies,
            self.protocol,
            self.debounce_ms
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| step | p50 ms | p99 ms | max ms | from push start: p50 / p99 ms | pilot CPU s | responses sent (bytes) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        let f = &self.first_push;
        let _ = writeln!(
            s,
            "| all connect, full push ACKed | {:.0} | {:.0} | {:.0} | – | {:.2} | {} |",
            f.latency.p50,
            f.latency.p99,
            f.latency.max,
            f.pilot_cpu_s,
            sent(&f.sent)
        );
        for (name, c) in [
            ("one route change ACKed", &self.route_change),
            ("one endpoint change ACKed", &self.endpoint_change),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.2} | {} |",
                c.latency.p50,
                c.latency.p99,
                c.latency.max,
                c.from_push.p50,
                c.from_push.p99,
                c.pilot_cpu_s,
                sent(&c.sent)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "pilot RSS: {:.0} MB loaded, {:.0} MB after the first push, {:.0} MB peak; CPU {:.1} s in all",
            self.pilot_rss_loaded_mb,
            self.first_push.pilot_rss_mb,
            self.pilot_rss_peak_mb,
            self.pilot_cpu_total_s
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(Duration::from_millis));
        assert_eq!((p.p50, p.p99, p.max), (50.0, 99.0, 100.0));
        let one = Percentiles::of([Duration::from_millis(7)]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of([]), Percentiles::default());
    }
}

//! A run's results: the JSON file (every figure) and the markdown printed
//! to stdout (a table per workload, then the mesh-proxy / Envoy ratios
//! against the targets).

use std::fmt::Write as _;

use serde::Serialize;

use super::measure::Measurement;
use super::stats::{self, Target};

/// The targets mesh-proxy is held to.
pub const ADDED_P99_TARGET: Target = Target::AtMost(0.5);
/// CPU seconds per 1,000 requests, mesh-proxy / Envoy.
pub const CPU_TARGET: Target = Target::AtMost(0.4);
/// Ceiling rps per proxy core, mesh-proxy / Envoy.
pub const PER_CORE_TARGET: Target = Target::AtLeast(2.0);
/// Idle RSS of one mesh-proxy, MB.
pub const RSS_TARGET_MB: Target = Target::AtMost(10.0);

const MB: f64 = 1024.0 * 1024.0;

/// Idle RSS of one proxy, read after it became ready and before any load.
#[derive(Debug, Clone, Serialize)]
pub struct IdleRss {
    /// Proxy name.
    pub name: String,
    /// Bytes.
    pub rss: u64,
}

/// mesh-proxy against Envoy on one workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    /// Workload name.
    pub workload: &'static str,
    /// Only server sidecars were on the paths (TCP).
    pub server_side_only: bool,
    /// p99 added over direct at the fixed rate, ms: (mesh-proxy, Envoy).
    pub added_p99_ms: (Option<f64>, Option<f64>),
    /// Their ratio.
    pub added_p99_ratio: Option<f64>,
    /// Proxy CPU seconds per 1,000 requests at the fixed rate.
    pub cpu_per_1k: (Option<f64>, Option<f64>),
    /// Their ratio.
    pub cpu_per_1k_ratio: Option<f64>,
    /// Closed-loop rps per proxy core.
    pub rps_per_core: (Option<f64>, Option<f64>),
    /// Their ratio.
    pub rps_per_core_ratio: Option<f64>,
    /// RSS after the closed-loop load, MB per proxy (mean over the path's proxies).
    pub rss_loaded_mb: (Option<f64>, Option<f64>),
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Unix time the run started.
    pub unix_time: u64,
    /// `git rev-parse --short HEAD`, when known.
    pub git_rev: Option<String>,
    /// Seconds per measurement.
    pub duration_secs: f64,
    /// The fixed rate.
    pub rate: u32,
    /// Connections in both modes.
    pub connections: u32,
    /// A smoke run (short, two workloads).
    pub smoke: bool,
    /// `envoy --version`, if the Envoy pair ran.
    pub envoy_version: Option<String>,
    /// Things the reader must know (skipped paths, lost trailers).
    pub notes: Vec<String>,
    /// Each proxy's RSS before any load.
    pub idle_rss: Vec<IdleRss>,
    /// Every measurement.
    pub measurements: Vec<Measurement>,
    /// mesh-proxy / Envoy per workload.
    pub ratios: Vec<Ratios>,
}

impl Report {
    /// Fill in [`Report::ratios`] from the measurements.
    pub fn compute_ratios(&mut self, workloads: &[&'static str], rate_mode: &str, ceiling: &str) {
        self.ratios = workloads
            .iter()
            .map(|&w| ratios(&self.measurements, w, rate_mode, ceiling))
            .collect();
    }

    /// Idle RSS of each path's proxies, MB per proxy (mean).
    pub fn idle_rss_mb(&self, path: &str) -> Option<f64> {
        let of: Vec<f64> = self
            .idle_rss
            .iter()
            .filter(|r| r.name.starts_with(path))
            .map(|r| r.rss as f64 / MB)
            .collect();
        (!of.is_empty()).then(|| of.iter().sum::<f64>() / of.len() as f64)
    }

    /// Largest idle RSS of one of the path's proxies, MB.
    pub fn idle_rss_max_mb(&self, path: &str) -> Option<f64> {
        self.idle_rss
            .iter()
            .filter(|r| r.name.starts_with(path))
            .map(|r| r.rss as f64 / MB)
            .reduce(f64::max)
    }
}

fn find<'a>(ms: &'a [Measurement], w: &str, path: &str, mode: &str) -> Option<&'a Measurement> {
    ms.iter()
        .find(|m| m.workload == w && m.path == path && m.mode == mode && !m.broken())
}

fn ratios(ms: &[Measurement], w: &'static str, rate_mode: &str, ceiling: &str) -> Ratios {
    let p99 = |path| find(ms, w, path, rate_mode)?.load.as_ref()?.latency_ms.p99;
    let direct = p99("direct");
    let added = |path| stats::added(p99(path), direct);
    let cpu = |path| find(ms, w, path, rate_mode)?.cpu_secs_per_1k;
    let per_core = |path| find(ms, w, path, ceiling)?.rps_per_proxy_core;
    let rss = |path| {
        let m = find(ms, w, path, ceiling)?;
        let n = m.proxies.len();
        (n > 0).then(|| m.proxies.iter().map(|p| p.rss_after as f64).sum::<f64>() / n as f64 / MB)
    };
    let both = |f: &dyn Fn(&'static str) -> Option<f64>| (f("mesh-proxy"), f("envoy"));
    let added_p99_ms = both(&added);
    let cpu_per_1k = both(&cpu);
    let rps_per_core = both(&per_core);
    Ratios {
        workload: w,
        server_side_only: ms.iter().any(|m| m.workload == w && m.server_side_only),
        added_p99_ratio: stats::ratio(added_p99_ms.0, added_p99_ms.1),
        added_p99_ms,
        cpu_per_1k_ratio: stats::ratio(cpu_per_1k.0, cpu_per_1k.1),
        cpu_per_1k,
        rps_per_core_ratio: stats::ratio(rps_per_core.0, rps_per_core.1),
        rps_per_core,
        rss_loaded_mb: both(&rss),
    }
}

/// `1.234` or `-`.
fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The tables of one workload.
pub fn workload_table(report: &Report, workload: &str) -> String {
    let mut s = format!("### {workload}\n\n");
    s.push_str(
        "| path | mode | ok | errors | rps | p50 ms | p90 ms | p99 ms | p99.9 ms \
         | proxy CPU-s / 1k req | rps / proxy core | proxies' RSS MB, before → after |\n",
    );
    s.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    let mut notes = Vec::new();
    for m in report
        .measurements
        .iter()
        .filter(|m| m.workload == workload)
    {
        let path = if m.server_side_only {
            format!("{} (server sidecar only)", m.path)
        } else {
            m.path.to_string()
        };
        let rss = if m.proxies.is_empty() {
            "-".to_string()
        } else {
            let mb = |f: fn(&super::measure::ProxyUse) -> u64| {
                m.proxies.iter().map(|p| f(p) as f64 / MB).sum::<f64>()
            };
            format!("{:.1} → {:.1}", mb(|p| p.rss_before), mb(|p| p.rss_after))
        };
        match &m.load {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "| {path} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {rss} |",
                    m.mode,
                    l.ok,
                    l.errors,
                    l.rps,
                    num(l.latency_ms.p50, 3),
                    num(l.latency_ms.p90, 3),
                    num(l.latency_ms.p99, 3),
                    num(l.latency_ms.p999, 3),
                    num(m.cpu_secs_per_1k, 3),
                    num(m.rps_per_proxy_core, 0),
                );
                if !l.error_kinds.is_empty() {
                    notes.push(format!("{} {}: errors {:?}", m.path, m.mode, l.error_kinds));
                }
            }
            None => {
                let _ = writeln!(s, "| {path} | {} | failed | | | | | | | | | |", m.mode);
            }
        }
        if let Some(f) = &m.failure {
            notes.push(format!("{} {}: {f}", m.path, m.mode));
        }
        if let Some(n) = &m.note {
            let line = format!("{}: {n}", m.path);
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    for n in notes {
        let _ = writeln!(s, "\n- {n}");
    }
    s
}

/// The ratio summary and the targets.
pub fn ratio_summary(report: &Report) -> String {
    let mut s = String::from("### mesh-proxy / Envoy\n\n");
    s.push_str(
        "| workload | added p99 @ rate, ms (mesh / envoy) | ratio | CPU-s / 1k @ rate \
         (mesh / envoy) | ratio | ceiling rps / core (mesh / envoy) | ratio | RSS MB / proxy \
         after ceiling (mesh / envoy) |\n|---|---|--:|---|--:|---|--:|---|\n",
    );
    for r in &report.ratios {
        let name = if r.server_side_only {
            format!("{} (server sidecar only)", r.workload)
        } else {
            r.workload.to_string()
        };
        let _ = writeln!(
            s,
            "| {name} | {} / {} | {} | {} / {} | {} | {} / {} | {} | {} / {} |",
            num(r.added_p99_ms.0, 3),
            num(r.added_p99_ms.1, 3),
            num(r.added_p99_ratio, 2),
            num(r.cpu_per_1k.0, 3),
            num(r.cpu_per_1k.1, 3),
            num(r.cpu_per_1k_ratio, 2),
            num(r.rps_per_core.0, 0),
            num(r.rps_per_core.1, 0),
            num(r.rps_per_core_ratio, 2),
            num(r.rss_loaded_mb.0, 1),
            num(r.rss_loaded_mb.1, 1),
        );
    }
    let mesh_idle = report.idle_rss_mb("mesh-proxy");
    let envoy_idle = report.idle_rss_mb("envoy");
    let _ = writeln!(
        s,
        "\nIdle RSS per proxy (mean over the pair): mesh-proxy {} MB, Envoy {} MB, ratio {}.",
        num(mesh_idle, 1),
        num(envoy_idle, 1),
        num(stats::ratio(mesh_idle, envoy_idle), 2)
    );
    s.push_str("\nTargets:\n\n");
    type Column = fn(&Ratios) -> Option<f64>;
    let lines: [(&str, Target, Column); 3] = [
        (
            "added p99 at the fixed rate ≤ 0.5× Envoy's",
            ADDED_P99_TARGET,
            |r| r.added_p99_ratio,
        ),
        ("CPU-s per 1k requests ≤ 0.4× Envoy's", CPU_TARGET, |r| {
            r.cpu_per_1k_ratio
        }),
        (
            "ceiling rps per proxy core ≥ 2× Envoy's",
            PER_CORE_TARGET,
            |r| r.rps_per_core_ratio,
        ),
    ];
    for (what, target, column) in lines {
        let values: Vec<_> = report
            .ratios
            .iter()
            .map(|r| (r.workload, column(r)))
            .collect();
        let _ = writeln!(s, "- {what}: {}", verdicts(target, &values));
    }
    let max_idle = report.idle_rss_max_mb("mesh-proxy");
    let _ = writeln!(
        s,
        "- mesh-proxy idle RSS ≤ 10 MB: {}",
        verdicts(RSS_TARGET_MB, &[("largest proxy", max_idle)])
    );
    s
}

/// `holds on a, b; misses on c (ratio 0.71, 1.4× off)`.
fn verdicts(target: Target, values: &[(&str, Option<f64>)]) -> String {
    let mut held = Vec::new();
    let mut missed = Vec::new();
    let mut unknown = Vec::new();
    for &(name, v) in values {
        match (target.holds(v), v) {
            (Some(true), Some(v)) => held.push(format!("{name} ({v:.2})")),
            (Some(false), Some(v)) => missed.push(format!(
                "{name} ({v:.2}, {:.2}× off)",
                target.miss_factor(v)
            )),
            _ => unknown.push(name.to_string()),
        }
    }
    let mut parts = Vec::new();
    if !held.is_empty() {
        parts.push(format!("holds on {}", held.join(", ")));
    }
    if !missed.is_empty() {
        parts.push(format!("MISSES on {}", missed.join(", ")));
    }
    if !unknown.is_empty() {
        parts.push(format!("not measured for {}", unknown.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::measure::ProxyUse;
    use crate::dataplane::stats::{LoadResult, Percentiles};

    fn m(path: &'static str, mode: &str, p99: f64, cpu: f64, per_core: f64) -> Measurement {
        Measurement {
            workload: "http1-1k",
            path,
            mode: mode.into(),
            server_side_only: false,
            load: Some(LoadResult {
                ok: 1000,
                latency_ms: Percentiles {
                    p99: Some(p99),
                    ..Default::default()
                },
                ..Default::default()
            }),
            failure: None,
            note: None,
            proxies: vec![ProxyUse {
                name: format!("{path}-client"),
                cpu_secs: 1.0,
                rss_before: 0,
                rss_after: 4 * 1024 * 1024,
            }],
            cpu_secs_per_1k: Some(cpu),
            rps_per_proxy_core: Some(per_core),
            window_secs: 1.0,
        }
    }

    #[test]
    fn ratios_compare_added_latency_and_cost_per_request() {
        let ms = vec![
            m("direct", "rate-1000", 0.2, 0.0, 0.0),
            m("mesh-proxy", "rate-1000", 0.5, 0.1, 0.0),
            m("envoy", "rate-1000", 0.8, 0.4, 0.0),
            m("mesh-proxy", "ceiling-c32", 9.0, 0.1, 30_000.0),
            m("envoy", "ceiling-c32", 9.0, 0.1, 10_000.0),
        ];
        let r = ratios(&ms, "http1-1k", "rate-1000", "ceiling-c32");
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        // mesh-proxy adds 0.3 ms, Envoy 0.6 ms.
        assert!(close(r.added_p99_ratio, 0.5));
        assert!(close(r.cpu_per_1k_ratio, 0.25));
        assert!(close(r.rps_per_core_ratio, 3.0));
        assert!(close(r.rss_loaded_mb.0, 4.0));
    }

    #[test]
    fn a_broken_measurement_gives_no_ratio() {
        let mut envoy = m("envoy", "rate-1000", 0.8, 0.4, 0.0);
        envoy.failure = Some("envoy exited".into());
        let ms = vec![
            m("direct", "rate-1000", 0.2, 0.0, 0.0),
            m("mesh-proxy", "rate-1000", 0.5, 0.1, 0.0),
            envoy,
        ];
        let r = ratios(&ms, "http1-1k", "rate-1000", "ceiling-c32");
        assert_eq!(r.added_p99_ratio, None);
        assert_eq!(r.cpu_per_1k_ratio, None);
        assert!(r.added_p99_ms.0.is_some());
    }

    #[test]
    fn verdicts_name_misses_and_by_how_much() {
        let v = verdicts(
            ADDED_P99_TARGET,
            &[("a", Some(0.4)), ("b", Some(0.75)), ("c", None)],
        );
        assert_eq!(
            v,
            "holds on a (0.40); MISSES on b (0.75, 1.50× off); not measured for c"
        );
    }
}

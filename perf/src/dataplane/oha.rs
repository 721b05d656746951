//! The HTTP load generator: `oha` (1.16) runs as a child pinned to CPU 0,
//! and its `--output-format json` report becomes a [`LoadResult`].
//!
//! A request to a pair goes to `http://bench-TAG:PORT/...` with
//! `--connect-to` pointing that authority at the client sidecar's HTTP
//! proxy port: the request carries the service's Host / `:authority`, which
//! the `http_proxy` route config matches, as an app's would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use super::stats::{LoadResult, Percentiles};

/// oha's error for requests cut off by `-z`: not the server's fault.
const DEADLINE_ERROR: &str = "aborted due to deadline";

/// How hard to push.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A constant rate (requests per second), latency measured from each
    /// request's scheduled time.
    Rate { rps: u32, connections: u32 },
    /// Closed loop: each connection sends its next request as soon as the
    /// last one is answered.
    Ceiling { connections: u32 },
}

/// One oha run.
#[derive(Debug, Clone)]
pub struct OhaRun {
    /// Target URL (its authority is the Host / `:authority`).
    pub url: String,
    /// Connect `url`'s authority to this address instead (`--connect-to`).
    pub connect_to: Option<SocketAddr>,
    /// h2c instead of HTTP/1.1.
    pub http2: bool,
    /// `POST` with this body file instead of `GET`.
    pub post_body: Option<PathBuf>,
    /// Extra headers.
    pub headers: Vec<String>,
    /// Rate or ceiling.
    pub mode: Mode,
    /// How long.
    pub duration: Duration,
}

impl OhaRun {
    /// oha's arguments for this run.
    pub fn args(&self) -> anyhow::Result<Vec<String>> {
        let mut a: Vec<String> = vec![
            "--no-tui".into(),
            "--output-format".into(),
            "json".into(),
            "--worker-threads".into(),
            "1".into(),
            "-z".into(),
            format!("{}ms", self.duration.as_millis()),
            // Bounds every request, so a stuck path cannot hang the run.
            "-t".into(),
            "5s".into(),
        ];
        match self.mode {
            Mode::Rate { rps, connections } => a.extend([
                "-q".into(),
                rps.to_string(),
                "--latency-correction".into(),
                "-c".into(),
                connections.to_string(),
            ]),
            Mode::Ceiling { connections } => a.extend(["-c".into(), connections.to_string()]),
        }
        if self.http2 {
            a.push("--http2".into());
        }
        if let Some(body) = &self.post_body {
            a.extend(["-m".into(), "POST".into(), "-D".into()]);
            a.push(body.to_string_lossy().into_owned());
        }
        for h in &self.headers {
            a.extend(["-H".into(), h.clone()]);
        }
        if let Some(to) = self.connect_to {
            let uri: http::Uri = self.url.parse().context("oha URL")?;
            let host = uri.host().context("oha URL has no host")?;
            let port = uri.port_u16().unwrap_or(80);
            a.extend([
                "--connect-to".into(),
                format!("{host}:{port}:{}:{}", to.ip(), to.port()),
            ]);
        }
        a.push(self.url.clone());
        Ok(a)
    }
}

/// The parts of oha's JSON report a run needs.
#[derive(Debug, Deserialize)]
struct Report {
    summary: Summary,
    #[serde(rename = "latencyPercentiles")]
    latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(rename = "statusCodeDistribution")]
    status_code_distribution: BTreeMap<String, u64>,
    #[serde(rename = "errorDistribution")]
    error_distribution: BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
struct Summary {
    /// Wall time of the run, seconds.
    total: f64,
}

/// Turn oha's JSON report into a [`LoadResult`]. oha's percentiles are in
/// seconds over every completed request (any status); non-2xx statuses and
/// failed requests count as errors, requests cut off by `-z` as nothing.
pub fn parse_report(json: &str) -> anyhow::Result<LoadResult> {
    let report: Report = serde_json::from_str(json).context("oha JSON report")?;
    let mut ok = 0;
    let mut error_kinds = BTreeMap::new();
    for (code, n) in &report.status_code_distribution {
        if code.starts_with('2') {
            ok += n;
        } else {
            *error_kinds.entry(format!("status {code}")).or_insert(0) += n;
        }
    }
    for (kind, n) in &report.error_distribution {
        if kind != DEADLINE_ERROR {
            *error_kinds.entry(kind.clone()).or_insert(0) += n;
        }
    }
    let ms = |key: &str| {
        report
            .latency_percentiles
            .get(key)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
            .map(|s| s * 1000.0)
    };
    let wall = report.summary.total;
    Ok(LoadResult {
        ok,
        errors: error_kinds.values().sum(),
        error_kinds,
        wall_secs: wall,
        rps: if wall > 0.0 { ok as f64 / wall } else { 0.0 },
        latency_ms: Percentiles {
            p50: ms("p50"),
            p90: ms("p90"),
            p99: ms("p99"),
            p999: ms("p99.9"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real `oha --output-format json` report (1.16).
    const REPORT: &str = r#"{
      "summary": {"successRate": 1.0, "total": 2.0005, "slowest": 0.0041,
                  "fastest": 0.0001, "average": 0.0003, "requestsPerSec": 999.7,
                  "totalData": 2048000, "sizePerRequest": 1024, "sizePerSec": 1023744.0},
      "responseTimeHistogram": {"0.0001": 1500, "0.0041": 500},
      "latencyPercentiles": {"p10": 0.0001, "p25": 0.00015, "p50": 0.00021, "p75": 0.0003,
                             "p90": 0.00042, "p95": 0.0006, "p99": 0.0012, "p99.9": 0.0035,
                             "p99.99": 0.0041},
      "rps": {"mean": 1000.0, "stddev": 1.0, "max": 1002.0, "min": 998.0, "percentiles": {}},
      "statusCodeDistribution": {"200": 1990, "503": 6},
      "errorDistribution": {"aborted due to deadline": 12, "connection closed": 4}
    }"#;

    #[test]
    fn parses_counts_latencies_and_excludes_deadline_aborts() {
        let r = parse_report(REPORT).unwrap();
        assert_eq!(r.ok, 1990);
        assert_eq!(r.errors, 10);
        assert_eq!(r.error_kinds["status 503"], 6);
        assert_eq!(r.error_kinds["connection closed"], 4);
        assert!(!r.error_kinds.contains_key(DEADLINE_ERROR));
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(r.latency_ms.p50, 0.21));
        assert!(close(r.latency_ms.p90, 0.42));
        assert!(close(r.latency_ms.p99, 1.2));
        assert!(close(r.latency_ms.p999, 3.5));
        assert!((r.rps - 1990.0 / 2.0005).abs() < 1e-6);
    }

    #[test]
    fn an_empty_run_has_no_percentiles() {
        // oha writes NaN percentiles of no requests as null.
        let json = r#"{"summary": {"total": 1.0},
            "latencyPercentiles": {"p50": null, "p90": null, "p99": null, "p99.9": null},
            "statusCodeDistribution": {},
            "errorDistribution": {"connection refused": 3}}"#;
        let r = parse_report(json).unwrap();
        assert_eq!((r.ok, r.errors), (0, 3));
        assert_eq!(r.latency_ms, Percentiles::default());
        assert!(r.mostly_failed());
        assert!(parse_report("not json").is_err());
    }

    #[test]
    fn pair_runs_connect_the_service_authority_to_the_sidecar() {
        let run = OhaRun {
            url: "http://bench-mesh:9082/bench.Echo/Echo".into(),
            connect_to: Some("127.0.60.1:15080".parse().unwrap()),
            http2: true,
            post_body: Some("/tmp/body.bin".into()),
            headers: vec!["content-type: application/grpc".into()],
            mode: Mode::Rate {
                rps: 1000,
                connections: 32,
            },
            duration: Duration::from_secs(10),
        };
        let args = run.args().unwrap().join(" ");
        assert!(
            args.contains("--connect-to bench-mesh:9082:127.0.60.1:15080"),
            "{args}"
        );
        assert!(
            args.contains("-q 1000 --latency-correction -c 32"),
            "{args}"
        );
        assert!(args.contains("-z 10000ms"), "{args}");
        assert!(args.contains("-m POST -D /tmp/body.bin"), "{args}");
        assert!(
            args.ends_with(" http://bench-mesh:9082/bench.Echo/Echo"),
            "{args}"
        );
    }
}

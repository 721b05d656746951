//! What the traffic-management scenarios measure with, shared: a load run
//! from inside a pod ([`load_from`]), a pod's access log ([`access_log`]),
//! a share compared with its expected percentage ([`share_within`]), the
//! reason rule ([`explained`]), and [`Checks`], which runs several named
//! checks on one cluster and reports every outcome, so one cluster serves
//! several behaviours without one failure hiding the others.

use crate::access_log::{self, AccessLogEntry};
use crate::cluster::Cluster;
use crate::load::{LoadReport, LoadSpec};
use crate::E2eError;

/// Runs `mesh-e2e-tool load` inside `pod` and reads its report; an error
/// is an observation (for polls), not a verdict.
pub fn load_from(cluster: &dyn Cluster, pod: &str, spec: &LoadSpec) -> Result<LoadReport, String> {
    let tool = cluster.tool().map_err(|e| e.to_string())?;
    let args = spec.tool_args();
    let mut argv: Vec<&str> = vec![tool.as_str()];
    argv.extend(args.iter().map(String::as_str));
    let out = cluster.exec(pod, &argv).map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!("load from {pod} failed: {}", out.stderr.trim()));
    }
    serde_json::from_str(&out.stdout)
        .map_err(|e| format!("load report from {pod}: {e}: {:?}", out.stdout))
}

/// The access log entries `pod`'s proxy printed so far.
pub fn access_log(cluster: &dyn Cluster, pod: &str) -> Result<Vec<AccessLogEntry>, E2eError> {
    Ok(access_log::parse(&cluster.proxy_log(pod)?))
}

/// Ok when `count` of `total` is `expected` percent ± `tolerance` points.
pub fn share_within(
    what: &str,
    count: usize,
    total: usize,
    expected: f64,
    tolerance: f64,
) -> Result<(), String> {
    if total == 0 {
        return Err(format!("{what}: no requests measured"));
    }
    let pct = 100.0 * count as f64 / total as f64;
    if (pct - expected).abs() <= tolerance {
        Ok(())
    } else {
        Err(format!(
            "{what}: {count} of {total} = {pct:.1} %, expected {expected} % ± {tolerance}"
        ))
    }
}

/// Ok when every error the mesh itself made in `report` carries
/// `x-mesh-reason` (app errors carry `x-version`).
pub fn explained(report: &LoadReport) -> Result<(), String> {
    let bad = report.unexplained_errors();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mesh errors without x-mesh-reason: {bad:?} (all: {})",
            report.summary()
        ))
    }
}

/// Ok when `entries` has at least one line with `status`, flag `flag`,
/// and an explanation starting with `flag` and containing `mentions`.
pub fn logged(
    entries: &[AccessLogEntry],
    status: u16,
    flag: &str,
    mentions: &str,
) -> Result<(), String> {
    let flagged: Vec<&AccessLogEntry> = entries
        .iter()
        .filter(|e| e.status == status && e.has_flag(flag))
        .collect();
    if flagged.is_empty() {
        let tail: Vec<&str> = entries
            .iter()
            .rev()
            .take(5)
            .map(|e| e.raw.as_str())
            .collect();
        return Err(format!(
            "no access log line with status {status} and flag {flag} among {} lines; last: {tail:#?}",
            entries.len()
        ));
    }
    let says_why = |e: &&&AccessLogEntry| {
        let why = e.explanation();
        why.starts_with(flag) && why.contains(mentions)
    };
    match flagged.iter().find(says_why) {
        Some(_) => Ok(()),
        None => Err(format!(
            "access log lines with {flag} do not say why (`{flag} ...{mentions}...`): {:?}",
            flagged[0].raw
        )),
    }
}

/// Named checks run in turn on one cluster; every outcome is reported.
#[derive(Debug, Default)]
pub struct Checks {
    passed: Vec<String>,
    failed: Vec<(String, String)>,
}

impl Checks {
    /// No checks yet.
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Runs `check`, recording its outcome under `name`.
    pub fn run(&mut self, name: &str, check: impl FnOnce() -> Result<(), E2eError>) {
        eprintln!("check: {name} ...");
        match check() {
            Ok(()) => {
                eprintln!("check: {name}: ok");
                self.passed.push(name.to_string());
            }
            Err(e) => {
                eprintln!("check: {name}: FAILED");
                self.failed.push((name.to_string(), e.to_string()));
            }
        }
    }

    /// Ok when every check passed; else every failure, and what passed.
    pub fn finish(self) -> Result<(), E2eError> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let mut out = format!(
            "{} of {} checks failed (passed: {:?})",
            self.failed.len(),
            self.failed.len() + self.passed.len(),
            self.passed
        );
        for (name, why) in &self.failed {
            out.push_str(&format!("\n--- {name}:\n{why}"));
        }
        Err(E2eError::Invalid(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_checks_report_what_they_saw() {
        assert!(share_within("v2", 497, 1000, 50.0, 5.0).is_ok());
        let far = share_within("v2", 430, 1000, 50.0, 5.0).unwrap_err();
        assert!(far.contains("43.0 %"), "{far}");
        assert!(share_within("v2", 0, 0, 50.0, 5.0).is_err());
        let mut checks = Checks::new();
        checks.run("fine", || Ok(()));
        checks.run("broken", || Err(E2eError::Invalid("saw 3".into())));
        let err = checks.finish().unwrap_err().to_string();
        assert!(
            err.contains("1 of 2 checks failed") && err.contains("broken:\nsaw 3"),
            "{err}"
        );
    }

    #[test]
    fn logged_wants_the_flag_and_the_reason() {
        let line = r#"[2025-01-02T03:04:05.678Z] "GET /x HTTP/1.1" 500 FI fault_filter_abort - "-" 0 18 0 - "-" "t" "i" "ratings:9080" "-" - - 198.19.1.11:9080 198.18.1.12:4000 - default "FI fault abort: VirtualService default/ratings""#;
        let entries = access_log::parse(line);
        assert!(logged(&entries, 500, "FI", "VirtualService default/ratings").is_ok());
        assert!(logged(&entries, 500, "UO", "").is_err());
        assert!(logged(&entries, 500, "FI", "DestinationRule").is_err());
    }
}

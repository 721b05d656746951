//! What `mesh-e2e-tool load` measures and prints (JSON), and how a
//! scenario asks for it and reads it back: one type on both sides of the
//! pod boundary. A load is N requests over C connections-at-a-time to one
//! URL; every answer is counted in a group of equal (status, tracked
//! header values, body key), every failure by its message, so a scenario
//! can compute any share it needs (per version, per reason, per status).

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::http::HttpResponse;

/// What to send (the `load` command's arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSpec {
    /// URL of every request.
    pub url: String,
    /// Number of requests.
    pub requests: usize,
    /// How many are in flight at once.
    pub concurrency: usize,
    /// Request headers (`end-user: jason`, `user-agent: ...Firefox...`).
    pub headers: Vec<(String, String)>,
    /// Response headers whose values are counted (`x-version`, `x-mesh-reason`).
    pub count_headers: Vec<String>,
    /// A regex over the body; its first group (or the whole match) is the
    /// body key. Without it the body key is the body (first 200 chars).
    pub body_pattern: Option<String>,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl LoadSpec {
    /// `requests` GETs of `url`, one at a time, counting `x-version` and
    /// `x-mesh-reason`.
    pub fn new(url: &str, requests: usize) -> LoadSpec {
        LoadSpec {
            url: url.to_string(),
            requests,
            concurrency: 1,
            headers: Vec::new(),
            count_headers: vec!["x-version".into(), crate::REASON_HEADER.into()],
            body_pattern: None,
            timeout_ms: 10_000,
        }
    }

    /// Sets the concurrency.
    pub fn concurrency(mut self, c: usize) -> LoadSpec {
        self.concurrency = c;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> LoadSpec {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Counts a further response header.
    pub fn count_header(mut self, name: &str) -> LoadSpec {
        self.count_headers.push(name.into());
        self
    }

    /// Keys bodies by `pattern`'s first group.
    pub fn body_pattern(mut self, pattern: &str) -> LoadSpec {
        self.body_pattern = Some(pattern.into());
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout_ms(mut self, ms: u64) -> LoadSpec {
        self.timeout_ms = ms;
        self
    }

    /// The `mesh-e2e-tool` arguments that run this load.
    pub fn tool_args(&self) -> Vec<String> {
        let mut args = vec![
            "load".to_string(),
            self.url.clone(),
            "-n".into(),
            self.requests.to_string(),
            "-c".into(),
            self.concurrency.to_string(),
            "--timeout-ms".into(),
            self.timeout_ms.to_string(),
            // Within the drivers' 300 s limit on a command in a pod.
            "--max-seconds".into(),
            "240".into(),
        ];
        for (k, v) in &self.headers {
            args.extend(["-H".to_string(), format!("{k}: {v}")]);
        }
        for h in &self.count_headers {
            args.extend(["--count-header".to_string(), h.clone()]);
        }
        if let Some(p) = &self.body_pattern {
            args.extend(["--body-pattern".to_string(), p.clone()]);
        }
        args
    }
}

/// Answers that were alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Status code.
    pub status: u16,
    /// Values of the counted headers (`-` when absent).
    pub headers: BTreeMap<String, String>,
    /// The body key (see [`LoadSpec::body_pattern`]; `-` when the pattern
    /// did not match).
    pub body: String,
    /// How many answers.
    pub count: usize,
}

/// The result of a load, as `mesh-e2e-tool load` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Requests attempted.
    pub requests: usize,
    /// Answers, grouped.
    pub groups: Vec<Group>,
    /// Requests that got no answer, by error message.
    pub failures: BTreeMap<String, usize>,
    /// Fastest answer, in milliseconds.
    pub min_ms: u64,
    /// Slowest answer, in milliseconds.
    pub max_ms: u64,
}

impl LoadReport {
    /// Counts one answer.
    pub fn record(&mut self, key: Group, ms: u64) {
        self.requests += 1;
        self.min_ms = if self.answers() == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        let same = |g: &&mut Group| {
            g.status == key.status && g.headers == key.headers && g.body == key.body
        };
        match self.groups.iter_mut().find(same) {
            Some(g) => g.count += key.count,
            None => self.groups.push(key),
        }
    }

    /// Counts one request that got no answer.
    pub fn fail(&mut self, why: String) {
        self.requests += 1;
        *self.failures.entry(why).or_default() += 1;
    }

    /// Answers received.
    pub fn answers(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// Answers matching `pred`.
    pub fn count(&self, pred: impl Fn(&Group) -> bool) -> usize {
        self.groups
            .iter()
            .filter(|g| pred(g))
            .map(|g| g.count)
            .sum()
    }

    /// Answers per status.
    pub fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            *out.entry(g.status).or_default() += g.count;
        }
        out
    }

    /// Answers per value of a counted header.
    pub fn by_header(&self, name: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            let v = g.headers.get(name).cloned().unwrap_or_else(|| "-".into());
            *out.entry(v).or_default() += g.count;
        }
        out
    }

    /// Answers per body key.
    pub fn by_body(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            *out.entry(g.body.clone()).or_default() += g.count;
        }
        out
    }

    /// Percentage (0..=100) of all requests matching `pred`.
    pub fn percent(&self, pred: impl Fn(&Group) -> bool) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        100.0 * self.count(pred) as f64 / self.requests as f64
    }

    /// Error responses (status ≥ 400) whose `x-mesh-reason` is absent, when
    /// that header was counted: every response the mesh makes itself must
    /// say why, and apps in these scenarios never fail without a version
    /// header. Returns the groups that break the rule.
    pub fn unexplained_errors(&self) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|g| g.status >= 400)
            .filter(|g| g.headers.get("x-version").is_none_or(|v| v == "-"))
            .filter(|g| g.headers.get(crate::REASON_HEADER).is_none_or(|v| v == "-"))
            .collect()
    }

    /// A short summary for messages.
    pub fn summary(&self) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                let headers: Vec<String> = g
                    .headers
                    .iter()
                    .filter(|(_, v)| *v != "-")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let body: String = g.body.chars().take(80).collect();
                format!(
                    "{}× {} [{}] {body:?}",
                    g.count,
                    g.status,
                    headers.join(", ")
                )
            })
            .collect();
        format!(
            "{} requests: {}; failures {:?}; {}..{} ms",
            self.requests,
            groups.join("; "),
            self.failures,
            self.min_ms,
            self.max_ms
        )
    }
}

/// The group key of one response under `spec`.
pub fn group_of(r: &HttpResponse, count_headers: &[String], pattern: Option<&Regex>) -> Group {
    let headers = count_headers
        .iter()
        .map(|h| {
            let v = r.header(h).unwrap_or("-").to_string();
            (h.to_ascii_lowercase(), v)
        })
        .collect();
    let body = match pattern {
        Some(re) => re
            .captures(&r.body)
            .map(|c| {
                c.get(1)
                    .or_else(|| c.get(0))
                    .map_or("", |m| m.as_str())
                    .to_string()
            })
            .unwrap_or_else(|| "-".into()),
        None => r.body.chars().take(200).collect(),
    };
    Group {
        status: r.status,
        headers,
        body,
        count: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, version: Option<&str>, reason: Option<&str>, body: &str) -> HttpResponse {
        let mut headers = Vec::new();
        if let Some(v) = version {
            headers.push(("x-version".into(), v.into()));
        }
        if let Some(r) = reason {
            headers.push(("x-mesh-reason".into(), r.into()));
        }
        HttpResponse {
            status,
            headers,
            body: body.into(),
        }
    }

    #[test]
    fn groups_count_and_shares() {
        let spec = LoadSpec::new("http://x/", 4);
        let re = Regex::new(r#""version":"(v\d)""#).unwrap();
        let mut report = LoadReport::default();
        for (r, ms) in [
            (resp(200, Some("v1"), None, r#"{"version":"v2"}"#), 5),
            (resp(200, Some("v1"), None, r#"{"version":"v2"}"#), 3),
            (
                resp(
                    500,
                    None,
                    Some("FI fault abort: VirtualService default/ratings"),
                    "fault filter abort",
                ),
                9,
            ),
        ] {
            report.record(group_of(&r, &spec.count_headers, Some(&re)), ms);
        }
        report.fail("connect: refused".into());
        assert_eq!((report.requests, report.answers()), (4, 3));
        assert_eq!(report.groups.len(), 2);
        assert_eq!(report.by_body()["v2"], 2);
        assert_eq!(report.by_body()["-"], 1);
        assert_eq!(report.statuses()[&500], 1);
        assert_eq!(report.by_header("x-version")["-"], 1);
        assert_eq!(report.percent(|g| g.status == 200), 50.0);
        assert_eq!((report.min_ms, report.max_ms), (3, 9));
        assert!(report.unexplained_errors().is_empty());
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<LoadReport>(&json).unwrap(), report);
    }

    #[test]
    fn a_mesh_error_without_a_reason_is_reported() {
        let spec = LoadSpec::new("http://x/", 1);
        let mut report = LoadReport::default();
        report.record(
            group_of(
                &resp(503, None, None, "no healthy upstream"),
                &spec.count_headers,
                None,
            ),
            1,
        );
        report.record(
            group_of(
                &resp(503, Some("v1"), None, "failing"),
                &spec.count_headers,
                None,
            ),
            1,
        );
        assert_eq!(report.unexplained_errors().len(), 1);
        assert!(
            report.summary().contains("no healthy upstream"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn tool_args_carry_every_option() {
        let args = LoadSpec::new("http://r:9080/", 1000)
            .concurrency(20)
            .header("end-user", "jason")
            .body_pattern("v(\\d)")
            .tool_args();
        let joined = args.join(" ");
        assert!(
            joined.starts_with("load http://r:9080/ -n 1000 -c 20"),
            "{joined}"
        );
        assert!(joined.contains("-H end-user: jason"), "{joined}");
        assert!(joined.contains("--count-header x-mesh-reason"), "{joined}");
        assert!(joined.ends_with("--body-pattern v(\\d)"), "{joined}");
    }
}

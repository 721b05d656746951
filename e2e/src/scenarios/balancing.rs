//! Mirroring and consistent hashing, with Istio's YAML:
//!
//! - Istio's "Mirroring" task: all traffic to v1 and a copy of
//!   `mirrorPercentage` (50, then 100) of it to v2; the client sees only
//!   v1's answers, and v2's own counter of requests served is that share
//!   of the requests sent, ±5 points, every copy with the `-shadow` host;
//! - `consistentHash.httpHeaderName: x-user` over three endpoints: every
//!   request of one user lands on one endpoint, and the users spread.

use std::collections::BTreeSet;

use super::checks::{explained, load_from, share_within, Checks};
use super::resilience::server;
use super::{client, eventually, settle, with_logs, CONVERGE};
use crate::cluster::{Cluster, Sidecar};
use crate::load::LoadSpec;
use crate::E2eError;

const MIRROR: &str = include_str!("../../istio/mirror.yaml");
const HASH: &str = include_str!("../../istio/destination-rule-consistent-hash.yaml");

const MIRROR_PODS: [&str; 3] = ["httpbin-v1", "httpbin-v2", "client"];
/// Requests per measured share.
const MEASURED: usize = 1000;

/// 50 %, then 100 % of the traffic mirrored to v2.
pub fn mirroring(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    cluster.deploy(&server(cluster, "httpbin-v1", "httpbin", "v1", &[]))?;
    cluster.deploy(&server(cluster, "httpbin-v2", "httpbin", "v2", &[]))?;
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    let mut checks = Checks::new();
    for pct in [50, 100] {
        checks.run(&format!("mirrorPercentage {pct}"), || {
            mirrored(cluster, pct)
        });
    }
    checks
        .finish()
        .map_err(|e| with_logs(cluster, &MIRROR_PODS, e))
}

/// What `pod`'s server counted: requests served and by Host header.
fn counted(cluster: &dyn Cluster, pod: &str) -> Result<(u64, serde_json::Value), String> {
    let tool = cluster.tool().map_err(|e| e.to_string())?;
    let out = cluster
        .exec(pod, &[&tool, "fetch", "http://127.0.0.1:8000/__count"])
        .map_err(|e| e.to_string())?;
    let r = crate::http::parse_fetch_output(&out.stdout).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
    let served = v["served"]
        .as_u64()
        .ok_or(format!("no count: {}", r.body))?;
    Ok((served, v["hosts"].clone()))
}

/// Requests `pod` saw with a `-shadow` Host header.
fn shadowed(hosts: &serde_json::Value) -> u64 {
    hosts
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(host, _)| {
                    host.split(':')
                        .next()
                        .is_some_and(|h| h.ends_with("-shadow"))
                })
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn mirrored(cluster: &mut dyn Cluster, pct: u32) -> Result<(), E2eError> {
    cluster.apply(&MIRROR.replace("{{PERCENT}}", &pct.to_string()))?;
    let url = format!("{}/get", cluster.service_url("httpbin", "default", 8000));
    let spec = |n| LoadSpec::new(&url, n).concurrency(4);
    settle("only v1 answers", || {
        let r = load_from(cluster, "client", &spec(20))?;
        let v1 =
            r.count(|g| g.status == 200 && g.headers.get("x-version").is_some_and(|v| v == "v1"));
        (v1 == r.requests).then_some(()).ok_or(r.summary())
    })?;
    // Copies are fire and forget: let the last of the settling ones land.
    let quiet = |cluster: &dyn Cluster| -> Result<(u64, serde_json::Value), E2eError> {
        let mut last = counted(cluster, "httpbin-v2").map_err(E2eError::Invalid)?;
        eventually("the mirror's count settles", CONVERGE, || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let now = counted(cluster, "httpbin-v2")?;
            let same = now.0 == last.0;
            last = now.clone();
            same.then_some(now).ok_or("still counting".to_string())
        })
    };
    let (before, hosts_before) = quiet(cluster)?;
    let r = load_from(cluster, "client", &spec(MEASURED)).map_err(E2eError::Invalid)?;
    explained(&r).map_err(E2eError::Invalid)?;
    let primary = r.count(|g| {
        g.status == 200
            && g.body == "served by v1"
            && g.headers.get("x-version").is_some_and(|v| v == "v1")
    });
    if primary != r.requests {
        return Err(E2eError::Invalid(format!(
            "the client must see only v1's answers: {}",
            r.summary()
        )));
    }
    let (after, hosts_after) = quiet(cluster)?;
    let copies = after.saturating_sub(before);
    let shadow = shadowed(&hosts_after).saturating_sub(shadowed(&hosts_before));
    share_within(
        "mirrored to v2",
        copies as usize,
        r.requests,
        f64::from(pct),
        5.0,
    )
    .map_err(E2eError::Invalid)?;
    if shadow != copies {
        return Err(E2eError::Invalid(format!(
            "{copies} copies reached v2 but {shadow} with a `-shadow` host: {hosts_after}"
        )));
    }
    Ok(())
}

const HASH_PODS: [&str; 4] = ["sticky-a", "sticky-b", "sticky-c", "client"];

/// Same `x-user`, same endpoint; different users spread.
pub fn consistent_hash_by_header(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    for v in ["a", "b", "c"] {
        cluster.deploy(&server(cluster, &format!("sticky-{v}"), "sticky", v, &[]))?;
    }
    cluster.deploy(&client(cluster, Sidecar::MeshProxy))?;
    cluster.apply(HASH)?;
    check_hash(cluster).map_err(|e| with_logs(cluster, &HASH_PODS, e))
}

/// The one endpoint user `user` landed on over `n` requests.
fn endpoint_of(cluster: &dyn Cluster, user: &str, n: usize) -> Result<String, String> {
    let url = format!("{}/get", cluster.service_url("sticky", "default", 8000));
    let r = load_from(
        cluster,
        "client",
        &LoadSpec::new(&url, n).concurrency(2).header("x-user", user),
    )?;
    let versions = r.by_header("x-version");
    match (versions.len(), versions.keys().next()) {
        (1, Some(v)) if r.count(|g| g.status == 200) == n && v != "-" => Ok(v.clone()),
        _ => Err(format!("user {user}: {}", r.summary())),
    }
}

fn check_hash(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    // Round robin would give all three versions in 9 requests.
    settle("one user sticks to one endpoint", || {
        endpoint_of(cluster, "probe", 9).map(|_| ())
    })?;
    let mut landed = BTreeSet::new();
    for i in 1..=12 {
        let v = endpoint_of(cluster, &format!("user-{i}"), 20).map_err(E2eError::Invalid)?;
        landed.insert(v);
    }
    if landed.len() < 2 {
        return Err(E2eError::Invalid(format!(
            "12 users all landed on {landed:?}: the hash does not spread"
        )));
    }
    Ok(())
}

//! Per-object checks of a traffic policy's load balancing, with Istio's
//! rules: simple or consistent hash (one key, a named cookie, ring hash or
//! maglev with a prime table), locality settings (distribute weights,
//! failover between regions, localities that do not overlap), zone-aware
//! settings and warm-up.
//!
//! Part of [`super`]; `traffic_policy.rs` calls [`load_balancer`].

use std::collections::{BTreeMap, BTreeSet};

use super::values::duration;
use super::Ctx;
use crate::error::ErrorKind;
use crate::types::load_balancer::{
    ConsistentHashLb, LoadBalancerSettings, LocalityFailover, LocalityLbSetting, SimpleLb,
    ZoneAwareLbSetting,
};

/// Endpoint labels of the locality levels, which `failoverPriority` may not
/// name together with `failover`.
const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Checks the load balancer settings at `path`; `outlier` tells whether
/// the policy has outlier detection (failover needs it).
pub(super) fn load_balancer(
    ctx: &mut Ctx<'_>,
    path: &str,
    lb: &LoadBalancerSettings,
    outlier: bool,
) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        ctx.invalid(path, "only one of simple and consistentHash may be set");
    }
    if let Some(hash) = &lb.consistent_hash {
        consistent_hash(ctx, &format!("{path}.consistentHash"), hash);
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        ctx.invalid(
            path,
            "only one of localityLbSetting and zoneAwareLbSetting may be set",
        );
    }
    if let Some(locality) = &lb.locality_lb_setting {
        locality_lb(ctx, &format!("{path}.localityLbSetting"), locality, outlier);
    }
    if let Some(zone) = &lb.zone_aware_lb_setting {
        zone_aware_lb(ctx, &format!("{path}.zoneAwareLbSetting"), zone, outlier);
    }
    if let Some(warmup) = &lb.warmup {
        let p = format!("{path}.warmup");
        let slow_start = match lb.simple {
            Some(SimpleLb::Random | SimpleLb::Passthrough) => false,
            _ => lb.consistent_hash.is_none(),
        };
        if !slow_start {
            ctx.warn(
                ErrorKind::Ineffective,
                p.clone(),
                "warm-up only applies to ROUND_ROBIN and LEAST_REQUEST (the default): here it has no effect, as in Istio",
            );
        }
        match &warmup.duration {
            None => ctx.missing(format!("{p}.duration")),
            Some(d) => duration(ctx, &format!("{p}.duration"), Some(d)),
        }
        if let Some(m) = warmup
            .minimum_percent
            .filter(|m| !(0.0..=100.0).contains(m))
        {
            ctx.invalid(
                format!("{p}.minimumPercent"),
                format!("{m} is out of range 0..100"),
            );
        }
        if let Some(a) = warmup.aggression.filter(|a| *a <= 0.0) {
            ctx.invalid(
                format!("{p}.aggression"),
                format!("aggression {a} must be greater than 0"),
            );
        }
    }
}

fn consistent_hash(ctx: &mut Ctx<'_>, path: &str, hash: &ConsistentHashLb) {
    let keys = [
        hash.http_header_name.is_some(),
        hash.http_cookie.is_some(),
        hash.use_source_ip.is_some(),
        hash.http_query_parameter_name.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() > 1 {
        ctx.invalid(
            path,
            "only one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName may be set",
        );
    }
    if hash.ring_hash.is_some() && hash.maglev.is_some() {
        ctx.invalid(path, "only one of ringHash and maglev may be set");
    }
    if let Some(cookie) = &hash.http_cookie {
        let p = format!("{path}.httpCookie");
        if cookie.name.is_empty() {
            ctx.missing(format!("{p}.name"));
        }
        let mut names = BTreeSet::new();
        for (i, attr) in cookie.attributes.iter().enumerate() {
            let a = format!("{p}.attributes[{i}].name");
            if attr.name.is_empty() {
                ctx.missing(a);
            } else if !names.insert(attr.name.as_str()) {
                ctx.invalid(a, format!("cookie attribute {:?} is set twice", attr.name));
            }
        }
    }
    if let Some(maglev) = &hash.maglev {
        let p = format!("{path}.maglev.tableSize");
        let size = maglev.table_size;
        if size == 0 {
            ctx.missing(p);
        } else if size >= 5_000_011 {
            ctx.invalid(p, format!("tableSize {size} must be less than 5000011"));
        } else if !is_prime(size) {
            ctx.invalid(p, format!("tableSize {size} must be a prime number"));
        }
    }
}

/// Envoy's primality test for the maglev table size.
fn is_prime(x: u64) -> bool {
    if x < 4 {
        return x > 1;
    }
    if x % 2 == 0 {
        return false;
    }
    let mut factor = 3;
    while factor * factor <= x {
        if x % factor == 0 {
            return false;
        }
        factor += 2;
    }
    true
}

fn locality_lb(ctx: &mut Ctx<'_>, path: &str, lb: &LocalityLbSetting, outlier: bool) {
    if !lb.distribute.is_empty() && !lb.failover.is_empty() {
        ctx.invalid(path, "only one of distribute and failover may be set");
        return;
    }
    if !lb.failover.is_empty() {
        if let Some((i, label)) = lb
            .failover_priority
            .iter()
            .enumerate()
            .find(|(_, l)| TOPOLOGY_LABELS.contains(&l.as_str()))
        {
            ctx.invalid(
                format!("{path}.failoverPriority[{i}]"),
                format!("failover and the topology label {label} in failoverPriority cannot be combined"),
            );
            return;
        }
    }
    for (i, d) in lb.distribute.iter().enumerate() {
        let p = format!("{path}.distribute[{i}].to");
        if let Some((loc, w)) = d.to.iter().find(|(_, w)| !(1..=100).contains(*w)) {
            ctx.invalid(
                format!("{p}.{loc}"),
                format!("locality weight {w} is out of range 1..100"),
            );
            continue;
        }
        let total: u64 = d.to.values().map(|w| u64::from(*w)).sum();
        if total != 100 {
            ctx.invalid(p, format!("locality weights sum to {total}, not 100"));
            continue;
        }
        if let Err(err) = localities(d.to.keys().map(String::as_str)) {
            ctx.invalid(p, err);
        }
    }
    if let Err(err) = localities(lb.distribute.iter().map(|d| d.from.as_str())) {
        ctx.invalid(format!("{path}.distribute"), err);
    }
    failover(
        ctx,
        path,
        &lb.failover,
        !lb.failover_priority.is_empty(),
        outlier,
    );
}

fn zone_aware_lb(ctx: &mut Ctx<'_>, path: &str, lb: &ZoneAwareLbSetting, outlier: bool) {
    for (i, label) in lb.failover_priority.iter().enumerate() {
        if TOPOLOGY_LABELS.contains(&label.as_str()) {
            ctx.invalid(
                format!("{path}.failoverPriority[{i}]"),
                format!(
                    "{label}: zone-aware load balancing handles region, zone and subzone itself"
                ),
            );
        }
    }
    failover(
        ctx,
        path,
        &lb.failover,
        !lb.failover_priority.is_empty(),
        outlier,
    );
}

/// Failover entries name two different regions (no zone, no wildcard); it
/// only happens when outlier detection marks hosts unhealthy.
fn failover(
    ctx: &mut Ctx<'_>,
    path: &str,
    failover: &[LocalityFailover],
    priority: bool,
    outlier: bool,
) {
    if (!failover.is_empty() || priority) && !outlier {
        ctx.warn(
            ErrorKind::Ineffective,
            path,
            "failover needs outlier detection in the same traffic policy: without it no host is ever found unhealthy",
        );
    }
    for (i, f) in failover.iter().enumerate() {
        let p = format!("{path}.failover[{i}]");
        if f.from == f.to {
            ctx.invalid(p, "failover from and to must be different regions");
        } else if f.from.contains('/') || f.to.contains('/') {
            ctx.invalid(p, "failover names regions only (no zone or subzone)");
        } else if f.from.contains('*') || f.to.contains('*') {
            ctx.invalid(p, "failover regions cannot contain the wildcard *");
        }
    }
}

/// `region[/zone[/subzone]]` patterns, a `*` only as the whole last part,
/// none covering another (Istio's `validateLocalities`).
fn localities<'a>(list: impl Iterator<Item = &'a str>) -> Result<(), String> {
    type Zones = BTreeMap<String, BTreeSet<String>>;
    let mut regions: BTreeMap<String, Zones> = BTreeMap::new();
    let all = || BTreeSet::from(["*".to_string()]);
    for locality in list {
        let stars = locality.matches('*').count();
        if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
            return Err(format!(
                "locality {locality}: a * can only appear once, at the end"
            ));
        }
        let overlap = || Err(format!("locality {locality} overlaps one given before"));
        if regions.contains_key("*") {
            return overlap();
        }
        let parts: Vec<&str> = locality.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "locality {locality}: region, zone and subzone cannot be empty"
            ));
        }
        match parts.as_slice() {
            [region] => {
                if regions.contains_key(*region) {
                    return overlap();
                }
                regions.insert(region.to_string(), BTreeMap::from([("*".into(), all())]));
            }
            [region, zone] => {
                let zones = regions.entry(region.to_string()).or_default();
                if zones.contains_key("*") || zones.contains_key(*zone) {
                    return overlap();
                }
                zones.insert(zone.to_string(), all());
            }
            [region, zone, subzone] => {
                let zones = regions.entry(region.to_string()).or_default();
                if zones.contains_key("*") {
                    return overlap();
                }
                let subzones = zones.entry(zone.to_string()).or_default();
                if subzones.contains("*") || !subzones.insert(subzone.to_string()) {
                    return overlap();
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_prime, localities};

    #[test]
    fn maglev_table_sizes_are_prime() {
        assert!(is_prime(65537));
        assert!(is_prime(2) && is_prime(3));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(9));
    }

    #[test]
    fn localities_may_not_overlap() {
        assert_eq!(
            localities(["us-east/a", "us-east/b", "eu/*"].into_iter()),
            Ok(())
        );
        assert!(localities(["us-east", "us-east/a"].into_iter()).is_err());
        assert!(localities(["*", "us-east"].into_iter()).is_err());
        assert!(localities(["us-*/a"].into_iter()).is_err());
        assert!(localities(["us-east//a"].into_iter()).is_err());
        assert!(localities(["r/z/s", "r/z/s"].into_iter()).is_err());
    }
}

//! EDS: one `ClusterLoadAssignment` per EDS cluster (`outbound|PORT||HOST`
//! and each subset's), endpoints filtered by the subset's labels, grouped
//! by locality (`region/zone/subzone` of their WorkloadEntries), each with
//! its weight. Shared by every proxy of an [`EndpointView`]: the services
//! it sees and, where locality load balancing applies, its own locality.
//!
//! ```text
//!  Service + subset ─► groups by locality (weight = sum of endpoint weights)
//!                    └─ proxy locality + DestinationRule ─► failover priorities | distribute weights
//! ```
//!
//! Locality load balancing is Istio's: on by default (mesh
//! `localityLbSetting`, or the DestinationRule's), failover only when the
//! rule has `outlierDetection` (without it no endpoint would ever look
//! unhealthy): a group's priority is 0 in the proxy's region, zone and
//! subzone, 1 in its region and zone, 2 in its region, 3 elsewhere, and 4
//! for regions a `failover` entry sends elsewhere; priorities are then
//! renumbered without gaps. `distribute` instead sets each group's weight
//! for proxies of a matching source locality, and leaves groups it does not
//! name without endpoints.

use mesh_api::names;
use mesh_api::types::load_balancer::LocalityLbSetting;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::Locality;
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::filters::socket;
use super::scope::EndpointView;
use crate::push::PushContext;
use crate::registry::{labels_match, Discovery, Endpoint, Service};

/// Load assignments of every EDS cluster of the push that `view` sees.
pub fn load_assignments(ctx: &PushContext, view: &EndpointView) -> Vec<ClusterLoadAssignment> {
    let proxy = view.locality.as_deref().map(split);
    let mut out = Vec::new();
    let eds = ctx
        .registry
        .services
        .values()
        .filter(|s| s.discovery == Discovery::Eds);
    for svc in eds {
        let rule = ctx.destination_rule(&svc.hostname);
        for port in svc
            .ports
            .iter()
            .filter(|p| view.services.sees_port(ctx, svc, p.number))
        {
            let subsets = rule.map_or(&[][..], |r| r.subsets.as_slice());
            let whole = std::iter::once(("", None));
            for (subset, labels) in
                whole.chain(subsets.iter().map(|s| (s.name.as_str(), Some(&s.labels))))
            {
                let mut la = load_assignment(svc, port.number, subset, labels);
                if let Some(proxy) = &proxy {
                    let policy = rule.and_then(|r| r.policy(subset, port.number));
                    let lb = policy
                        .as_ref()
                        .and_then(|p| p.load_balancer.as_ref())
                        .and_then(|l| l.locality_lb_setting.as_ref())
                        .or(ctx.config.mesh.locality_lb_setting.as_ref());
                    let outlier = policy
                        .as_ref()
                        .is_some_and(|p| p.outlier_detection.is_some());
                    apply_locality(&mut la, proxy, lb, outlier);
                }
                out.push(la);
            }
        }
    }
    out
}

fn load_assignment(
    svc: &Service,
    port: u32,
    subset: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> ClusterLoadAssignment {
    let endpoints: Vec<&Endpoint> = svc
        .endpoints
        .iter()
        // EDS carries addresses, not names: Envoy rejects a host name here.
        .filter(|e| e.address.parse::<IpAddr>().is_ok())
        .filter(|e| labels.is_none_or(|l| labels_match(l, &e.labels)))
        .collect();
    ClusterLoadAssignment {
        cluster_name: names::outbound_cluster(port, subset, &svc.hostname),
        endpoints: groups(&endpoints, port),
        ..Default::default()
    }
}

/// Endpoints grouped by locality (in locality order), each group weighted
/// by its endpoints' weights, as Istio sends them.
pub fn groups(endpoints: &[&Endpoint], port: u32) -> Vec<LocalityLbEndpoints> {
    let mut by_locality: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
    for e in endpoints {
        by_locality.entry(e.locality.as_str()).or_default().push(e);
    }
    by_locality
        .into_iter()
        .filter_map(|(locality, eps)| {
            let lb_endpoints: Vec<_> = eps.iter().filter_map(|e| endpoint_for(e, port)).collect();
            if lb_endpoints.is_empty() {
                return None;
            }
            let weight: u32 = eps.iter().map(|e| e.weight.max(1)).sum();
            let (region, zone, sub_zone) = split(locality);
            Some(LocalityLbEndpoints {
                locality: (!locality.is_empty()).then(|| Locality {
                    region: region.to_string(),
                    zone: zone.to_string(),
                    sub_zone: sub_zone.to_string(),
                }),
                load_balancing_weight: Some(UInt32Value { value: weight }),
                lb_endpoints,
                ..Default::default()
            })
        })
        .collect()
}

/// `region/zone/subzone` (parts may be missing).
fn split(locality: &str) -> (&str, &str, &str) {
    let mut parts = locality.splitn(3, '/');
    (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    )
}

fn parts_of(l: Option<&Locality>) -> (&str, &str, &str) {
    l.map_or(("", "", ""), |l| {
        (l.region.as_str(), l.zone.as_str(), l.sub_zone.as_str())
    })
}

/// Istio's locality load balancing of one assignment for a proxy at
/// `proxy`: `distribute` weights, else (with outlier detection) failover
/// priorities. Nothing when the setting is disabled.
fn apply_locality(
    la: &mut ClusterLoadAssignment,
    proxy: &(&str, &str, &str),
    setting: Option<&LocalityLbSetting>,
    outlier: bool,
) {
    if setting.is_some_and(|s| s.enabled == Some(false)) {
        return;
    }
    if let Some(distribute) = setting.filter(|s| !s.distribute.is_empty()) {
        let from = distribute
            .distribute
            .iter()
            .find(|d| locality_matches(&d.from, *proxy));
        if let Some(d) = from {
            distribute_weights(la, &d.to);
        }
        return;
    }
    if !outlier {
        return;
    }
    let failover = setting.map_or(&[][..], |s| s.failover.as_slice());
    let mut used = BTreeSet::new();
    for group in &mut la.endpoints {
        let (region, zone, sub_zone) = parts_of(group.locality.as_ref());
        let mut priority = if region != proxy.0 {
            3
        } else if zone != proxy.1 {
            2
        } else if sub_zone != proxy.2 {
            1
        } else {
            0
        };
        if priority == 3 {
            if let Some(f) = failover.iter().find(|f| f.from == proxy.0) {
                if region != f.to {
                    priority = 4;
                }
            }
        }
        group.priority = priority;
        used.insert(priority);
    }
    // Envoy wants priorities from 0 without gaps.
    let renumber: BTreeMap<u32, u32> = used.into_iter().zip(0..).collect();
    for group in &mut la.endpoints {
        group.priority = renumber[&group.priority];
    }
}

/// `distribute.to`: each locality pattern's weight shared by the groups it
/// matches (in proportion to their own weights); unnamed groups get none.
fn distribute_weights(la: &mut ClusterLoadAssignment, to: &BTreeMap<String, u32>) {
    let mut claimed = vec![false; la.endpoints.len()];
    for (pattern, weight) in to {
        let matching: Vec<usize> = (0..la.endpoints.len())
            .filter(|i| {
                !claimed[*i]
                    && locality_matches(pattern, parts_of(la.endpoints[*i].locality.as_ref()))
            })
            .collect();
        let total: u32 = matching
            .iter()
            .map(|i| {
                la.endpoints[*i]
                    .load_balancing_weight
                    .map_or(1, |w| w.value)
            })
            .sum();
        for i in matching {
            claimed[i] = true;
            let own = la.endpoints[i].load_balancing_weight.map_or(1, |w| w.value);
            let share =
                (f64::from(own) * f64::from(*weight) / f64::from(total.max(1))).ceil() as u32;
            la.endpoints[i].load_balancing_weight =
                (share > 0).then_some(UInt32Value { value: share });
        }
    }
    for (group, claimed) in la.endpoints.iter_mut().zip(claimed) {
        if !claimed {
            group.lb_endpoints.clear();
        }
    }
}

/// Istio's locality pattern match: `region/zone/subzone`, each part may be
/// `*`, missing parts match anything.
fn locality_matches(pattern: &str, (region, zone, sub_zone): (&str, &str, &str)) -> bool {
    let mut parts = pattern.split('/');
    [region, zone, sub_zone]
        .iter()
        .all(|have| parts.next().is_none_or(|want| want == "*" || want == *have))
}

/// The LB endpoint of a registry endpoint for a service port, if the
/// endpoint serves that port.
pub fn endpoint_for(e: &Endpoint, service_port: u32) -> Option<LbEndpoint> {
    let port = *e.ports.get(&service_port)?;
    Some(lb_endpoint(&e.address, port, e.weight))
}

/// An LB endpoint at `address:port` with a weight.
pub fn lb_endpoint(address: &str, port: u32, weight: u32) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(socket(address, port)),
            ..Default::default()
        })),
        load_balancing_weight: Some(UInt32Value {
            value: weight.max(1),
        }),
        ..Default::default()
    }
}

/// A load assignment of one locality-less group of endpoints.
pub fn assignment(cluster_name: String, endpoints: Vec<LbEndpoint>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name,
        endpoints: if endpoints.is_empty() {
            Vec::new()
        } else {
            vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(locality: &str) -> LocalityLbEndpoints {
        let (region, zone, sub_zone) = split(locality);
        LocalityLbEndpoints {
            locality: Some(Locality {
                region: region.into(),
                zone: zone.into(),
                sub_zone: sub_zone.into(),
            }),
            load_balancing_weight: Some(UInt32Value { value: 1 }),
            lb_endpoints: vec![Default::default()],
            ..Default::default()
        }
    }

    fn assignment(localities: &[&str]) -> ClusterLoadAssignment {
        ClusterLoadAssignment {
            endpoints: localities.iter().map(|l| group(l)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn failover_priorities_follow_proximity_and_failover_entries() {
        let mut la = assignment(&[
            "us-east/a/1",
            "us-east/a/2",
            "us-east/b/1",
            "eu/x/1",
            "ap/y/1",
        ]);
        let setting: LocalityLbSetting =
            serde_yaml::from_str("failover: [{from: us-east, to: eu}]").unwrap();
        apply_locality(&mut la, &("us-east", "a", "1"), Some(&setting), true);
        let priorities: Vec<u32> = la.endpoints.iter().map(|g| g.priority).collect();
        // Same subzone 0, same zone 1, same region 2, the failover region 3,
        // any other region 4; renumbered without gaps.
        assert_eq!(priorities, [0, 1, 2, 3, 4]);
        // Without outlier detection: no failover.
        let mut plain = assignment(&["us-east/a/1", "eu/x/1"]);
        apply_locality(&mut plain, &("us-east", "a", "1"), None, false);
        assert!(plain.endpoints.iter().all(|g| g.priority == 0));
        // The same region only: priorities 0 and 1, no gap.
        let mut two = assignment(&["us-east/a/1", "eu/x/1"]);
        apply_locality(&mut two, &("us-east", "a", "1"), None, true);
        assert_eq!(two.endpoints[1].priority, 1);
    }

    #[test]
    fn distribute_weights_the_named_localities_only() {
        let mut la = assignment(&["us-east/a/1", "us-east/b/1", "eu/x/1"]);
        let setting: LocalityLbSetting = serde_yaml::from_str(
            "distribute: [{from: 'us-east/*', to: {'us-east/a/*': 80, 'us-east/b/*': 20}}]",
        )
        .unwrap();
        apply_locality(&mut la, &("us-east", "a", "1"), Some(&setting), false);
        let weights: Vec<Option<u32>> = la
            .endpoints
            .iter()
            .map(|g| g.load_balancing_weight.map(|w| w.value))
            .collect();
        assert_eq!(weights, [Some(80), Some(20), Some(1)]);
        assert!(la.endpoints[2].lb_endpoints.is_empty(), "eu is not named");
    }
}

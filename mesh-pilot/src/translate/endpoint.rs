//! EDS: one `ClusterLoadAssignment` per EDS cluster (`outbound|PORT||HOST`
//! and each subset's), endpoints filtered by the subset's labels, each with
//! its WorkloadEntry weight. The same for every proxy: shared mesh-wide.

use mesh_api::names;
use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::cluster::{assignment, endpoint_for};
use crate::push::PushContext;
use crate::registry::{labels_match, Discovery, Service};

/// Load assignments of every EDS cluster of the push (the outbound
/// clusters of services whose endpoints are pushed, with their subsets).
pub fn load_assignments(ctx: &PushContext) -> Vec<ClusterLoadAssignment> {
    let mut out = Vec::new();
    let eds = ctx.registry.services.values();
    for svc in eds.filter(|s| s.discovery == Discovery::Eds) {
        let subsets = ctx.subsets(&svc.hostname);
        for port in &svc.ports {
            out.push(load_assignment(svc, port.number, "", None));
            for s in subsets {
                out.push(load_assignment(svc, port.number, &s.name, Some(&s.labels)));
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
    let endpoints = svc
        .endpoints
        .iter()
        // EDS carries addresses, not names: Envoy rejects a host name here.
        .filter(|e| e.address.parse::<IpAddr>().is_ok())
        .filter(|e| labels.is_none_or(|l| labels_match(l, &e.labels)))
        .filter_map(|e| endpoint_for(e, port))
        .collect();
    assignment(
        names::outbound_cluster(port, subset, &svc.hostname),
        endpoints,
    )
}

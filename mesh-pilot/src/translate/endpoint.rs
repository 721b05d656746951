//! EDS: one `ClusterLoadAssignment` per EDS cluster, endpoints filtered by
//! the subset's labels, each with its WorkloadEntry weight.

use mesh_api::names;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::cluster::{assignment, endpoint_for, subsets};
use crate::registry::{labels_match, Registry};
use crate::source::ConfigSnapshot;

/// Load assignments for the EDS clusters among `clusters`.
pub fn load_assignments(
    clusters: &[Cluster],
    config: &ConfigSnapshot,
    registry: &Registry,
) -> Vec<ClusterLoadAssignment> {
    let eds = Some(cluster::ClusterDiscoveryType::Type(
        cluster::DiscoveryType::Eds as i32,
    ));
    clusters
        .iter()
        .filter(|c| c.cluster_discovery_type == eds)
        .filter_map(|c| load_assignment(&c.name, config, registry))
        .collect()
}

fn load_assignment(
    name: &str,
    config: &ConfigSnapshot,
    registry: &Registry,
) -> Option<ClusterLoadAssignment> {
    let (port, subset, host) = names::parse_outbound_cluster(name)?;
    let svc = registry.service(host)?;
    let subsets = subsets(config, host);
    let labels = if subset.is_empty() {
        None
    } else {
        Some(subsets.iter().find(|s| s.name == subset)?.labels)
    };
    let endpoints = svc
        .endpoints
        .iter()
        // EDS carries addresses, not names: Envoy rejects a host name here.
        .filter(|e| e.address.parse::<IpAddr>().is_ok())
        .filter(|e| labels.is_none_or(|l| labels_match(l, &e.labels)))
        .filter_map(|e| endpoint_for(e, port))
        .collect();
    Some(assignment(name.to_string(), endpoints))
}

//! `ClusterLoadAssignment` conversion (EDS, and the `load_assignment` of
//! STATIC and DNS clusters): every `LocalityLbEndpoints` group keeps its
//! priority, locality and weight, and every endpoint its health, since
//! unhealthy endpoints still count in their priority's total.

use envoy_types::pb::envoy::config::core::v3::{Address, HealthStatus};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};

use super::super::{host_port, socket_addr};
use crate::model::{
    DnsHost, Endpoint, LoadAssignment, LocalityLb, DEFAULT_OVERPROVISIONING_FACTOR,
};
use crate::xds::error::ConvertError;

impl TryFrom<&ClusterLoadAssignment> for LoadAssignment {
    type Error = ConvertError;

    fn try_from(la: &ClusterLoadAssignment) -> Result<Self, ConvertError> {
        if la.cluster_name.is_empty() {
            return Err(ConvertError::Missing("cluster_name"));
        }
        assignment(la)
    }
}

/// The assignment's endpoints, localities and policy.
pub(super) fn assignment(la: &ClusterLoadAssignment) -> Result<LoadAssignment, ConvertError> {
    let overprovisioning_factor = policy(la)?;
    let mut localities = Vec::with_capacity(la.endpoints.len());
    let mut endpoints = Vec::new();
    for (i, group) in la.endpoints.iter().enumerate() {
        let at = |j: usize| format!("endpoints[{i}].lb_endpoints[{j}]");
        localities.push(locality(group).map_err(|e| e.at(format!("endpoints[{i}]")))?);
        for (j, lbe) in group.lb_endpoints.iter().enumerate() {
            let address = socket_addr(endpoint_address(lbe).map_err(|e| e.at(at(j)))?)
                .map_err(|e| e.at(at(j)))?;
            endpoints.push(Endpoint {
                address,
                weight: weight(lbe).map_err(|e| e.at(at(j)))?,
                healthy: usable(lbe),
                priority: group.priority,
                locality: i,
            });
        }
    }
    if localities.is_empty() {
        localities.push(LocalityLb::default());
    }
    Ok(LoadAssignment {
        cluster_name: la.cluster_name.clone(),
        endpoints,
        localities,
        overprovisioning_factor,
    })
}

/// `policy`: the overprovisioning factor; drops and the rest are refused.
#[allow(deprecated)]
fn policy(la: &ClusterLoadAssignment) -> Result<u32, ConvertError> {
    let Some(policy) = &la.policy else {
        return Ok(DEFAULT_OVERPROVISIONING_FACTOR);
    };
    if !policy.drop_overloads.is_empty() {
        return Err(ConvertError::unsupported("policy.drop_overloads"));
    }
    if policy.weighted_priority_health {
        return Err(ConvertError::unsupported("policy.weighted_priority_health"));
    }
    match &policy.overprovisioning_factor {
        None => Ok(DEFAULT_OVERPROVISIONING_FACTOR),
        Some(f) if f.value > 0 => Ok(f.value),
        Some(_) => Err(ConvertError::invalid(
            "policy.overprovisioning_factor",
            "must be positive",
        )),
    }
}

fn locality(group: &LocalityLbEndpoints) -> Result<LocalityLb, ConvertError> {
    if group.lb_config.is_some() {
        return Err(ConvertError::unsupported("lb_config (leds)"));
    }
    if group.proximity.is_some() {
        return Err(ConvertError::unsupported("proximity"));
    }
    let l = group.locality.clone().unwrap_or_default();
    Ok(LocalityLb {
        region: l.region,
        zone: l.zone,
        sub_zone: l.sub_zone,
        weight: group.load_balancing_weight.as_ref().map_or(0, |w| w.value),
    })
}

/// Host names and ports of a DNS cluster, each with its group's priority
/// and locality; unhealthy entries are left out (a DNS host has no health
/// of its own).
pub(super) fn dns_hosts(
    la: &ClusterLoadAssignment,
) -> Result<(Vec<DnsHost>, Vec<LocalityLb>), ConvertError> {
    let mut hosts = Vec::new();
    let mut localities = Vec::new();
    for (i, group) in la.endpoints.iter().enumerate() {
        localities.push(locality(group).map_err(|e| e.at(format!("endpoints[{i}]")))?);
        for (j, lbe) in group.lb_endpoints.iter().enumerate() {
            let at = || format!("endpoints[{i}].lb_endpoints[{j}]");
            let addr = endpoint_address(lbe).map_err(|e| e.at(at()))?;
            let (host, port) = host_port(addr).map_err(|e| e.at(at()))?;
            hosts.push(DnsHost {
                host,
                port,
                weight: weight(lbe).map_err(|e| e.at(at()))?,
                priority: group.priority,
                locality: i,
            });
        }
    }
    if localities.is_empty() {
        localities.push(LocalityLb::default());
    }
    Ok((hosts, localities))
}

fn endpoint_address(lbe: &LbEndpoint) -> Result<Option<&Address>, ConvertError> {
    match &lbe.host_identifier {
        Some(HostIdentifier::Endpoint(e)) => {
            if !e.additional_addresses.is_empty() {
                return Err(ConvertError::unsupported("additional_addresses"));
            }
            if e.health_check_config.is_some() {
                return Err(ConvertError::unsupported("health_check_config"));
            }
            Ok(e.address.as_ref())
        }
        Some(HostIdentifier::EndpointName(n)) => {
            Err(ConvertError::unsupported(format!("endpoint_name {n:?}")))
        }
        None => Err(ConvertError::Missing("endpoint")),
    }
}

/// EDS health: UNHEALTHY, DRAINING and TIMEOUT take no traffic (UNKNOWN,
/// HEALTHY and DEGRADED do).
fn usable(lbe: &LbEndpoint) -> bool {
    !matches!(
        HealthStatus::try_from(lbe.health_status),
        Ok(HealthStatus::Unhealthy | HealthStatus::Draining | HealthStatus::Timeout)
    )
}

fn weight(lbe: &LbEndpoint) -> Result<u32, ConvertError> {
    match &lbe.load_balancing_weight {
        None => Ok(1),
        Some(w) if w.value >= 1 => Ok(w.value),
        Some(_) => Err(ConvertError::invalid(
            "load_balancing_weight",
            "must be at least 1",
        )),
    }
}

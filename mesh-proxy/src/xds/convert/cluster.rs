//! xDS conversion of CDS and EDS resources: `Cluster` (discovery type, load
//! balancing, timeouts, HTTP/2) and `ClusterLoadAssignment` (endpoints).

use std::net::IpAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy as XdsLbPolicy},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, LbEndpoint,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use prost::Name;

use super::{duration, host_port, socket_addr, unpack};
use crate::model::{Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment};
use crate::xds::error::ConvertError;

/// Envoy's connect timeout when a cluster sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl TryFrom<&XdsCluster> for Cluster {
    type Error = ConvertError;

    fn try_from(c: &XdsCluster) -> Result<Self, ConvertError> {
        if c.name.is_empty() {
            return Err(ConvertError::Missing("name"));
        }
        if let Some(ts) = &c.transport_socket {
            // Upstream TLS arrives with the mTLS issue.
            if ts.name != "envoy.transport_sockets.raw_buffer" {
                return Err(ConvertError::unsupported(format!(
                    "transport_socket {}",
                    ts.name
                )));
            }
        }
        let kind = match &c.cluster_discovery_type {
            None => DiscoveryType::Static,
            Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t)
                .map_err(|_| ConvertError::invalid("type", format!("unknown value {t}")))?,
            Some(ClusterDiscoveryType::ClusterType(custom)) => {
                return Err(ConvertError::unsupported(format!(
                    "cluster_type {}",
                    custom.name
                )))
            }
        };
        let discovery = match kind {
            DiscoveryType::Eds => {
                let service_name = c
                    .eds_cluster_config
                    .as_ref()
                    .map(|e| e.service_name.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| c.name.clone());
                Discovery::Eds { service_name }
            }
            DiscoveryType::Static => Discovery::Static(match &c.load_assignment {
                Some(la) => endpoints(la).map_err(|e| e.at("load_assignment"))?,
                None => Vec::new(),
            }),
            // LOGICAL_DNS uses only the first address Envoy resolves; resolving
            // them all (STRICT_DNS) still reaches the same host.
            DiscoveryType::StrictDns | DiscoveryType::LogicalDns => {
                let la = c
                    .load_assignment
                    .as_ref()
                    .ok_or(ConvertError::Missing("load_assignment"))?;
                Discovery::StrictDns(dns_hosts(la).map_err(|e| e.at("load_assignment"))?)
            }
            DiscoveryType::OriginalDst => Discovery::OriginalDst,
        };
        let lb_policy = match XdsLbPolicy::try_from(c.lb_policy) {
            Ok(XdsLbPolicy::RoundRobin) => LbPolicy::RoundRobin,
            Ok(XdsLbPolicy::Random) => LbPolicy::Random,
            Ok(XdsLbPolicy::LeastRequest) => LbPolicy::LeastRequest,
            // ORIGINAL_DST clusters pick their own host; the policy is moot.
            Ok(XdsLbPolicy::ClusterProvided) if kind == DiscoveryType::OriginalDst => {
                LbPolicy::RoundRobin
            }
            Ok(other) => {
                return Err(ConvertError::unsupported(format!(
                    "lb_policy {}",
                    other.as_str_name()
                )))
            }
            Err(_) => return Err(ConvertError::invalid("lb_policy", c.lb_policy.to_string())),
        };
        let connect_timeout = match &c.connect_timeout {
            Some(t) => duration(t).map_err(|e| e.at("connect_timeout"))?,
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        Ok(Cluster {
            name: c.name.clone(),
            discovery,
            lb_policy,
            connect_timeout,
            http2: http2(c)?,
            upstream_bind: upstream_bind(c).map_err(|e| e.at("upstream_bind_config"))?,
        })
    }
}

/// The source IP of `upstream_bind_config` (its port is left to the OS, as
/// Envoy does for port 0); `None` without one.
// Refuses the deprecated `additional_source_addresses` as well as their successor.
#[allow(deprecated)]
fn upstream_bind(c: &XdsCluster) -> Result<Option<IpAddr>, ConvertError> {
    let Some(bind) = &c.upstream_bind_config else {
        return Ok(None);
    };
    if !bind.additional_source_addresses.is_empty() || !bind.extra_source_addresses.is_empty() {
        return Err(ConvertError::unsupported("additional source addresses"));
    }
    let Some(source) = &bind.source_address else {
        return Err(ConvertError::Missing("source_address"));
    };
    let ip = source.address.parse().map_err(|_| {
        ConvertError::invalid(
            "source_address",
            format!("{:?} is not an IP address", source.address),
        )
    })?;
    Ok(Some(ip))
}

/// Whether the cluster asks for HTTP/2 to its upstreams: explicitly through
/// the `HttpProtocolOptions` extension (how Istio and our pilot say it), or
/// through the deprecated `http2_protocol_options` field.
#[allow(deprecated)]
fn http2(c: &XdsCluster) -> Result<bool, ConvertError> {
    if c.http2_protocol_options.is_some() {
        return Ok(true);
    }
    let key = HttpProtocolOptions::full_name();
    let Some(any) = c.typed_extension_protocol_options.get(&key) else {
        return Ok(false);
    };
    let opts: HttpProtocolOptions =
        unpack(any).map_err(|e| e.at(format!("typed_extension_protocol_options[{key}]")))?;
    Ok(matches!(
        opts.upstream_protocol_options,
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(ref e))
            if matches!(e.protocol_config, Some(ProtocolConfig::Http2ProtocolOptions(_)))
    ))
}

impl TryFrom<&ClusterLoadAssignment> for LoadAssignment {
    type Error = ConvertError;

    fn try_from(la: &ClusterLoadAssignment) -> Result<Self, ConvertError> {
        if la.cluster_name.is_empty() {
            return Err(ConvertError::Missing("cluster_name"));
        }
        Ok(LoadAssignment {
            cluster_name: la.cluster_name.clone(),
            endpoints: endpoints(la)?,
        })
    }
}

/// The usable endpoints of the highest-priority (lowest number) group;
/// lower priorities are Envoy's failover, which the proxy does not do yet.
fn endpoints(la: &ClusterLoadAssignment) -> Result<Vec<Endpoint>, ConvertError> {
    let Some(top) = la.endpoints.iter().map(|l| l.priority).min() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, group) in la.endpoints.iter().enumerate() {
        if group.priority != top {
            continue;
        }
        for (j, lbe) in group.lb_endpoints.iter().enumerate() {
            let at = || format!("endpoints[{i}].lb_endpoints[{j}]");
            if !usable(lbe) {
                continue;
            }
            let address = socket_addr(endpoint_address(lbe).map_err(|e| e.at(at()))?)
                .map_err(|e| e.at(at()))?;
            out.push(Endpoint {
                address,
                weight: weight(lbe).map_err(|e| e.at(at()))?,
            });
        }
    }
    Ok(out)
}

/// Host names and ports of a STRICT_DNS cluster.
fn dns_hosts(la: &ClusterLoadAssignment) -> Result<Vec<(String, u16)>, ConvertError> {
    let mut out = Vec::new();
    for (i, group) in la.endpoints.iter().enumerate() {
        for (j, lbe) in group.lb_endpoints.iter().enumerate() {
            let at = || format!("endpoints[{i}].lb_endpoints[{j}]");
            let addr = endpoint_address(lbe).map_err(|e| e.at(at()))?;
            out.push(host_port(addr).map_err(|e| e.at(at()))?);
        }
    }
    Ok(out)
}

fn endpoint_address(
    lbe: &LbEndpoint,
) -> Result<Option<&envoy_types::pb::envoy::config::core::v3::Address>, ConvertError> {
    match &lbe.host_identifier {
        Some(HostIdentifier::Endpoint(e)) => Ok(e.address.as_ref()),
        Some(HostIdentifier::EndpointName(n)) => {
            Err(ConvertError::unsupported(format!("endpoint_name {n:?}")))
        }
        None => Err(ConvertError::Missing("endpoint")),
    }
}

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

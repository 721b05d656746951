//! xDS conversion of CDS and EDS resources: `Cluster` (discovery type, load
//! balancing, circuit breakers, outlier detection, connection settings,
//! upstream TLS, metadata) and `ClusterLoadAssignment` (endpoints with
//! their priorities and localities).
//!
//! Every field the proxy does not honour is NACKed by name rather than
//! dropped: active health checks, subset load balancing, zone-aware
//! routing, custom DNS resolvers, SDS secrets and so on.

mod endpoints;
mod policy;
mod protocol;
mod tls;

use std::net::IpAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, DnsLookupFamily as XdsFamily},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig;
use envoy_types::pb::envoy::extensions::network::dns_resolver::getaddrinfo::v3::GetAddrInfoDnsResolverConfig;
use envoy_types::pb::google::protobuf::value::Kind;
use mesh_api::names::{CONFIG_FIELD, ISTIO_METADATA, MESH_METADATA, REASON_FIELD};
use prost::Name;

use super::{duration, type_name, unpack};
use crate::model::{
    Cluster, ConfigMetadata, Discovery, DnsDiscovery, DnsLookupFamily, LoadAssignment,
};
use crate::xds::error::ConvertError;

/// Envoy's connect timeout when a cluster sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy's `dns_refresh_rate` when unset.
const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);
/// How long one lookup may take when the resolver config says nothing
/// (c-ares' default query timeout).
const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);

impl TryFrom<&XdsCluster> for Cluster {
    type Error = ConvertError;

    fn try_from(c: &XdsCluster) -> Result<Self, ConvertError> {
        if c.name.is_empty() {
            return Err(ConvertError::Missing("name"));
        }
        refuse_unimplemented(c)?;
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
        let discovery = discovery(c, kind)?;
        let (lb_policy, lb) = policy::load_balancing(c, kind)?;
        let connect_timeout = match &c.connect_timeout {
            Some(t) => duration(t).map_err(|e| e.at("connect_timeout"))?,
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let http = protocol::http_options(c)?;
        let tls = tls::transport_socket(c, http.auto_sni, http.auto_san_validation)
            .map_err(|e| e.at("transport_socket"))?;
        Ok(Cluster {
            name: c.name.clone(),
            alt_stat_name: Some(c.alt_stat_name.clone()).filter(|s| !s.is_empty()),
            metadata: config_metadata(c.metadata.as_ref()),
            discovery,
            lb_policy,
            lb,
            connect_timeout,
            http2: http.http2,
            use_downstream_protocol: http.use_downstream,
            pool: http.pool,
            upstream_bind: upstream_bind(c).map_err(|e| e.at("upstream_bind_config"))?,
            tcp_keepalive: protocol::tcp_keepalive(c)
                .map_err(|e| e.at("upstream_connection_options"))?,
            circuit_breakers: policy::circuit_breakers(c).map_err(|e| e.at("circuit_breakers"))?,
            outlier_detection: policy::outlier_detection(c)
                .map_err(|e| e.at("outlier_detection"))?,
            tls,
        })
    }
}

/// Fields of the Cluster message the proxy does not implement, refused when
/// set.
#[allow(deprecated)]
fn refuse_unimplemented(c: &XdsCluster) -> Result<(), ConvertError> {
    let refuse = |set: bool, field: &str| {
        if set {
            Err(ConvertError::unsupported(field.to_owned()))
        } else {
            Ok(())
        }
    };
    refuse(!c.health_checks.is_empty(), "health_checks")?;
    refuse(
        !c.transport_socket_matches.is_empty(),
        "transport_socket_matches",
    )?;
    refuse(
        c.transport_socket_matcher.is_some(),
        "transport_socket_matcher",
    )?;
    refuse(c.lb_subset_config.is_some(), "lb_subset_config")?;
    refuse(c.load_balancing_policy.is_some(), "load_balancing_policy")?;
    refuse(!c.dns_resolvers.is_empty(), "dns_resolvers")?;
    refuse(c.use_tcp_for_dns_lookups, "use_tcp_for_dns_lookups")?;
    refuse(
        c.dns_failure_refresh_rate.is_some(),
        "dns_failure_refresh_rate",
    )?;
    refuse(c.dns_jitter.is_some(), "dns_jitter")?;
    refuse(!c.filters.is_empty(), "filters")?;
    refuse(c.lrs_server.is_some(), "lrs_server")?;
    refuse(c.preconnect_policy.is_some(), "preconnect_policy")?;
    refuse(c.upstream_config.is_some(), "upstream_config")?;
    // ORIGINAL_DST's header and port overrides are not implemented.
    use envoy_types::pb::envoy::config::cluster::v3::cluster::LbConfig;
    let overridden = matches!(&c.lb_config, Some(LbConfig::OriginalDstLbConfig(o))
        if o.use_http_header || !o.http_header_name.is_empty()
            || o.upstream_port_override.is_some() || o.metadata_key.is_some());
    refuse(overridden, "original_dst_lb_config overrides")?;
    Ok(())
}

// `dns_refresh_rate` and `respect_dns_ttl` are what Istio sends, though
// deprecated in favour of the DNS cluster extension.
#[allow(deprecated)]
fn discovery(c: &XdsCluster, kind: DiscoveryType) -> Result<Discovery, ConvertError> {
    Ok(match kind {
        DiscoveryType::Eds => {
            let service_name = c
                .eds_cluster_config
                .as_ref()
                .map(|e| e.service_name.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| c.name.clone());
            Discovery::Eds { service_name }
        }
        DiscoveryType::Static => Discovery::Static(std::sync::Arc::new(match &c.load_assignment {
            Some(la) => LoadAssignment {
                cluster_name: c.name.clone(),
                ..endpoints::assignment(la).map_err(|e| e.at("load_assignment"))?
            },
            None => LoadAssignment::new(c.name.clone(), Vec::new()),
        })),
        DiscoveryType::StrictDns | DiscoveryType::LogicalDns => {
            let la = c
                .load_assignment
                .as_ref()
                .ok_or(ConvertError::Missing("load_assignment"))?;
            let (hosts, localities) =
                endpoints::dns_hosts(la).map_err(|e| e.at("load_assignment"))?;
            if kind == DiscoveryType::LogicalDns && hosts.len() != 1 {
                return Err(ConvertError::invalid(
                    "load_assignment",
                    "LOGICAL_DNS clusters must have exactly one host",
                ));
            }
            let dns = DnsDiscovery {
                hosts,
                localities,
                refresh_rate: match &c.dns_refresh_rate {
                    Some(d) => positive(duration(d), "dns_refresh_rate")?,
                    None => DEFAULT_DNS_REFRESH,
                },
                respect_ttl: c.respect_dns_ttl,
                family: family(c.dns_lookup_family)?,
                timeout: dns_timeout(c)?,
            };
            if kind == DiscoveryType::LogicalDns {
                Discovery::LogicalDns(dns)
            } else {
                Discovery::StrictDns(dns)
            }
        }
        DiscoveryType::OriginalDst => Discovery::OriginalDst,
    })
}

fn positive(
    d: Result<Duration, ConvertError>,
    field: &'static str,
) -> Result<Duration, ConvertError> {
    match d.map_err(|e| e.at(field))? {
        d if d.is_zero() => Err(ConvertError::invalid(field, "must be positive")),
        d => Ok(d),
    }
}

fn family(value: i32) -> Result<DnsLookupFamily, ConvertError> {
    Ok(match XdsFamily::try_from(value) {
        Ok(XdsFamily::Auto) => DnsLookupFamily::Auto,
        Ok(XdsFamily::V4Only) => DnsLookupFamily::V4Only,
        Ok(XdsFamily::V6Only) => DnsLookupFamily::V6Only,
        Ok(XdsFamily::V4Preferred) => DnsLookupFamily::V4Preferred,
        Ok(XdsFamily::All) => DnsLookupFamily::All,
        Err(_) => {
            return Err(ConvertError::invalid(
                "dns_lookup_family",
                format!("unknown value {value}"),
            ))
        }
    })
}

/// The lookup timeout: c-ares' `query_timeout_seconds` when the typed
/// resolver config is c-ares, else 5 s. Resolver settings the system
/// resolver cannot take (custom name servers, TCP) are refused.
#[allow(deprecated)]
fn dns_timeout(c: &XdsCluster) -> Result<Duration, ConvertError> {
    if let Some(config) = &c.dns_resolution_config {
        if !config.resolvers.is_empty() {
            return Err(ConvertError::unsupported("dns_resolution_config.resolvers"));
        }
        if config
            .dns_resolver_options
            .as_ref()
            .is_some_and(|o| o.use_tcp_for_dns_lookups)
        {
            return Err(ConvertError::unsupported(
                "dns_resolution_config.dns_resolver_options.use_tcp_for_dns_lookups",
            ));
        }
    }
    let Some(typed) = &c.typed_dns_resolver_config else {
        return Ok(DEFAULT_DNS_TIMEOUT);
    };
    let Some(any) = &typed.typed_config else {
        return Ok(DEFAULT_DNS_TIMEOUT);
    };
    let name = type_name(&any.type_url);
    if name == CaresDnsResolverConfig::full_name() {
        let cares: CaresDnsResolverConfig =
            unpack(any).map_err(|e| e.at("typed_dns_resolver_config"))?;
        if !cares.resolvers.is_empty() {
            return Err(ConvertError::unsupported(
                "typed_dns_resolver_config resolvers",
            ));
        }
        if cares
            .dns_resolver_options
            .as_ref()
            .is_some_and(|o| o.use_tcp_for_dns_lookups)
        {
            return Err(ConvertError::unsupported(
                "typed_dns_resolver_config use_tcp_for_dns_lookups",
            ));
        }
        return Ok(cares
            .query_timeout_seconds
            .filter(|t| t.value > 0)
            .map_or(DEFAULT_DNS_TIMEOUT, |t| Duration::from_secs(t.value)));
    }
    if name == GetAddrInfoDnsResolverConfig::full_name() {
        return Ok(DEFAULT_DNS_TIMEOUT);
    }
    Err(ConvertError::unsupported(format!(
        "typed_dns_resolver_config {name}"
    )))
}

/// `filter_metadata["istio"]["config"]` and `["mesh"]["reason"]`.
fn config_metadata(metadata: Option<&Metadata>) -> ConfigMetadata {
    let field = |key: &str, field: &str| {
        let value = metadata?.filter_metadata.get(key)?.fields.get(field)?;
        match &value.kind {
            Some(Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    };
    ConfigMetadata {
        config: field(ISTIO_METADATA, CONFIG_FIELD),
        reason: field(MESH_METADATA, REASON_FIELD),
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

//! xDS conversion of LDS resources: `Listener`, its filter chains (their
//! match, their TLS transport socket in `downstream_tls.rs`) and the choice
//! of their terminal network filter, converted in `hcm.rs` (HTTP connection
//! manager) or `tcp_proxy.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    CidrRange as XdsCidrRange, TrafficDirection as XdsDirection,
};
use envoy_types::pb::envoy::config::listener::v3::filter_chain_match::ConnectionSourceType as XdsSourceType;
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter as XdsFilter, FilterChain as XdsFilterChain,
    FilterChainMatch as XdsFilterChainMatch, Listener as XdsListener,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager as XdsHcm;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy as XdsTcpProxy;
use prost::Name;

use super::downstream_tls::transport_socket;
use super::{bool_or, socket_addr, type_name, unpack};
use crate::model::{
    CidrRange, FilterChain, FilterChainMatch, HttpConnectionManager, Listener, ListenerFilter,
    NetworkFilter, SourceType, TcpProxy, TrafficDirection,
};
use crate::xds::error::ConvertError;

/// Well-known name of the HTTP connection manager network filter.
pub const HCM_NAME: &str = "envoy.filters.network.http_connection_manager";
/// Well-known name of the TCP proxy network filter.
pub const TCP_PROXY_NAME: &str = "envoy.filters.network.tcp_proxy";

/// Listener filters the proxy knows, by filter name and by config type:
/// each is a step the proxy does itself (docs/capture.md).
const LISTENER_FILTERS: &[(&str, ListenerFilter)] = &[
    (
        "envoy.filters.listener.original_dst",
        ListenerFilter::OriginalDst,
    ),
    (
        "envoy.filters.listener.tls_inspector",
        ListenerFilter::TlsInspector,
    ),
    (
        "envoy.filters.listener.http_inspector",
        ListenerFilter::HttpInspector,
    ),
    (
        "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        ListenerFilter::OriginalDst,
    ),
    (
        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        ListenerFilter::TlsInspector,
    ),
    (
        "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
        ListenerFilter::HttpInspector,
    ),
];

// Accepts the deprecated `deprecated_v1.bind_to_port` as Envoy does.
#[allow(deprecated)]
impl TryFrom<&XdsListener> for Listener {
    type Error = ConvertError;

    fn try_from(l: &XdsListener) -> Result<Self, ConvertError> {
        if l.name.is_empty() {
            return Err(ConvertError::Missing("name"));
        }
        if l.api_listener.is_some() {
            return Err(ConvertError::unsupported("api_listener"));
        }
        if l.filter_chain_matcher.is_some() {
            return Err(ConvertError::unsupported("filter_chain_matcher"));
        }
        let mut listener_filters = Vec::new();
        for lf in &l.listener_filters {
            let kind = match &lf.config_type {
                Some(listener_filter::ConfigType::TypedConfig(any)) => type_name(&any.type_url),
                _ => lf.name.as_str(),
            };
            let Some((_, filter)) = LISTENER_FILTERS.iter().find(|(name, _)| *name == kind) else {
                return Err(ConvertError::unsupported(format!(
                    "listener filter {}",
                    lf.name
                )));
            };
            listener_filters.push(*filter);
        }
        let traffic_direction = match XdsDirection::try_from(l.traffic_direction) {
            Ok(XdsDirection::Inbound) => Some(TrafficDirection::Inbound),
            Ok(XdsDirection::Outbound) => Some(TrafficDirection::Outbound),
            _ => None,
        };
        let address = socket_addr(l.address.as_ref()).map_err(|e| e.at("address"))?;
        let filter_chains = l
            .filter_chains
            .iter()
            .enumerate()
            .map(|(i, fc)| chain(&l.name, fc).map_err(|e| e.at(format!("filter_chains[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let default_filter_chain = l
            .default_filter_chain
            .as_ref()
            .map(|fc| chain(&l.name, fc).map_err(|e| e.at("default_filter_chain")))
            .transpose()?;
        if filter_chains.is_empty() && default_filter_chain.is_none() {
            return Err(ConvertError::Missing("filter_chains"));
        }
        refuse_overlaps(&filter_chains)?;
        let deprecated_bind = l
            .deprecated_v1
            .as_ref()
            .and_then(|d| d.bind_to_port.as_ref());
        Ok(Listener {
            name: l.name.clone(),
            address,
            bind_to_port: bool_or(l.bind_to_port.as_ref().or(deprecated_bind), true),
            use_original_dst: bool_or(l.use_original_dst.as_ref(), false),
            listener_filters,
            traffic_direction,
            filter_chains,
            default_filter_chain,
        })
    }
}

fn chain(listener: &str, fc: &XdsFilterChain) -> Result<FilterChain, ConvertError> {
    #[allow(deprecated)]
    if fc.use_proxy_proto.as_ref().is_some_and(|v| v.value) {
        return Err(ConvertError::unsupported("use_proxy_proto"));
    }
    let tls = fc
        .transport_socket
        .as_ref()
        .map(|ts| transport_socket(ts, fc.transport_socket_connect_timeout.as_ref()))
        .transpose()?
        .flatten()
        .map(Arc::new);
    let matcher = fc
        .filter_chain_match
        .as_ref()
        .map(chain_match)
        .transpose()
        .map_err(|e| e.at("filter_chain_match"))?
        .unwrap_or_default();
    let Some((last, before)) = fc.filters.split_last() else {
        return Err(ConvertError::Missing("filters"));
    };
    // Only terminal filters exist in the model; anything ahead of them
    // would change behaviour the proxy cannot provide.
    if let Some(f) = before.first() {
        return Err(unsupported_filter(listener, fc, f));
    }
    let filter = network_filter(listener, fc, last)
        .map_err(|e| e.at(format!("filters[{}]", before.len())))?;
    Ok(FilterChain {
        name: fc.name.clone(),
        matcher,
        tls,
        filter,
    })
}

fn unsupported_filter(listener: &str, fc: &XdsFilterChain, f: &XdsFilter) -> ConvertError {
    let filter = match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) if f.name.is_empty() => any.type_url.clone(),
        _ => f.name.clone(),
    };
    ConvertError::UnsupportedFilter {
        filter,
        listener: listener.to_owned(),
        chain: fc.name.clone(),
    }
}

fn chain_match(m: &XdsFilterChainMatch) -> Result<FilterChainMatch, ConvertError> {
    #[allow(deprecated)]
    let suffix = m.address_suffix.is_empty() && m.suffix_len.is_none();
    if !suffix {
        return Err(ConvertError::unsupported("address_suffix"));
    }
    let destination_port = m
        .destination_port
        .as_ref()
        .map(|p| {
            u16::try_from(p.value).map_err(|_| {
                ConvertError::invalid("destination_port", format!("{} out of range", p.value))
            })
        })
        .transpose()?;
    let source_type = match XdsSourceType::try_from(m.source_type) {
        Ok(XdsSourceType::Any) => SourceType::Any,
        Ok(XdsSourceType::SameIpOrLoopback) => SourceType::SameIpOrLoopback,
        Ok(XdsSourceType::External) => SourceType::External,
        Err(_) => {
            return Err(ConvertError::invalid(
                "source_type",
                format!("unknown value {}", m.source_type),
            ))
        }
    };
    let source_ports = m
        .source_ports
        .iter()
        .map(|p| {
            u16::try_from(*p)
                .map_err(|_| ConvertError::invalid("source_ports", format!("{p} out of range")))
        })
        .collect::<Result<_, _>>()?;
    Ok(FilterChainMatch {
        destination_port,
        prefix_ranges: cidr_ranges(&m.prefix_ranges, "prefix_ranges")?,
        server_names: m.server_names.clone(),
        transport_protocol: Some(m.transport_protocol.clone()).filter(|t| !t.is_empty()),
        application_protocols: m.application_protocols.clone(),
        direct_source_prefix_ranges: cidr_ranges(
            &m.direct_source_prefix_ranges,
            "direct_source_prefix_ranges",
        )?,
        source_type,
        source_prefix_ranges: cidr_ranges(&m.source_prefix_ranges, "source_prefix_ranges")?,
        source_ports,
    })
}

/// One combination of match values a chain accepts (a field with several
/// values, or none, contributes one of them).
type MatchKey = (
    Option<u16>,
    Option<CidrRange>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<CidrRange>,
    SourceType,
    Option<CidrRange>,
    Option<u16>,
);

/// Combinations beyond which a chain is not checked for overlaps (the
/// product of its list fields); pilot's chains have a handful.
const MAX_MATCH_KEYS: usize = 4096;

/// Envoy refuses a listener where two chains accept the same combination
/// of match values ("multiple filter chains with the same matching rules"):
/// which one serves would be arbitrary. So does the proxy.
fn refuse_overlaps(chains: &[FilterChain]) -> Result<(), ConvertError> {
    let mut seen: HashMap<MatchKey, usize> = HashMap::new();
    for (i, chain) in chains.iter().enumerate() {
        let m = &chain.matcher;
        let options = |n: usize| n.max(1);
        let size = options(m.prefix_ranges.len())
            * options(m.server_names.len())
            * options(m.application_protocols.len())
            * options(m.direct_source_prefix_ranges.len())
            * options(m.source_prefix_ranges.len())
            * options(m.source_ports.len());
        if size > MAX_MATCH_KEYS {
            continue;
        }
        let or_none = |v: Vec<Option<CidrRange>>| if v.is_empty() { vec![None] } else { v };
        let ranges = |r: &[CidrRange]| or_none(r.iter().copied().map(Some).collect());
        let strings = |v: &[String], lower: bool| -> Vec<Option<String>> {
            if v.is_empty() {
                return vec![None];
            }
            v.iter()
                .map(|s| {
                    Some(if lower {
                        s.to_ascii_lowercase()
                    } else {
                        s.clone()
                    })
                })
                .collect()
        };
        let ports: Vec<Option<u16>> = if m.source_ports.is_empty() {
            vec![None]
        } else {
            m.source_ports.iter().copied().map(Some).collect()
        };
        for prefix in ranges(&m.prefix_ranges) {
            for name in strings(&m.server_names, true) {
                for alpn in strings(&m.application_protocols, false) {
                    for direct in ranges(&m.direct_source_prefix_ranges) {
                        for source in ranges(&m.source_prefix_ranges) {
                            for port in &ports {
                                let key = (
                                    m.destination_port,
                                    prefix,
                                    name.clone(),
                                    m.transport_protocol.clone(),
                                    alpn.clone(),
                                    direct,
                                    m.source_type,
                                    source,
                                    *port,
                                );
                                if let Some(first) = seen.insert(key, i) {
                                    if first != i {
                                        return Err(ConvertError::invalid(
                                            "filter_chains",
                                            format!(
                                                "chains #{first} {:?} and #{i} {:?} have the same matching rules",
                                                chains[first].name, chain.name
                                            ),
                                        ));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// `CidrRange`s: an IP address and a prefix length that fits it.
fn cidr_ranges(ranges: &[XdsCidrRange], field: &str) -> Result<Vec<CidrRange>, ConvertError> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let ip: IpAddr = r.address_prefix.parse().map_err(|_| {
                ConvertError::invalid(
                    "address_prefix",
                    format!("{:?} is not an IP address", r.address_prefix),
                )
                .at(format!("{field}[{i}]"))
            })?;
            let len = r.prefix_len.as_ref().map_or(0, |l| l.value);
            u8::try_from(len)
                .ok()
                .and_then(|len| CidrRange::new(ip, len))
                .ok_or_else(|| {
                    ConvertError::invalid("prefix_len", format!("{len} too long for {ip}"))
                        .at(format!("{field}[{i}]"))
                })
        })
        .collect()
}

fn network_filter(
    listener: &str,
    fc: &XdsFilterChain,
    f: &XdsFilter,
) -> Result<NetworkFilter, ConvertError> {
    let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
        if f.name == HCM_NAME || f.name == TCP_PROXY_NAME {
            return Err(ConvertError::Missing("typed_config"));
        }
        return Err(unsupported_filter(listener, fc, f));
    };
    match type_name(&any.type_url) {
        n if n == XdsHcm::full_name() => {
            let hcm: XdsHcm = unpack(any)?;
            Ok(NetworkFilter::Http(HttpConnectionManager::try_from(&hcm)?))
        }
        n if n == XdsTcpProxy::full_name() => {
            let tcp: XdsTcpProxy = unpack(any)?;
            Ok(NetworkFilter::Tcp(TcpProxy::try_from(&tcp)?))
        }
        _ => Err(unsupported_filter(listener, fc, f)),
    }
}

//! xDS conversion of LDS resources: `Listener`, its filter chains and the
//! choice of their terminal network filter, converted in `hcm.rs` (HTTP
//! connection manager) or `tcp_proxy.rs`.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection as XdsDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter as XdsFilter, FilterChain as XdsFilterChain,
    FilterChainMatch as XdsFilterChainMatch, Listener as XdsListener,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager as XdsHcm;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy as XdsTcpProxy;
use prost::Name;

use super::{bool_or, socket_addr, type_name, unpack};
use crate::model::{
    FilterChain, FilterChainMatch, HttpConnectionManager, Listener, ListenerFilter, NetworkFilter,
    TcpProxy, TrafficDirection,
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
    if let Some(ts) = &fc.transport_socket {
        // Terminating TLS arrives with the mTLS issue; accepting it now would
        // serve plaintext where pilot asked for TLS.
        if ts.name != "envoy.transport_sockets.raw_buffer" {
            return Err(ConvertError::unsupported(format!(
                "transport_socket {}",
                ts.name
            )));
        }
    }
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
    let catch_all = |ranges: &[envoy_types::pb::envoy::config::core::v3::CidrRange]| {
        ranges
            .iter()
            .all(|r| r.prefix_len.as_ref().is_none_or(|l| l.value == 0))
    };
    if !catch_all(&m.prefix_ranges) {
        return Err(ConvertError::unsupported("prefix_ranges"));
    }
    if !catch_all(&m.source_prefix_ranges) || !catch_all(&m.direct_source_prefix_ranges) {
        return Err(ConvertError::unsupported("source_prefix_ranges"));
    }
    if !m.source_ports.is_empty() {
        return Err(ConvertError::unsupported("source_ports"));
    }
    if m.source_type != 0 {
        return Err(ConvertError::unsupported("source_type"));
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
    Ok(FilterChainMatch {
        destination_port,
        server_names: m.server_names.clone(),
        transport_protocol: Some(m.transport_protocol.clone()).filter(|t| !t.is_empty()),
        application_protocols: m.application_protocols.clone(),
    })
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

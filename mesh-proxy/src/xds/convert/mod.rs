//! xDS stage, conversion: Envoy v3 resources (LDS, RDS, CDS, EDS) become the
//! proxy's own model ([`crate::model`]) through `TryFrom`, one resource at a
//! time, and a built [`Snapshot`] is checked across resources before it is
//! published.
//!
//! ```text
//! DiscoveryResponse ─► Any ─► envoy proto ─► TryFrom ─► model ─► Snapshot ─► check ─► publish
//!                                              │ error                         │ error
//!                                              └──────────► NACK ◄─────────────┘
//! ```
//!
//! Only what the proxy implements converts. Anything else (an unknown
//! network filter, a redirect, SDS secrets) is rejected with a reason rather than
//! silently ignored, so pilot learns about it through the NACK.

mod access_log;
mod cluster;
mod downstream_tls;
mod format;
mod hcm;
mod headers;
mod http_filters;
mod listener;
mod matchers;
mod route;
mod route_action;
mod tcp_proxy;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration as PbDuration};

use crate::model::{
    ClusterTarget, Forward, Fraction, NetworkFilter, RouteAction, RouteConfig, RouteSource,
    Snapshot,
};
use crate::xds::error::ConvertError;

pub use access_log::DEFAULT_FORMAT;
pub use matchers::compile_whole_match;

/// Decodes `any` as a `T`, accepting any type URL prefix as Envoy does.
pub fn unpack<T>(any: &Any) -> Result<T, ConvertError>
where
    T: prost::Message + prost::Name + Default,
{
    if type_name(&any.type_url) != T::full_name() {
        return Err(ConvertError::invalid(
            "type_url",
            format!("expected {}, got {}", T::type_url(), any.type_url),
        ));
    }
    T::decode(any.value.as_slice()).map_err(|source| ConvertError::Decode {
        type_url: any.type_url.clone(),
        source,
    })
}

/// The message name of a type URL (`type.googleapis.com/a.b.C` → `a.b.C`).
pub fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// A protobuf duration as a std one; negative or out-of-range values are errors.
pub(crate) fn duration(d: &PbDuration) -> Result<Duration, ConvertError> {
    let (Ok(secs), Ok(nanos)) = (u64::try_from(d.seconds), u32::try_from(d.nanos)) else {
        return Err(ConvertError::invalid("duration", "negative"));
    };
    if nanos >= 1_000_000_000 {
        return Err(ConvertError::invalid("duration", "nanos out of range"));
    }
    Ok(Duration::new(secs, nanos))
}

/// A `FractionalPercent`; unset is 0 %, as Envoy reads an absent message.
pub(crate) fn fraction(f: Option<&FractionalPercent>) -> Result<Fraction, ConvertError> {
    let Some(f) = f else {
        return Ok(Fraction {
            numerator: 0,
            denominator: 100,
        });
    };
    let denominator = match DenominatorType::try_from(f.denominator) {
        Ok(DenominatorType::Hundred) => 100,
        Ok(DenominatorType::TenThousand) => 10_000,
        Ok(DenominatorType::Million) => 1_000_000,
        Err(_) => {
            return Err(ConvertError::invalid(
                "denominator",
                f.denominator.to_string(),
            ))
        }
    };
    // Envoy caps a numerator above the denominator at 100 %.
    Ok(Fraction {
        numerator: f.numerator.min(denominator),
        denominator,
    })
}

/// A `RuntimeFractionalPercent`: its `default_value`, since the proxy has
/// no runtime layer to look `runtime_key` up in (as an Envoy without
/// runtime overrides; unset is 100 %, Envoy's documented default).
pub(crate) fn runtime_fraction(f: &RuntimeFractionalPercent) -> Result<Fraction, ConvertError> {
    match &f.default_value {
        Some(v) => fraction(Some(v)),
        None => Ok(Fraction::ALL),
    }
}

/// Refuses the first of `fields` that is set: each is something the proxy
/// would otherwise accept and then silently not do.
pub(crate) fn refuse_set(fields: &[(bool, &'static str)]) -> Result<(), ConvertError> {
    match fields.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(ConvertError::unsupported(*what)),
        None => Ok(()),
    }
}

/// A `BoolValue` with its documented default.
pub(crate) fn bool_or(value: Option<&BoolValue>, default: bool) -> bool {
    value.map_or(default, |v| v.value)
}

/// An `Address` that must be an IP socket address with a numeric port.
pub(crate) fn socket_addr(addr: Option<&Address>) -> Result<SocketAddr, ConvertError> {
    let (ip, port) = host_port(addr)?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| ConvertError::invalid("address", format!("{ip:?} is not an IP address")))?;
    Ok(SocketAddr::new(ip, port))
}

/// An `Address` as host (IP or name) and port.
pub(crate) fn host_port(addr: Option<&Address>) -> Result<(String, u16), ConvertError> {
    let Some(address::Address::SocketAddress(sa)) = addr.and_then(|a| a.address.as_ref()) else {
        return match addr.and_then(|a| a.address.as_ref()) {
            None => Err(ConvertError::Missing("address")),
            Some(_) => Err(ConvertError::unsupported(
                "address kind (only socket_address)",
            )),
        };
    };
    if sa.protocol != socket_address::Protocol::Tcp as i32 {
        return Err(ConvertError::unsupported("UDP address"));
    }
    if sa.address.is_empty() {
        return Err(ConvertError::Missing("address.socket_address.address"));
    }
    let port = match &sa.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) => u16::try_from(*p)
            .map_err(|_| ConvertError::invalid("port_value", format!("{p} out of range")))?,
        Some(socket_address::PortSpecifier::NamedPort(p)) => {
            return Err(ConvertError::unsupported(format!("named port {p:?}")))
        }
        None => return Err(ConvertError::Missing("address.socket_address.port_value")),
    };
    Ok((sa.address.clone(), port))
}

/// Clusters the snapshot's route configurations name but does not contain,
/// where Envoy would refuse them: a route configuration with
/// `validate_clusters` (by default for one inline in a listener, not for
/// one over RDS). TCP proxies are never checked, as in Envoy: each
/// connection looks its cluster up and is closed (`NC`) when it is missing.
///
/// Each entry is `(kind, resource name, error)`: `Listener` for inline
/// routes, `RouteConfiguration` for RDS resources. The ADS client rejects
/// the entries of the resource type it is applying, so a cluster removed by
/// CDS ahead of the RDS update that stops using it does not get CDS NACKed
/// (pilot sends CDS before RDS).
pub fn dangling_clusters(snapshot: &Snapshot) -> Vec<(&'static str, String, ConvertError)> {
    let mut found = Vec::new();
    let missing = |name: &str| !snapshot.clusters.contains_key(name);
    for (name, rc) in &snapshot.route_configs {
        if rc.validate_clusters != Some(true) {
            continue;
        }
        for (cluster, at) in route_config_clusters(rc) {
            if missing(&cluster) {
                let error = ConvertError::UnknownCluster { cluster, at };
                found.push(("RouteConfiguration", name.clone(), error));
            }
        }
    }
    for (name, l) in &snapshot.listeners {
        for (i, chain) in l
            .filter_chains
            .iter()
            .chain(&l.default_filter_chain)
            .enumerate()
        {
            let NetworkFilter::Http(hcm) = &chain.filter else {
                continue;
            };
            let RouteSource::Inline(rc) = &hcm.routes else {
                continue;
            };
            if rc.validate_clusters == Some(false) {
                continue;
            }
            for (cluster, route) in route_config_clusters(rc) {
                if missing(&cluster) {
                    let at = format!("filter chain {:?} (#{i}) route_config {route}", chain.name);
                    let error = ConvertError::UnknownCluster { cluster, at };
                    found.push(("Listener", name.clone(), error));
                }
            }
        }
    }
    found
}

/// Every cluster a route configuration forwards to, with the route's place.
pub(crate) fn route_config_clusters(
    rc: &RouteConfig,
) -> impl Iterator<Item = (String, String)> + '_ {
    rc.virtual_hosts.iter().flat_map(|vh| {
        vh.routes.iter().flat_map(move |r| {
            let at = format!("virtual host {:?} route {:?}", vh.name, r.name);
            let clusters: Vec<String> = match &r.action {
                RouteAction::Forward(f) => forward_clusters(f),
                RouteAction::DirectResponse { .. } | RouteAction::Redirect(_) => Vec::new(),
            };
            clusters.into_iter().map(move |c| (c, at.clone()))
        })
    })
}

/// The clusters a route forwards to: its target and its mirrors.
fn forward_clusters(f: &Forward) -> Vec<String> {
    target_clusters(&f.target)
        .chain(f.mirrors.iter().map(|m| m.cluster.as_str()))
        .map(str::to_owned)
        .collect()
}

/// The cluster names of a target: one, or every arm of a weighted choice.
pub(crate) fn target_clusters(target: &ClusterTarget) -> Box<dyn Iterator<Item = &str> + '_> {
    match target {
        ClusterTarget::Cluster(c) => Box::new(std::iter::once(c.as_str())),
        ClusterTarget::Weighted(ws) => Box::new(ws.iter().map(|w| w.name.as_str())),
    }
}

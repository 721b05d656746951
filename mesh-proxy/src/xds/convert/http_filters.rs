//! xDS conversion of the HCM's HTTP filters (fault, CORS, router) and of
//! their per-route settings (`typed_per_filter_config` of routes and
//! virtual hosts).

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{
    Cors as XdsCors, CorsPolicy as XdsCorsPolicy,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort::ErrorType, HttpFault,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router as XdsRouter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter as XdsHttpFilter,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Name;

use super::matchers::{header_matchers, string_match};
use super::{bool_or, duration, fraction, runtime_fraction, type_name, unpack};
use crate::model::{
    AbortStatus, CorsPolicy, FaultAbort, FaultConfig, FaultDelay, FilterOverrides, Fraction,
    HttpFilter,
};
use crate::xds::error::ConvertError;

/// Well-known name of the router HTTP filter.
pub const ROUTER_NAME: &str = "envoy.filters.http.router";
/// Well-known name of the fault HTTP filter.
pub const FAULT_NAME: &str = "envoy.filters.http.fault";
/// Well-known name of the CORS HTTP filter.
pub const CORS_NAME: &str = "envoy.filters.http.cors";

/// One HTTP filter; `None` for optional or disabled filters the proxy lacks.
pub(super) fn http_filter(f: &XdsHttpFilter) -> Result<Option<HttpFilter>, ConvertError> {
    let any = match &f.config_type {
        Some(http_filter::ConfigType::TypedConfig(any)) => Some(any),
        Some(http_filter::ConfigType::ConfigDiscovery(_)) => {
            return Err(ConvertError::unsupported(format!(
                "config_discovery for HTTP filter {}",
                f.name
            )))
        }
        None => None,
    };
    let kind = any.map_or(f.name.as_str(), |any| type_name(&any.type_url));
    if f.disabled {
        // A disabled filter runs only where a route enables it, which the
        // proxy does not do: refuse it unless it may be skipped.
        if f.is_optional {
            return Ok(None);
        }
        return Err(ConvertError::unsupported(format!(
            "disabled HTTP filter {} (enabled per route)",
            f.name
        )));
    }
    if kind == XdsRouter::full_name() || kind == ROUTER_NAME {
        let router = match any {
            Some(any) => unpack::<XdsRouter>(any)?,
            None => XdsRouter::default(),
        };
        router_config(&router).map_err(|e| e.at("typed_config"))?;
        return Ok(Some(HttpFilter::Router));
    }
    if kind == HttpFault::full_name() || kind == FAULT_NAME {
        let fault = match any {
            Some(any) => unpack::<HttpFault>(any)?,
            None => HttpFault::default(),
        };
        let config = fault_config(&fault).map_err(|e| e.at("typed_config"))?;
        return Ok(Some(HttpFilter::Fault(Arc::new(config))));
    }
    if kind == XdsCors::full_name() || kind == CORS_NAME {
        if let Some(any) = any {
            unpack::<XdsCors>(any)?;
        }
        return Ok(Some(HttpFilter::Cors));
    }
    if f.is_optional {
        tracing::debug!(filter = %f.name, "skipping optional HTTP filter the proxy lacks");
        return Ok(None);
    }
    Err(ConvertError::unsupported(format!("HTTP filter {}", f.name)))
}

/// The router's options: those that change behaviour are refused.
fn router_config(r: &XdsRouter) -> Result<(), ConvertError> {
    #[allow(deprecated)]
    let refused = [
        (!r.upstream_log.is_empty(), "upstream_log"),
        (r.suppress_envoy_headers, "suppress_envoy_headers"),
        (!r.strict_check_headers.is_empty(), "strict_check_headers"),
        (r.respect_expected_rq_timeout, "respect_expected_rq_timeout"),
        (!r.upstream_http_filters.is_empty(), "upstream_http_filters"),
    ];
    match refused.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(ConvertError::unsupported(*what)),
        // dynamic_stats, start_child_span and the stats options only change
        // stats and tracing, which the proxy does not keep.
        None => Ok(()),
    }
}

/// `HTTPFault`, as the filter config or a per-route override.
pub(super) fn fault_config(f: &HttpFault) -> Result<FaultConfig, ConvertError> {
    let refused = [
        (!f.upstream_cluster.is_empty(), "upstream_cluster"),
        (!f.downstream_nodes.is_empty(), "downstream_nodes"),
        (f.response_rate_limit.is_some(), "response_rate_limit"),
    ];
    if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
        return Err(ConvertError::unsupported(*what));
    }
    let delay = match &f.delay {
        None => None,
        Some(d) => {
            let delay = match &d.fault_delay_secifier {
                Some(FaultDelaySecifier::FixedDelay(fixed)) => {
                    duration(fixed).map_err(|e| e.at("delay.fixed_delay"))?
                }
                Some(FaultDelaySecifier::HeaderDelay(_)) => {
                    return Err(ConvertError::unsupported("delay.header_delay"))
                }
                None => return Err(ConvertError::Missing("delay.fixed_delay")),
            };
            Some(FaultDelay {
                delay,
                percentage: fraction(d.percentage.as_ref())
                    .map_err(|e| e.at("delay.percentage"))?,
            })
        }
    };
    let abort = match &f.abort {
        None => None,
        Some(a) => {
            let status = match &a.error_type {
                Some(ErrorType::HttpStatus(s)) => {
                    let s = u16::try_from(*s)
                        .ok()
                        .filter(|s| (200..600).contains(s))
                        .ok_or_else(|| ConvertError::invalid("abort.http_status", s.to_string()))?;
                    AbortStatus::Http(s)
                }
                Some(ErrorType::GrpcStatus(s)) => AbortStatus::Grpc(*s),
                Some(ErrorType::HeaderAbort(_)) => {
                    return Err(ConvertError::unsupported("abort.header_abort"))
                }
                None => return Err(ConvertError::Missing("abort.error_type")),
            };
            if !a.response_body.is_empty() {
                return Err(ConvertError::unsupported("abort.response_body"));
            }
            Some(FaultAbort {
                status,
                percentage: fraction(a.percentage.as_ref())
                    .map_err(|e| e.at("abort.percentage"))?,
            })
        }
    };
    Ok(FaultConfig {
        delay,
        abort,
        headers: header_matchers(&f.headers, "headers")?,
        max_active_faults: f.max_active_faults.as_ref().map(|m| m.value),
        active: Default::default(),
    })
}

/// The CORS filter's `CorsPolicy`.
fn cors_policy(c: &XdsCorsPolicy) -> Result<CorsPolicy, ConvertError> {
    let allow_origin = c
        .allow_origin_string_match
        .iter()
        .enumerate()
        .map(|(i, sm)| {
            string_match(sm).map_err(|e| e.at(format!("allow_origin_string_match[{i}]")))
        })
        .collect::<Result<_, _>>()?;
    let non_empty = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
    Ok(CorsPolicy {
        allow_origin,
        allow_methods: non_empty(&c.allow_methods),
        allow_headers: non_empty(&c.allow_headers),
        expose_headers: non_empty(&c.expose_headers),
        max_age: non_empty(&c.max_age),
        allow_credentials: bool_or(c.allow_credentials.as_ref(), false),
        enabled: match &c.filter_enabled {
            Some(f) => runtime_fraction(f).map_err(|e| e.at("filter_enabled"))?,
            None => Fraction::ALL,
        },
        shadow: c
            .shadow_enabled
            .as_ref()
            .map(|f| runtime_fraction(f).map_err(|e| e.at("shadow_enabled")))
            .transpose()?,
        allow_private_network_access: bool_or(c.allow_private_network_access.as_ref(), false),
        forward_not_matching_preflights: bool_or(c.forward_not_matching_preflights.as_ref(), true),
    })
}

/// `typed_per_filter_config` of a route or virtual host: the fault and
/// CORS settings; other filters' settings are refused unless the filter is
/// one the proxy skips as optional, which Envoy would skip too.
pub(super) fn filter_overrides(
    map: &HashMap<String, Any>,
) -> Result<FilterOverrides, ConvertError> {
    let mut overrides = FilterOverrides::default();
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let any = &map[name];
        let at = || format!("typed_per_filter_config[{name:?}]");
        let kind = type_name(&any.type_url);
        if kind == HttpFault::full_name() {
            let fault: HttpFault = unpack(any).map_err(|e| e.at(at()))?;
            overrides.fault = Some(Arc::new(fault_config(&fault).map_err(|e| e.at(at()))?));
        } else if kind == XdsCorsPolicy::full_name() {
            let cors: XdsCorsPolicy = unpack(any).map_err(|e| e.at(at()))?;
            overrides.cors = Some(Arc::new(cors_policy(&cors).map_err(|e| e.at(at()))?));
        } else {
            return Err(ConvertError::unsupported(format!(
                "per-route config of {name} ({kind})"
            )));
        }
    }
    Ok(overrides)
}

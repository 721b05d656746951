//! xDS conversion of the HTTP connection manager network filter: its route
//! source (RDS or inline) and its HTTP filters.

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router as XdsRouter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager as XdsHcm,
    HttpFilter as XdsHttpFilter,
};
use prost::Name;

use super::type_name;
use crate::model::{HttpConnectionManager, HttpFilter, RouteConfig, RouteSource};
use crate::xds::error::ConvertError;

/// Well-known name of the router HTTP filter.
pub const ROUTER_NAME: &str = "envoy.filters.http.router";

impl TryFrom<&XdsHcm> for HttpConnectionManager {
    type Error = ConvertError;

    fn try_from(hcm: &XdsHcm) -> Result<Self, ConvertError> {
        let routes = match &hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) if rds.route_config_name.is_empty() => {
                return Err(ConvertError::Missing("rds.route_config_name"))
            }
            Some(RouteSpecifier::Rds(rds)) => RouteSource::Rds(rds.route_config_name.clone()),
            Some(RouteSpecifier::RouteConfig(rc)) => RouteSource::Inline(Arc::new(
                RouteConfig::try_from(rc).map_err(|e| e.at("route_config"))?,
            )),
            Some(RouteSpecifier::ScopedRoutes(_)) => {
                return Err(ConvertError::unsupported("scoped_routes"))
            }
            None => return Err(ConvertError::Missing("route_specifier")),
        };
        let mut http_filters = Vec::new();
        for (i, f) in hcm.http_filters.iter().enumerate() {
            if let Some(filter) = http_filter(f).map_err(|e| e.at(format!("http_filters[{i}]")))? {
                if !http_filters.is_empty() {
                    return Err(ConvertError::invalid(
                        "http_filters",
                        "filters after the router",
                    ));
                }
                http_filters.push(filter);
            }
        }
        if !matches!(http_filters.last(), Some(HttpFilter::Router)) {
            return Err(ConvertError::invalid(
                "http_filters",
                format!("the last filter must be {ROUTER_NAME}"),
            ));
        }
        Ok(HttpConnectionManager {
            stat_prefix: hcm.stat_prefix.clone(),
            routes,
            http_filters,
        })
    }
}

/// One HTTP filter; `None` for optional or disabled filters the proxy lacks.
fn http_filter(f: &XdsHttpFilter) -> Result<Option<HttpFilter>, ConvertError> {
    let kind = match &f.config_type {
        Some(http_filter::ConfigType::TypedConfig(any)) => type_name(&any.type_url),
        Some(http_filter::ConfigType::ConfigDiscovery(_)) => {
            return Err(ConvertError::unsupported(format!(
                "config_discovery for HTTP filter {}",
                f.name
            )))
        }
        None => f.name.as_str(),
    };
    if kind == XdsRouter::full_name() || kind == ROUTER_NAME {
        return Ok(Some(HttpFilter::Router));
    }
    if f.is_optional || f.disabled {
        tracing::debug!(filter = %f.name, "skipping optional HTTP filter the proxy lacks");
        return Ok(None);
    }
    Err(ConvertError::unsupported(format!("HTTP filter {}", f.name)))
}

//! xDS conversion of RDS resources (and route configs inlined in an HCM):
//! `RouteConfiguration`, virtual hosts, routes and their matches. Route
//! actions are converted in `route_action.rs`.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource, Metadata};
use envoy_types::pb::envoy::config::route::v3::{
    query_parameter_matcher::QueryParameterMatchSpecifier, route::Action,
    route_match::PathSpecifier, virtual_host::TlsRequirementType,
    QueryParameterMatcher as XdsQueryMatcher, Route as XdsRoute, RouteConfiguration,
    RouteMatch as XdsRouteMatch, VirtualHost as XdsVirtualHost,
};
use envoy_types::pb::google::protobuf::{value::Kind, UInt32Value, UInt64Value};
use mesh_api::names::{
    describe_config_path, CONFIG_FIELD, ISTIO_METADATA, MESH_METADATA, REASON_FIELD,
};

use super::headers::mutations;
use super::http_filters::filter_overrides;
use super::matchers::{compile_whole_match, header_matchers, string_match};
use super::route_action::{redirect, retry_policy};
use super::{bool_or, refuse_set};
use crate::model::{
    HeaderMatchKind, PathMatch, QueryParameterMatcher, Route, RouteAction, RouteConfig, RouteMatch,
    TlsRequirement, VirtualHost,
};
use crate::xds::error::ConvertError;

impl TryFrom<&RouteConfiguration> for RouteConfig {
    type Error = ConvertError;

    fn try_from(rc: &RouteConfiguration) -> Result<Self, ConvertError> {
        refuse_set(&[
            (rc.vhds.is_some(), "vhds"),
            (!rc.vhost_header.is_empty(), "vhost_header"),
            (
                !rc.internal_only_headers.is_empty(),
                "internal_only_headers",
            ),
            (
                !rc.request_mirror_policies.is_empty(),
                "request_mirror_policies",
            ),
            (
                !rc.cluster_specifier_plugins.is_empty(),
                "cluster_specifier_plugins",
            ),
            (
                !rc.typed_per_filter_config.is_empty(),
                "typed_per_filter_config",
            ),
            (
                rc.ignore_port_in_host_matching,
                "ignore_port_in_host_matching",
            ),
            (
                rc.ignore_path_parameters_in_path_matching,
                "ignore_path_parameters_in_path_matching",
            ),
        ])?;
        let headers = mutations(
            &rc.request_headers_to_add,
            &rc.request_headers_to_remove,
            &rc.response_headers_to_add,
            &rc.response_headers_to_remove,
        )?;
        let virtual_hosts = rc
            .virtual_hosts
            .iter()
            .enumerate()
            .map(|(i, vh)| {
                VirtualHost::try_from(vh)
                    .map_err(|e| e.at(format!("virtual_hosts[{i}] ({:?})", vh.name)))
            })
            .collect::<Result<_, _>>()?;
        Ok(RouteConfig {
            name: rc.name.clone(),
            virtual_hosts,
            headers,
            most_specific_header_mutations_wins: rc.most_specific_header_mutations_wins,
            validate_clusters: rc.validate_clusters.map(|v| v.value),
        })
    }
}

/// A buffer limit from the new `request_body_buffer_limit` or the
/// deprecated `per_request_buffer_limit_bytes`.
fn buffer_limit(new: Option<&UInt64Value>, old: Option<&UInt32Value>) -> Option<u64> {
    new.map(|v| v.value).or(old.map(|v| u64::from(v.value)))
}

impl TryFrom<&XdsVirtualHost> for VirtualHost {
    type Error = ConvertError;

    #[allow(deprecated)]
    fn try_from(vh: &XdsVirtualHost) -> Result<Self, ConvertError> {
        refuse_set(&[
            (vh.matcher.is_some(), "matcher"),
            (
                vh.retry_policy_typed_config.is_some(),
                "retry_policy_typed_config",
            ),
            (vh.hedge_policy.is_some(), "hedge_policy"),
            (
                !vh.request_mirror_policies.is_empty(),
                "request_mirror_policies",
            ),
            (!vh.virtual_clusters.is_empty(), "virtual_clusters"),
            (!vh.rate_limits.is_empty(), "rate_limits"),
            (vh.cors.is_some(), "cors (use typed_per_filter_config)"),
            (
                vh.include_is_timeout_retry_header,
                "include_is_timeout_retry_header",
            ),
            (!vh.route_specifiers.is_empty(), "route_specifiers"),
        ])?;
        if vh.domains.is_empty() {
            return Err(ConvertError::Missing("domains"));
        }
        let require_tls = match TlsRequirementType::try_from(vh.require_tls) {
            Ok(TlsRequirementType::None) => TlsRequirement::None,
            Ok(TlsRequirementType::ExternalOnly) => TlsRequirement::ExternalOnly,
            Ok(TlsRequirementType::All) => TlsRequirement::All,
            Err(_) => {
                return Err(ConvertError::invalid(
                    "require_tls",
                    vh.require_tls.to_string(),
                ))
            }
        };
        let routes = vh
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route::try_from(r).map_err(|e| e.at(format!("routes[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(VirtualHost {
            name: vh.name.clone(),
            domains: vh.domains.clone(),
            routes,
            require_tls,
            headers: mutations(
                &vh.request_headers_to_add,
                &vh.request_headers_to_remove,
                &vh.response_headers_to_add,
                &vh.response_headers_to_remove,
            )?,
            retry_policy: vh
                .retry_policy
                .as_ref()
                .map(|p| retry_policy(p).map_err(|e| e.at("retry_policy")))
                .transpose()?,
            include_request_attempt_count: vh.include_request_attempt_count,
            include_attempt_count_in_response: vh.include_attempt_count_in_response,
            filter_overrides: filter_overrides(&vh.typed_per_filter_config)?,
            buffer_limit: buffer_limit(
                vh.request_body_buffer_limit.as_ref(),
                vh.per_request_buffer_limit_bytes.as_ref(),
            ),
        })
    }
}

/// A string field of `metadata.filter_metadata[filter]`.
fn metadata_string(metadata: Option<&Metadata>, filter: &str, field: &str) -> Option<String> {
    let value = metadata?.filter_metadata.get(filter)?.fields.get(field)?;
    match &value.kind {
        Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl TryFrom<&XdsRoute> for Route {
    type Error = ConvertError;

    #[allow(deprecated)]
    fn try_from(r: &XdsRoute) -> Result<Self, ConvertError> {
        refuse_set(&[(!r.route_specifiers.is_empty(), "route_specifiers")])?;
        let m = r.r#match.as_ref().ok_or(ConvertError::Missing("match"))?;
        let matcher = RouteMatch::try_from(m).map_err(|e| e.at("match"))?;
        let action = match &r.action {
            Some(Action::Route(ra)) => {
                RouteAction::Forward(super::route_action::forward(ra).map_err(|e| e.at("route"))?)
            }
            Some(Action::DirectResponse(d)) => RouteAction::DirectResponse {
                status: u16::try_from(d.status)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| {
                        ConvertError::invalid("direct_response.status", d.status.to_string())
                    })?,
                body: d
                    .body
                    .as_ref()
                    .map(body)
                    .transpose()
                    .map_err(|e| e.at("direct_response.body"))?,
            },
            Some(Action::Redirect(rd)) => {
                RouteAction::Redirect(redirect(rd, &matcher).map_err(|e| e.at("redirect"))?)
            }
            Some(_) => return Err(ConvertError::unsupported("route action")),
            None => return Err(ConvertError::Missing("action")),
        };
        let rule = metadata_string(r.metadata.as_ref(), ISTIO_METADATA, CONFIG_FIELD)
            .map(|path| describe_config_path(&path).unwrap_or(path));
        Ok(Route {
            name: r.name.clone(),
            matcher,
            action,
            headers: mutations(
                &r.request_headers_to_add,
                &r.request_headers_to_remove,
                &r.response_headers_to_add,
                &r.response_headers_to_remove,
            )?,
            filter_overrides: filter_overrides(&r.typed_per_filter_config)?,
            rule,
            mesh_reason: metadata_string(r.metadata.as_ref(), MESH_METADATA, REASON_FIELD),
            buffer_limit: buffer_limit(
                r.request_body_buffer_limit.as_ref(),
                r.per_request_buffer_limit_bytes.as_ref(),
            ),
        })
    }
}

fn body(ds: &DataSource) -> Result<String, ConvertError> {
    match &ds.specifier {
        Some(data_source::Specifier::InlineString(s)) => Ok(s.clone()),
        Some(data_source::Specifier::InlineBytes(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(_) => Err(ConvertError::unsupported("body source (only inline)")),
        None => Ok(String::new()),
    }
}

impl TryFrom<&XdsRouteMatch> for RouteMatch {
    type Error = ConvertError;

    fn try_from(m: &XdsRouteMatch) -> Result<Self, ConvertError> {
        let full_share = m
            .runtime_fraction
            .as_ref()
            .is_none_or(|f| super::runtime_fraction(f).is_ok_and(|f| f.numerator >= f.denominator));
        refuse_set(&[
            (!full_share, "runtime_fraction below 100%"),
            (!m.cookies.is_empty(), "cookies"),
            (m.grpc.is_some(), "grpc"),
            (m.tls_context.is_some(), "tls_context"),
            (!m.dynamic_metadata.is_empty(), "dynamic_metadata"),
            (!m.filter_state.is_empty(), "filter_state"),
        ])?;
        let path = match &m.path_specifier {
            Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
            Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
            Some(PathSpecifier::SafeRegex(re)) => {
                PathMatch::Regex(compile_whole_match(&re.regex).map_err(|e| e.at("safe_regex"))?)
            }
            Some(PathSpecifier::PathSeparatedPrefix(p)) => {
                PathMatch::PathSeparatedPrefix(p.clone())
            }
            Some(_) => return Err(ConvertError::unsupported("path specifier")),
            None => return Err(ConvertError::Missing("path specifier")),
        };
        let query_parameters = m
            .query_parameters
            .iter()
            .enumerate()
            .map(|(i, q)| query_matcher(q).map_err(|e| e.at(format!("query_parameters[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(RouteMatch {
            path,
            case_sensitive: bool_or(m.case_sensitive.as_ref(), true),
            headers: header_matchers(&m.headers, "headers")?,
            query_parameters,
        })
    }
}

fn query_matcher(q: &XdsQueryMatcher) -> Result<QueryParameterMatcher, ConvertError> {
    if q.name.is_empty() {
        return Err(ConvertError::Missing("name"));
    }
    let kind = match &q.query_parameter_match_specifier {
        Some(QueryParameterMatchSpecifier::StringMatch(sm)) => {
            string_match(sm).map_err(|e| e.at("string_match"))?
        }
        Some(QueryParameterMatchSpecifier::PresentMatch(true)) => HeaderMatchKind::Present(true),
        Some(QueryParameterMatchSpecifier::PresentMatch(false)) => {
            return Err(ConvertError::invalid("present_match", "must be true"))
        }
        // Envoy: no specifier means "the parameter is present".
        None => HeaderMatchKind::Present(true),
    };
    Ok(QueryParameterMatcher {
        name: q.name.clone(),
        kind,
    })
}

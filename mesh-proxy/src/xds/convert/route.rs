//! xDS conversion of RDS resources (and route configs inlined in an HCM):
//! `RouteConfiguration`, virtual hosts, routes, their matches and actions.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, route::Action, route_action, route_match::PathSpecifier,
    HeaderMatcher as XdsHeaderMatcher, Route as XdsRoute, RouteAction as XdsRouteAction,
    RouteConfiguration, RouteMatch as XdsRouteMatch, VirtualHost as XdsVirtualHost,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use regex::Regex;

use super::{bool_or, duration};
use crate::model::{
    ClusterTarget, Forward, HeaderMatchKind, HeaderMatcher, PathMatch, Route, RouteAction,
    RouteConfig, RouteMatch, VirtualHost, WeightedCluster,
};
use crate::xds::error::ConvertError;

/// Envoy's route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// Compiles an Envoy `safe_regex` (RE2 syntax, matching the WHOLE input) for
/// the `regex` crate, whose matches are otherwise unanchored.
pub fn compile_whole_match(re: &str) -> Result<Regex, ConvertError> {
    Regex::new(&format!("^(?:{re})$")).map_err(|source| ConvertError::Regex {
        regex: re.to_owned(),
        source: Box::new(source),
    })
}

/// Refuses the first of `fields` that is set: each is something the proxy
/// would otherwise accept and then silently not do.
fn refuse_set(fields: &[(bool, &'static str)]) -> Result<(), ConvertError> {
    match fields.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(ConvertError::unsupported(*what)),
        None => Ok(()),
    }
}

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
                !rc.request_headers_to_add.is_empty(),
                "request_headers_to_add",
            ),
            (
                !rc.request_headers_to_remove.is_empty(),
                "request_headers_to_remove",
            ),
            (
                !rc.response_headers_to_add.is_empty(),
                "response_headers_to_add",
            ),
            (
                !rc.response_headers_to_remove.is_empty(),
                "response_headers_to_remove",
            ),
            (
                !rc.request_mirror_policies.is_empty(),
                "request_mirror_policies",
            ),
        ])?;
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
        })
    }
}

impl TryFrom<&XdsVirtualHost> for VirtualHost {
    type Error = ConvertError;

    fn try_from(vh: &XdsVirtualHost) -> Result<Self, ConvertError> {
        refuse_set(&[
            (vh.matcher.is_some(), "matcher"),
            (vh.require_tls != 0, "require_tls"),
            (
                !vh.request_headers_to_add.is_empty(),
                "request_headers_to_add",
            ),
            (
                !vh.request_headers_to_remove.is_empty(),
                "request_headers_to_remove",
            ),
            (
                !vh.response_headers_to_add.is_empty(),
                "response_headers_to_add",
            ),
            (
                !vh.response_headers_to_remove.is_empty(),
                "response_headers_to_remove",
            ),
            (vh.retry_policy.is_some(), "retry_policy"),
            (
                vh.retry_policy_typed_config.is_some(),
                "retry_policy_typed_config",
            ),
            (vh.hedge_policy.is_some(), "hedge_policy"),
            (
                !vh.request_mirror_policies.is_empty(),
                "request_mirror_policies",
            ),
        ])?;
        if vh.domains.is_empty() {
            return Err(ConvertError::Missing("domains"));
        }
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
        })
    }
}

impl TryFrom<&XdsRoute> for Route {
    type Error = ConvertError;

    fn try_from(r: &XdsRoute) -> Result<Self, ConvertError> {
        refuse_set(&[
            (
                !r.request_headers_to_add.is_empty(),
                "request_headers_to_add",
            ),
            (
                !r.request_headers_to_remove.is_empty(),
                "request_headers_to_remove",
            ),
            (
                !r.response_headers_to_add.is_empty(),
                "response_headers_to_add",
            ),
            (
                !r.response_headers_to_remove.is_empty(),
                "response_headers_to_remove",
            ),
        ])?;
        let m = r.r#match.as_ref().ok_or(ConvertError::Missing("match"))?;
        let matcher = RouteMatch::try_from(m).map_err(|e| e.at("match"))?;
        let action = match &r.action {
            Some(Action::Route(ra)) => {
                RouteAction::Forward(Forward::try_from(ra).map_err(|e| e.at("route"))?)
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
            Some(Action::Redirect(_)) => return Err(ConvertError::unsupported("redirect")),
            Some(_) => return Err(ConvertError::unsupported("route action")),
            None => return Err(ConvertError::Missing("action")),
        };
        Ok(Route {
            name: r.name.clone(),
            matcher,
            action,
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
        refuse_set(&[
            (m.runtime_fraction.is_some(), "runtime_fraction"),
            (!m.query_parameters.is_empty(), "query_parameters"),
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
        let headers = m
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::try_from(h).map_err(|e| e.at(format!("headers[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(RouteMatch {
            path,
            case_sensitive: bool_or(m.case_sensitive.as_ref(), true),
            headers,
        })
    }
}

// Envoy still accepts the deprecated `*_match` forms, and so do we.
#[allow(deprecated)]
impl TryFrom<&XdsHeaderMatcher> for HeaderMatcher {
    type Error = ConvertError;

    fn try_from(h: &XdsHeaderMatcher) -> Result<Self, ConvertError> {
        if h.name.is_empty() {
            return Err(ConvertError::Missing("name"));
        }
        if h.treat_missing_header_as_empty {
            return Err(ConvertError::unsupported("treat_missing_header_as_empty"));
        }
        let kind = match &h.header_match_specifier {
            Some(HeaderMatchSpecifier::StringMatch(sm)) => {
                string_match(sm).map_err(|e| e.at("string_match"))?
            }
            Some(HeaderMatchSpecifier::ExactMatch(v)) => HeaderMatchKind::Exact(v.clone()),
            Some(HeaderMatchSpecifier::PrefixMatch(v)) => HeaderMatchKind::Prefix(v.clone()),
            Some(HeaderMatchSpecifier::SuffixMatch(v)) => HeaderMatchKind::Suffix(v.clone()),
            Some(HeaderMatchSpecifier::ContainsMatch(v)) => HeaderMatchKind::Contains(v.clone()),
            Some(HeaderMatchSpecifier::SafeRegexMatch(re)) => HeaderMatchKind::Regex(
                compile_whole_match(&re.regex).map_err(|e| e.at("safe_regex_match"))?,
            ),
            Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderMatchKind::Present(*p),
            Some(HeaderMatchSpecifier::RangeMatch(_)) => {
                return Err(ConvertError::unsupported("range_match"))
            }
            // Envoy: no specifier means "the header is present".
            None => HeaderMatchKind::Present(true),
        };
        Ok(HeaderMatcher {
            name: h.name.to_ascii_lowercase(),
            kind,
            invert: h.invert_match,
        })
    }
}

/// A `StringMatcher`; `ignore_case` turns literal matches into a
/// case-insensitive regex, since the model's literals are case sensitive.
fn string_match(sm: &StringMatcher) -> Result<HeaderMatchKind, ConvertError> {
    let pattern = sm
        .match_pattern
        .as_ref()
        .ok_or(ConvertError::Missing("match_pattern"))?;
    if let MatchPattern::SafeRegex(re) = pattern {
        return compile_whole_match(&re.regex)
            .map(HeaderMatchKind::Regex)
            .map_err(|e| e.at("safe_regex"));
    }
    let literal = |s: &String, kind: fn(String) -> HeaderMatchKind, re: fn(&str) -> String| {
        if sm.ignore_case {
            compile_whole_match(&format!("(?i:{})", re(&regex::escape(s))))
                .map(HeaderMatchKind::Regex)
        } else {
            Ok(kind(s.clone()))
        }
    };
    match pattern {
        MatchPattern::Exact(s) => literal(s, HeaderMatchKind::Exact, |e| e.to_owned()),
        MatchPattern::Prefix(s) => literal(s, HeaderMatchKind::Prefix, |e| format!("{e}.*")),
        MatchPattern::Suffix(s) => literal(s, HeaderMatchKind::Suffix, |e| format!(".*{e}")),
        MatchPattern::Contains(s) => literal(s, HeaderMatchKind::Contains, |e| format!(".*{e}.*")),
        MatchPattern::SafeRegex(_) | MatchPattern::Custom(_) => {
            Err(ConvertError::unsupported("custom string matcher"))
        }
    }
}

impl TryFrom<&XdsRouteAction> for Forward {
    type Error = ConvertError;

    fn try_from(ra: &XdsRouteAction) -> Result<Self, ConvertError> {
        refuse_set(&[
            (ra.retry_policy.is_some(), "retry_policy"),
            (
                ra.retry_policy_typed_config.is_some(),
                "retry_policy_typed_config",
            ),
            (ra.hedge_policy.is_some(), "hedge_policy"),
            (
                !ra.request_mirror_policies.is_empty(),
                "request_mirror_policies",
            ),
            (!ra.upgrade_configs.is_empty(), "upgrade_configs"),
            (ra.metadata_match.is_some(), "metadata_match"),
            (ra.append_x_forwarded_host, "append_x_forwarded_host"),
            (
                ra.cluster_not_found_response_code != 0,
                "cluster_not_found_response_code",
            ),
        ])?;
        let target = match &ra.cluster_specifier {
            Some(route_action::ClusterSpecifier::Cluster(c)) if !c.is_empty() => {
                ClusterTarget::Cluster(c.clone())
            }
            Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                let mut arms = Vec::with_capacity(w.clusters.len());
                for (i, c) in w.clusters.iter().enumerate() {
                    let at = || format!("weighted_clusters.clusters[{i}]");
                    if c.name.is_empty() {
                        let e = ConvertError::Missing("name (cluster_header is unsupported)");
                        return Err(e.at(at()));
                    }
                    refuse_set(&[
                        (
                            !c.request_headers_to_add.is_empty(),
                            "request_headers_to_add",
                        ),
                        (
                            !c.request_headers_to_remove.is_empty(),
                            "request_headers_to_remove",
                        ),
                        (
                            !c.response_headers_to_add.is_empty(),
                            "response_headers_to_add",
                        ),
                        (
                            !c.response_headers_to_remove.is_empty(),
                            "response_headers_to_remove",
                        ),
                        (c.host_rewrite_specifier.is_some(), "host_rewrite"),
                        (c.metadata_match.is_some(), "metadata_match"),
                    ])
                    .map_err(|e| e.at(at()))?;
                    arms.push(WeightedCluster {
                        name: c.name.clone(),
                        weight: c.weight.as_ref().map_or(0, |w| w.value),
                    });
                }
                if arms.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0 {
                    return Err(ConvertError::invalid(
                        "weighted_clusters",
                        "total weight is 0",
                    ));
                }
                ClusterTarget::Weighted(arms)
            }
            Some(route_action::ClusterSpecifier::Cluster(_)) | None => {
                return Err(ConvertError::Missing("cluster"))
            }
            Some(_) => return Err(ConvertError::unsupported("cluster specifier")),
        };
        let host_rewrite = match &ra.host_rewrite_specifier {
            Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(h)) => Some(h.clone()),
            Some(_) => return Err(ConvertError::unsupported("host rewrite (only literal)")),
            None => None,
        };
        if ra.regex_rewrite.is_some() || !ra.path_rewrite.is_empty() {
            return Err(ConvertError::unsupported(
                "path rewrite (only prefix_rewrite)",
            ));
        }
        // Envoy: unset means 15s, zero means no limit.
        let timeout = match &ra.timeout {
            None => Some(DEFAULT_ROUTE_TIMEOUT),
            Some(t) => Some(duration(t).map_err(|e| e.at("timeout"))?).filter(|d| !d.is_zero()),
        };
        Ok(Forward {
            target,
            prefix_rewrite: Some(ra.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
            host_rewrite,
            timeout,
        })
    }
}

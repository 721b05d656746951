//! xDS conversion of route actions: forwarding (`RouteAction` with its
//! weighted clusters, rewrites, timeouts, retry, mirror and hash policies)
//! and redirects (`RedirectAction`).

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    route_action::{
        self, hash_policy::PolicySpecifier, ClusterNotFoundResponseCode, HashPolicy as XdsHash,
        RequestMirrorPolicy,
    },
    weighted_cluster::cluster_weight,
    RedirectAction, RetryPolicy as XdsRetryPolicy, RouteAction as XdsRouteAction,
};

use super::headers::mutations;
use super::matchers::{header_matchers, regex_rewrite};
use super::refuse_set;
use super::{duration, runtime_fraction};
use crate::model::{
    ClusterArm, ClusterTarget, Forward, Fraction, HashKind, HashPolicy, MirrorPolicy, PathMatch,
    Redirect, RedirectPath, RetryOn, RetryPolicy, RouteMatch, UpgradeOverride, WeightedCluster,
};
use crate::xds::error::ConvertError;

/// Envoy's route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's retry backoff base when the policy sets none.
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
/// The retry host predicate the proxy implements.
const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_HOSTS_TYPE: &str =
    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/// A `RouteAction`.
#[allow(deprecated)]
pub(super) fn forward(ra: &XdsRouteAction) -> Result<Forward, ConvertError> {
    refuse_set(&[
        (
            ra.retry_policy_typed_config.is_some(),
            "retry_policy_typed_config",
        ),
        (ra.hedge_policy.is_some(), "hedge_policy"),
        (ra.metadata_match.is_some(), "metadata_match"),
        (ra.path_rewrite_policy.is_some(), "path_rewrite_policy"),
        (!ra.path_rewrite.is_empty(), "path_rewrite"),
        (ra.flush_timeout.is_some(), "flush_timeout"),
        (ra.early_data_policy.is_some(), "early_data_policy"),
        (!ra.rate_limits.is_empty(), "rate_limits"),
        (ra.cors.is_some(), "cors (use typed_per_filter_config)"),
        (
            ra.internal_redirect_policy.is_some(),
            "internal_redirect_policy",
        ),
        (ra.internal_redirect_action != 0, "internal_redirect_action"),
        (
            ra.max_internal_redirects.is_some(),
            "max_internal_redirects",
        ),
    ])?;
    let (target, arms) = match &ra.cluster_specifier {
        Some(route_action::ClusterSpecifier::Cluster(c)) if !c.is_empty() => {
            (ClusterTarget::Cluster(c.clone()), Vec::new())
        }
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            if !w.runtime_key_prefix.is_empty() || w.random_value_specifier.is_some() {
                return Err(ConvertError::unsupported(
                    "weighted_clusters runtime_key_prefix or header_name",
                ));
            }
            let mut weighted = Vec::with_capacity(w.clusters.len());
            let mut arms = Vec::with_capacity(w.clusters.len());
            for (i, c) in w.clusters.iter().enumerate() {
                let at = || format!("weighted_clusters.clusters[{i}]");
                if c.name.is_empty() {
                    let e = ConvertError::Missing("name (cluster_header is unsupported)");
                    return Err(e.at(at()));
                }
                refuse_set(&[
                    (c.metadata_match.is_some(), "metadata_match"),
                    (
                        !c.typed_per_filter_config.is_empty(),
                        "typed_per_filter_config",
                    ),
                ])
                .map_err(|e| e.at(at()))?;
                let host_rewrite = c.host_rewrite_specifier.as_ref().map(|h| match h {
                    cluster_weight::HostRewriteSpecifier::HostRewriteLiteral(h) => h.clone(),
                });
                let headers = mutations(
                    &c.request_headers_to_add,
                    &c.request_headers_to_remove,
                    &c.response_headers_to_add,
                    &c.response_headers_to_remove,
                )
                .map_err(|e| e.at(at()))?;
                weighted.push(WeightedCluster {
                    name: c.name.clone(),
                    weight: c.weight.as_ref().map_or(0, |w| w.value),
                });
                arms.push(ClusterArm {
                    headers,
                    host_rewrite,
                });
            }
            if weighted.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0 {
                return Err(ConvertError::invalid(
                    "weighted_clusters",
                    "total weight is 0",
                ));
            }
            (ClusterTarget::Weighted(weighted), arms)
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
    if ra.regex_rewrite.is_some() && !ra.prefix_rewrite.is_empty() {
        return Err(ConvertError::invalid(
            "regex_rewrite",
            "set together with prefix_rewrite",
        ));
    }
    let regex_rewrite = ra
        .regex_rewrite
        .as_ref()
        .map(|r| regex_rewrite(r).map_err(|e| e.at("regex_rewrite")))
        .transpose()?;
    let optional = |d: Option<&envoy_types::pb::google::protobuf::Duration>, at: &'static str| {
        d.map(|d| duration(d).map_err(|e| e.at(at))).transpose()
    };
    // Envoy: unset means 15s, zero means no limit.
    let timeout = match &ra.timeout {
        None => Some(DEFAULT_ROUTE_TIMEOUT),
        Some(t) => Some(duration(t).map_err(|e| e.at("timeout"))?).filter(|d| !d.is_zero()),
    };
    let (max_stream_duration, grpc_timeout_header_max, grpc_timeout_header_offset) =
        match &ra.max_stream_duration {
            Some(m) => (
                optional(m.max_stream_duration.as_ref(), "max_stream_duration")?
                    .filter(|d| !d.is_zero()),
                optional(
                    m.grpc_timeout_header_max.as_ref(),
                    "grpc_timeout_header_max",
                )?,
                optional(
                    m.grpc_timeout_header_offset.as_ref(),
                    "grpc_timeout_header_offset",
                )?,
            ),
            None => (None, None, None),
        };
    let cluster_not_found_status =
        match ClusterNotFoundResponseCode::try_from(ra.cluster_not_found_response_code) {
            Ok(ClusterNotFoundResponseCode::ServiceUnavailable) => 503,
            Ok(ClusterNotFoundResponseCode::NotFound) => 404,
            Ok(ClusterNotFoundResponseCode::InternalServerError) => 500,
            Err(_) => {
                return Err(ConvertError::invalid(
                    "cluster_not_found_response_code",
                    ra.cluster_not_found_response_code.to_string(),
                ))
            }
        };
    let mirrors = ra
        .request_mirror_policies
        .iter()
        .enumerate()
        .map(|(i, m)| mirror(m).map_err(|e| e.at(format!("request_mirror_policies[{i}]"))))
        .collect::<Result<_, _>>()?;
    let hash_policy = ra
        .hash_policy
        .iter()
        .enumerate()
        .map(|(i, h)| hash(h).map_err(|e| e.at(format!("hash_policy[{i}]"))))
        .collect::<Result<_, _>>()?;
    let upgrades =
        ra.upgrade_configs
            .iter()
            .enumerate()
            .map(|(i, u)| {
                if u.connect_config.is_some() || u.upgrade_type.eq_ignore_ascii_case("connect") {
                    return Err(ConvertError::unsupported("connect_config")
                        .at(format!("upgrade_configs[{i}]")));
                }
                Ok(UpgradeOverride {
                    upgrade_type: u.upgrade_type.to_ascii_lowercase(),
                    enabled: u.enabled.as_ref().is_none_or(|e| e.value),
                })
            })
            .collect::<Result<_, _>>()?;
    Ok(Forward {
        target,
        arms,
        prefix_rewrite: Some(ra.prefix_rewrite.clone()).filter(|p| !p.is_empty()),
        regex_rewrite,
        host_rewrite,
        append_x_forwarded_host: ra.append_x_forwarded_host,
        timeout,
        idle_timeout: optional(ra.idle_timeout.as_ref(), "idle_timeout")?.filter(|d| !d.is_zero()),
        max_stream_duration,
        grpc_timeout_header_max,
        grpc_timeout_header_offset,
        max_grpc_timeout: optional(ra.max_grpc_timeout.as_ref(), "max_grpc_timeout")?,
        grpc_timeout_offset: optional(ra.grpc_timeout_offset.as_ref(), "grpc_timeout_offset")?,
        cluster_not_found_status,
        retry_policy: ra
            .retry_policy
            .as_ref()
            .map(|p| retry_policy(p).map_err(|e| e.at("retry_policy")))
            .transpose()?,
        mirrors,
        hash_policy,
        upgrades,
    })
}

fn mirror(m: &RequestMirrorPolicy) -> Result<MirrorPolicy, ConvertError> {
    refuse_set(&[
        (!m.cluster_header.is_empty(), "cluster_header"),
        (
            !m.request_headers_mutations.is_empty(),
            "request_headers_mutations",
        ),
        (!m.host_rewrite_literal.is_empty(), "host_rewrite_literal"),
    ])?;
    if m.cluster.is_empty() {
        return Err(ConvertError::Missing("cluster"));
    }
    // `trace_sampled` only decides whether the copy's span is sampled; the
    // proxy makes no spans.
    Ok(MirrorPolicy {
        cluster: m.cluster.clone(),
        fraction: match &m.runtime_fraction {
            Some(f) => runtime_fraction(f).map_err(|e| e.at("runtime_fraction"))?,
            None => Fraction::ALL,
        },
        disable_shadow_host_suffix_append: m.disable_shadow_host_suffix_append,
    })
}

fn hash(h: &XdsHash) -> Result<HashPolicy, ConvertError> {
    let kind = match &h.policy_specifier {
        Some(PolicySpecifier::Header(header)) => {
            if header.regex_rewrite.is_some() {
                return Err(ConvertError::unsupported("header.regex_rewrite"));
            }
            HashKind::Header(header.header_name.to_ascii_lowercase())
        }
        Some(PolicySpecifier::Cookie(c)) => {
            if c.name.is_empty() {
                return Err(ConvertError::Missing("cookie.name"));
            }
            HashKind::Cookie {
                name: c.name.clone(),
                ttl: c
                    .ttl
                    .as_ref()
                    .map(|t| duration(t).map_err(|e| e.at("cookie.ttl")))
                    .transpose()?,
                path: Some(c.path.clone()).filter(|p| !p.is_empty()),
                attributes: c
                    .attributes
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect(),
            }
        }
        Some(PolicySpecifier::ConnectionProperties(c)) if c.source_ip => HashKind::SourceIp,
        Some(PolicySpecifier::ConnectionProperties(_)) => {
            return Err(ConvertError::invalid(
                "connection_properties",
                "source_ip is false",
            ))
        }
        Some(PolicySpecifier::QueryParameter(q)) => HashKind::QueryParameter(q.name.clone()),
        Some(PolicySpecifier::FilterState(_)) => {
            return Err(ConvertError::unsupported("filter_state"))
        }
        None => return Err(ConvertError::Missing("policy_specifier")),
    };
    Ok(HashPolicy {
        kind,
        terminal: h.terminal,
    })
}

/// A `RetryPolicy`, with Envoy's defaults.
pub(super) fn retry_policy(p: &XdsRetryPolicy) -> Result<Arc<RetryPolicy>, ConvertError> {
    refuse_set(&[
        (p.retry_priority.is_some(), "retry_priority"),
        (
            p.rate_limited_retry_back_off.is_some(),
            "rate_limited_retry_back_off",
        ),
        (
            !p.retry_options_predicates.is_empty(),
            "retry_options_predicates",
        ),
        (p.refresh_cluster_on_retry, "refresh_cluster_on_retry"),
    ])?;
    let mut on = RetryOn::default();
    for condition in p
        .retry_on
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let flag = match condition {
            "5xx" => &mut on.server_error,
            "gateway-error" => &mut on.gateway_error,
            "reset" => &mut on.reset,
            "reset-before-request" => &mut on.reset_before_request,
            "connect-failure" => &mut on.connect_failure,
            "retriable-4xx" => &mut on.retriable_4xx,
            "refused-stream" => &mut on.refused_stream,
            "retriable-status-codes" => &mut on.retriable_status_codes,
            "retriable-headers" => &mut on.retriable_headers,
            "envoy-ratelimited" => &mut on.envoy_ratelimited,
            "http3-post-connect-failure" => &mut on.http3_post_connect_failure,
            "cancelled" => &mut on.grpc_cancelled,
            "deadline-exceeded" => &mut on.grpc_deadline_exceeded,
            "internal" => &mut on.grpc_internal,
            "resource-exhausted" => &mut on.grpc_resource_exhausted,
            "unavailable" => &mut on.grpc_unavailable,
            other => return Err(ConvertError::unsupported(format!("retry_on {other:?}"))),
        };
        *flag = true;
    }
    let mut previous_hosts = false;
    for (i, predicate) in p.retry_host_predicate.iter().enumerate() {
        use envoy_types::pb::envoy::config::route::v3::retry_policy::retry_host_predicate::ConfigType;
        let kind = match &predicate.config_type {
            Some(ConfigType::TypedConfig(any)) => super::type_name(&any.type_url).to_owned(),
            None => predicate.name.clone(),
        };
        if kind == PREVIOUS_HOSTS || kind == PREVIOUS_HOSTS_TYPE {
            previous_hosts = true;
        } else {
            return Err(
                ConvertError::unsupported(format!("retry host predicate {kind}"))
                    .at(format!("retry_host_predicate[{i}]")),
            );
        }
    }
    let retriable_status_codes = p
        .retriable_status_codes
        .iter()
        .map(|c| {
            u16::try_from(*c)
                .ok()
                .filter(|c| (100..600).contains(c))
                .ok_or_else(|| ConvertError::invalid("retriable_status_codes", c.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let (backoff_base, backoff_max) = match &p.retry_back_off {
        Some(b) => {
            let base = b
                .base_interval
                .as_ref()
                .map(|d| duration(d).map_err(|e| e.at("retry_back_off.base_interval")))
                .transpose()?
                .ok_or(ConvertError::Missing("retry_back_off.base_interval"))?;
            if base.is_zero() {
                return Err(ConvertError::invalid(
                    "retry_back_off.base_interval",
                    "zero",
                ));
            }
            let max = b
                .max_interval
                .as_ref()
                .map(|d| duration(d).map_err(|e| e.at("retry_back_off.max_interval")))
                .transpose()?
                .unwrap_or(base * 10);
            if max < base {
                return Err(ConvertError::invalid(
                    "retry_back_off.max_interval",
                    "below base_interval",
                ));
            }
            (base, max)
        }
        None => (DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_BASE * 10),
    };
    let optional = |d: Option<&envoy_types::pb::google::protobuf::Duration>, at: &'static str| {
        d.map(|d| duration(d).map_err(|e| e.at(at)))
            .transpose()
            .map(|d| d.filter(|d| !d.is_zero()))
    };
    Ok(Arc::new(RetryPolicy {
        on,
        num_retries: p.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: optional(p.per_try_timeout.as_ref(), "per_try_timeout")?,
        per_try_idle_timeout: optional(p.per_try_idle_timeout.as_ref(), "per_try_idle_timeout")?,
        retriable_status_codes,
        retriable_headers: header_matchers(&p.retriable_headers, "retriable_headers")?,
        retriable_request_headers: header_matchers(
            &p.retriable_request_headers,
            "retriable_request_headers",
        )?,
        previous_hosts,
        host_selection_max_attempts: u32::try_from(p.host_selection_retry_max_attempts.max(1))
            .unwrap_or(u32::MAX),
        backoff_base,
        backoff_max,
    }))
}

/// A `RedirectAction`; `matcher` is the route's, for `prefix_rewrite`.
pub(super) fn redirect(r: &RedirectAction, matcher: &RouteMatch) -> Result<Redirect, ConvertError> {
    let scheme = match &r.scheme_rewrite_specifier {
        Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".to_owned()),
        Some(SchemeRewriteSpecifier::HttpsRedirect(false)) => None,
        Some(SchemeRewriteSpecifier::SchemeRedirect(s)) if !s.is_empty() => {
            Some(s.to_ascii_lowercase())
        }
        Some(SchemeRewriteSpecifier::SchemeRedirect(_)) | None => None,
    };
    let path = match &r.path_rewrite_specifier {
        Some(PathRewriteSpecifier::PathRedirect(p)) => Some(RedirectPath::Path(p.clone())),
        Some(PathRewriteSpecifier::PrefixRewrite(p)) => {
            if matches!(matcher.path, PathMatch::Regex(_)) {
                return Err(ConvertError::invalid(
                    "prefix_rewrite",
                    "not allowed on a regex route",
                ));
            }
            Some(RedirectPath::Prefix(p.clone()))
        }
        Some(PathRewriteSpecifier::RegexRewrite(re)) => Some(RedirectPath::Regex(
            regex_rewrite(re).map_err(|e| e.at("regex_rewrite"))?,
        )),
        Some(PathRewriteSpecifier::PathRewrite(_)) => {
            return Err(ConvertError::unsupported("path_rewrite"))
        }
        None => None,
    };
    let status = match RedirectResponseCode::try_from(r.response_code) {
        Ok(RedirectResponseCode::MovedPermanently) => 301,
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => {
            return Err(ConvertError::invalid(
                "response_code",
                r.response_code.to_string(),
            ))
        }
    };
    let port = match r.port_redirect {
        0 => None,
        p => Some(
            u16::try_from(p).map_err(|_| ConvertError::invalid("port_redirect", p.to_string()))?,
        ),
    };
    Ok(Redirect {
        scheme,
        host: Some(r.host_redirect.clone()).filter(|h| !h.is_empty()),
        port,
        path,
        status,
        strip_query: r.strip_query,
    })
}

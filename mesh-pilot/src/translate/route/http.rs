//! HTTP routes from VirtualServices, shared by every route config kind:
//! each `http[i]` and each of its matches that applies here becomes one
//! Envoy route, with its action (forward, redirect or direct response),
//! header operations, per-filter configs (fault, CORS) and the
//! `istio.config` metadata that names the VirtualService.
//!
//! ```text
//!  http[i] ─► for each match (or one catch-all) ─► Route { match: matching.rs,
//!                                                         action: route_action | redirect | direct,
//!                                                         policies: policy.rs }
//! ```

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action, route, route_action, weighted_cluster, DirectResponseAction, RedirectAction,
    Route, RouteAction, WeightedCluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use mesh_api::names;
use mesh_api::types::http_policy::{HttpRedirect, RedirectPortSelection};
use mesh_api::{fqdn, Destination, HttpMatchRequest, HttpRoute, VirtualServiceSpec};

use super::matching::{prefix_match, regex, route_match};
use super::policy::{self, HeaderOps};
use super::Context;
use crate::push::index::{names_gateway, MESH_GATEWAY};
use crate::source::Named;
use crate::translate::filters::{
    config_metadata, duration, proto_map, seconds, typed_config, CORS_FILTER, FAULT_FILTER,
};

/// The routes of a VirtualService's `http` entries that apply in `ctx`.
pub(super) fn vs_routes(vs: &Named<'_, VirtualServiceSpec>, ctx: &Context<'_>) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, http) in vs.spec.http.iter().enumerate() {
        let base = route_base(http, vs, ctx);
        let name = format!("{}.http[{i}]", vs.name);
        let route = |m: Option<&HttpMatchRequest>| Route {
            name: name.clone(),
            r#match: Some(m.map_or_else(|| prefix_match("/"), route_match)),
            ..base.clone()
        };
        if http.matches.is_empty() {
            out.push(route(None));
        }
        for m in http
            .matches
            .iter()
            .filter(|m| applies(m, vs.namespace, ctx))
        {
            out.push(route(Some(m)));
        }
    }
    out
}

/// Everything of a route but its name and match.
fn route_base(http: &HttpRoute, vs: &Named<'_, VirtualServiceSpec>, ctx: &Context<'_>) -> Route {
    let mut out = Route {
        metadata: Some(config_metadata("VirtualService", vs.namespace, vs.name)),
        ..Default::default()
    };
    let mut authority = None;
    if let Some(h) = &http.headers {
        let ops = HeaderOps::of(h);
        out.request_headers_to_add = ops.request_add;
        out.request_headers_to_remove = ops.request_remove;
        out.response_headers_to_add = ops.response_add;
        out.response_headers_to_remove = ops.response_remove;
        authority = ops.authority;
    }
    out.action = Some(if let Some(r) = &http.redirect {
        route::Action::Redirect(redirect(r, ctx))
    } else if let Some(direct) = &http.direct_response {
        route::Action::DirectResponse(DirectResponseAction {
            status: direct.status,
            body: direct.body.as_ref().and_then(|b| {
                let specifier = match (&b.string, &b.bytes) {
                    (Some(s), _) => data_source::Specifier::InlineString(s.clone()),
                    (None, Some(base64)) => {
                        data_source::Specifier::InlineBytes(decode_base64(base64)?)
                    }
                    (None, None) => return None,
                };
                Some(DataSource {
                    specifier: Some(specifier),
                    ..Default::default()
                })
            }),
            ..Default::default()
        })
    } else {
        route::Action::Route(route_action(http, vs.namespace, ctx, authority, &mut out))
    });
    let mut per_filter: HashMap<String, Any> = proto_map();
    if let Some(f) = http.fault.as_ref().and_then(policy::fault) {
        per_filter.insert(FAULT_FILTER.to_string(), typed_config(&f));
    }
    if let Some(c) = &http.cors_policy {
        per_filter.insert(CORS_FILTER.to_string(), typed_config(&policy::cors(c)));
    }
    out.typed_per_filter_config = per_filter;
    out
}

/// Whether a match's own conditions on who is asking hold for this context.
fn applies(m: &HttpMatchRequest, vs_namespace: &str, ctx: &Context<'_>) -> bool {
    let port_ok = m.port.is_none_or(|p| p == ctx.port);
    let gateway_ok = m.gateways.is_empty()
        || match ctx.gateway {
            None => m.gateways.iter().any(|g| g == MESH_GATEWAY),
            Some(gw) => m
                .gateways
                .iter()
                .any(|g| names_gateway(g, vs_namespace, gw)),
        };
    port_ok && gateway_ok && ctx.source.matches(ctx.push, m)
}

/// Where a forwarding route sends requests, and its policies: timeout,
/// rewrites, retries, mirrors, hash keys; per-destination headers go on
/// the route (one destination) or the weighted cluster.
fn route_action(
    http: &HttpRoute,
    vs_namespace: &str,
    ctx: &Context<'_>,
    mut authority: Option<String>,
    out: &mut Route,
) -> RouteAction {
    let timeout = http.timeout.map_or(seconds(0), |t| duration(t.0));
    let mut action = RouteAction {
        timeout: Some(timeout),
        // The deprecated field Istio still sets: a gRPC client's own
        // deadline is honoured up to the route's timeout (0: any).
        #[allow(deprecated)]
        max_grpc_timeout: Some(timeout),
        ..Default::default()
    };
    if let Some(rw) = &http.rewrite {
        if let Some(rr) = &rw.uri_regex_rewrite {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex(&rr.pattern)),
                substitution: rr.rewrite.clone(),
            });
        } else if let Some(uri) = &rw.uri {
            action.prefix_rewrite = uri.clone();
        }
        if rw.authority.is_some() {
            authority = rw.authority.clone();
        }
    }
    let mirrors = http
        .mirror
        .iter()
        .filter_map(|m| {
            policy::mirror_fraction(http.mirror_percentage.as_ref(), http.mirror_percent)
                .map(|f| (m, f))
        })
        .chain(http.mirrors.iter().filter_map(|m| {
            let fraction = match &m.percentage {
                Some(p) => (p.value > 0.0).then(|| policy::percent(p))?,
                None => policy::mirror_fraction(None, None)?,
            };
            Some((&m.destination, fraction))
        }));
    for (dest, fraction) in mirrors {
        let host = fqdn(&dest.host, vs_namespace);
        action
            .request_mirror_policies
            .push(policy::mirror(cluster_name(dest, &host, ctx), fraction));
    }
    let mut hashed = false;
    let dests: Vec<&mesh_api::HttpRouteDestination> = http
        .route
        .iter()
        .filter(|d| d.destination.is_some())
        .collect();
    match dests.as_slice() {
        [one] => {
            let dest = one.destination.as_ref().expect("filtered");
            let host = fqdn(&dest.host, vs_namespace);
            action.cluster_specifier = Some(route_action::ClusterSpecifier::Cluster(cluster_name(
                dest, &host, ctx,
            )));
            if let Some(h) = &one.headers {
                let ops = HeaderOps::of(h);
                out.request_headers_to_add.extend(ops.request_add);
                out.request_headers_to_remove.extend(ops.request_remove);
                out.response_headers_to_add.extend(ops.response_add);
                out.response_headers_to_remove.extend(ops.response_remove);
                authority = authority.or(ops.authority);
            }
            if let Some(hash) = hash_of(dest, &host, ctx) {
                action.hash_policy.push(hash);
                hashed = true;
            }
        }
        many => {
            let mut clusters = Vec::new();
            for d in many.iter().filter(|d| d.weight.unwrap_or(0) > 0) {
                let dest = d.destination.as_ref().expect("filtered");
                let host = fqdn(&dest.host, vs_namespace);
                let mut weighted = weighted_cluster::ClusterWeight {
                    name: cluster_name(dest, &host, ctx),
                    weight: Some(UInt32Value {
                        value: d.weight.unwrap_or(0),
                    }),
                    ..Default::default()
                };
                if let Some(h) = &d.headers {
                    let ops = HeaderOps::of(h);
                    weighted.request_headers_to_add = ops.request_add;
                    weighted.request_headers_to_remove = ops.request_remove;
                    weighted.response_headers_to_add = ops.response_add;
                    weighted.response_headers_to_remove = ops.response_remove;
                    weighted.host_rewrite_specifier = ops.authority.map(
                        weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
                    );
                }
                if let Some(hash) = hash_of(dest, &host, ctx) {
                    action.hash_policy.push(hash);
                    hashed = true;
                }
                clusters.push(weighted);
            }
            action.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
                WeightedCluster {
                    clusters,
                    ..Default::default()
                },
            ));
        }
    }
    action.host_rewrite_specifier =
        authority.map(route_action::HostRewriteSpecifier::HostRewriteLiteral);
    let mesh_default = ctx.push.config.mesh.default_http_retry_policy.as_ref();
    action.retry_policy = policy::retry_policy(http.retries.as_ref(), mesh_default, hashed);
    action
}

/// The cluster of a destination: `outbound|PORT|SUBSET|HOST`.
fn cluster_name(dest: &Destination, host: &str, ctx: &Context<'_>) -> String {
    let port = dest_port(dest, host, ctx);
    names::outbound_cluster(port, dest.subset.as_deref().unwrap_or(""), host)
}

/// The hash key the DestinationRule of a destination asks for (its
/// subset's policy first, then the rule's, at the destination's port).
fn hash_of(
    dest: &Destination,
    host: &str,
    ctx: &Context<'_>,
) -> Option<envoy_types::pb::envoy::config::route::v3::route_action::HashPolicy> {
    let rule = ctx.push.destination_rule(host)?;
    let policy = rule.policy(
        dest.subset.as_deref().unwrap_or(""),
        dest_port(dest, host, ctx),
    )?;
    policy::hash_policy(policy.load_balancer?.consistent_hash.as_ref()?)
}

/// Destination port: as given, else the service's only port, else the port
/// the request came in on.
fn dest_port(dest: &Destination, host: &str, ctx: &Context<'_>) -> u32 {
    if let Some(p) = dest.port.as_ref().filter(|p| p.number > 0) {
        return p.number;
    }
    match ctx.push.registry.service(host).map(|s| s.ports.as_slice()) {
        Some([only]) => only.number,
        _ => ctx.port,
    }
}

/// A redirect as Istio writes it. `derivePort: FROM_REQUEST_PORT` is the
/// port of the route config being built; the default ports of the scheme
/// are left out of the Location.
fn redirect(r: &HttpRedirect, ctx: &Context<'_>) -> RedirectAction {
    use envoy_types::pb::envoy::config::route::v3::redirect_action::RedirectResponseCode as Code;
    let mut out = RedirectAction {
        host_redirect: r.authority.clone().unwrap_or_default(),
        path_rewrite_specifier: r
            .uri
            .clone()
            .map(redirect_action::PathRewriteSpecifier::PathRedirect),
        scheme_rewrite_specifier: r
            .scheme
            .clone()
            .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
        response_code: match r.redirect_code.unwrap_or(301) {
            302 => Code::Found,
            303 => Code::SeeOther,
            307 => Code::TemporaryRedirect,
            308 => Code::PermanentRedirect,
            _ => Code::MovedPermanently,
        } as i32,
        ..Default::default()
    };
    let port = match (r.port, r.derive_port) {
        (Some(p), _) => Some(p),
        (None, Some(RedirectPortSelection::FromRequestPort)) => Some(ctx.port),
        _ => None,
    };
    if let Some(port) = port {
        let scheme = r
            .scheme
            .as_deref()
            .unwrap_or(if ctx.tls { "https" } else { "http" });
        let default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        out.port_redirect = if default_port { 0 } else { port };
    }
    out
}

/// Standard base64 (with or without padding), as Istio's `bytes` bodies.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

/// The route of a service port no VirtualService routes: all to its
/// cluster, with Istio's default retries.
pub(super) fn default_route(port: u32, host: &str, ctx: &Context<'_>) -> Route {
    let mesh_default = ctx.push.config.mesh.default_http_retry_policy.as_ref();
    // The DestinationRule's consistent hash applies without a
    // VirtualService too, as in Istio.
    let hash = ctx
        .push
        .destination_rule(host)
        .and_then(|rule| rule.policy("", port))
        .and_then(|p| p.load_balancer)
        .and_then(|lb| lb.consistent_hash.as_ref().and_then(policy::hash_policy));
    let hashed = hash.is_some();
    Route {
        name: "default".to_string(),
        r#match: Some(prefix_match("/")),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                names::outbound_cluster(port, "", host),
            )),
            timeout: Some(seconds(0)),
            #[allow(deprecated)]
            max_grpc_timeout: Some(seconds(0)),
            retry_policy: policy::retry_policy(None, mesh_default, hashed),
            hash_policy: hash.into_iter().collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_bodies_decode() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("a$b").is_none());
    }
}

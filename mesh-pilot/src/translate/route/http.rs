//! HTTP routes from VirtualServices: `http[i]` matches to `RouteMatch`es,
//! destinations to (weighted) clusters, shared by every route config kind.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, weighted_cluster, DirectResponseAction, HeaderMatcher, Route,
    RouteAction, RouteMatch, WeightedCluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use mesh_api::names;
use mesh_api::{fqdn, HttpMatchRequest, HttpRoute, VirtualServiceSpec};

use super::Context;
use crate::push::index::{names_gateway, MESH_GATEWAY};
use crate::source::Named;
use crate::translate::filters::{duration, seconds};

/// The routes of a VirtualService's `http` entries that apply in `ctx`.
pub(super) fn vs_routes(vs: &Named<'_, VirtualServiceSpec>, ctx: &Context<'_>) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, http) in vs.spec.http.iter().enumerate() {
        let Some(action) = action(http, vs.namespace, ctx) else {
            tracing::debug!(
                vs = vs.name,
                index = i,
                "http route without destinations or direct response not served yet"
            );
            continue;
        };
        let name = format!("{}.http[{i}]", vs.name);
        let route = |m: RouteMatch| Route {
            name: name.clone(),
            r#match: Some(m),
            action: Some(action.clone()),
            ..Default::default()
        };
        if http.matches.is_empty() {
            out.push(route(prefix_match("/")));
        }
        for m in http
            .matches
            .iter()
            .filter(|m| applies(m, vs.namespace, ctx))
        {
            out.push(route(route_match(m)));
        }
    }
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

/// A match on a path prefix.
pub(super) fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_string())),
        ..Default::default()
    }
}

fn route_match(m: &HttpMatchRequest) -> RouteMatch {
    use mesh_api::StringMatcher as M;
    let path_specifier = match m.uri.as_ref().and_then(|u| u.matcher()) {
        Some(M::Exact(p)) => route_match::PathSpecifier::Path(p.to_string()),
        Some(M::Prefix(p)) => route_match::PathSpecifier::Prefix(p.to_string()),
        Some(M::Regex(r)) => route_match::PathSpecifier::SafeRegex(regex(r)),
        None => route_match::PathSpecifier::Prefix("/".to_string()),
    };
    let mut headers: Vec<HeaderMatcher> = Vec::new();
    let pseudo = [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ];
    for (name, sm) in pseudo {
        if let Some(sm) = sm {
            headers.extend(header(name, sm, false));
        }
    }
    for (name, sm) in &m.headers {
        headers.extend(header(name, sm, false));
    }
    for (name, sm) in &m.without_headers {
        headers.extend(header(name, sm, true));
    }
    RouteMatch {
        path_specifier: Some(path_specifier),
        case_sensitive: m
            .ignore_uri_case
            .filter(|i| *i)
            .map(|_| BoolValue { value: false }),
        headers,
        ..Default::default()
    }
}

fn header(name: &str, sm: &mesh_api::StringMatch, invert: bool) -> Option<HeaderMatcher> {
    use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
    let m = string_matcher(sm)?;
    Some(HeaderMatcher {
        name: name.to_ascii_lowercase(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(m)),
        invert_match: invert,
        ..Default::default()
    })
}

fn string_matcher(sm: &mesh_api::StringMatch) -> Option<StringMatcher> {
    use mesh_api::StringMatcher as M;
    let pattern = match sm.matcher()? {
        M::Exact(s) => string_matcher::MatchPattern::Exact(s.to_string()),
        M::Prefix(s) => string_matcher::MatchPattern::Prefix(s.to_string()),
        M::Regex(s) => string_matcher::MatchPattern::SafeRegex(regex(s)),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

/// The action of an HTTP route: its destinations as one cluster or weighted
/// clusters. `None` when the route has no destination to forward to.
fn route_action(http: &HttpRoute, vs_namespace: &str, ctx: &Context<'_>) -> Option<RouteAction> {
    let dests: Vec<(String, u32)> = http
        .route
        .iter()
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            let host = fqdn(&dest.host, vs_namespace);
            let port = dest_port(dest, &host, ctx);
            let subset = dest.subset.as_deref().unwrap_or("");
            Some((
                names::outbound_cluster(port, subset, &host),
                d.weight.unwrap_or(0),
            ))
        })
        .collect();
    let cluster_specifier = match dests.as_slice() {
        [] => return None,
        [(one, _)] => route_action::ClusterSpecifier::Cluster(one.clone()),
        many => {
            // Envoy rejects weights summing to 0; validation should have
            // caught it, an even split is the least surprising fallback.
            let even = many.iter().all(|(_, w)| *w == 0);
            route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: many
                    .iter()
                    .map(|(name, w)| weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: Some(UInt32Value {
                            value: if even { 1 } else { *w },
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
    };
    let rewrite = http.rewrite.as_ref();
    if rewrite.is_some_and(|r| r.uri_regex_rewrite.is_some()) {
        tracing::debug!("uriRegexRewrite is not translated yet");
    }
    Some(RouteAction {
        cluster_specifier: Some(cluster_specifier),
        timeout: Some(http.timeout.map_or(seconds(0), |t| duration(t.0))),
        // Istio's `rewrite.uri` replaces the matched prefix (or whole path).
        prefix_rewrite: rewrite.and_then(|r| r.uri.clone()).unwrap_or_default(),
        host_rewrite_specifier: rewrite
            .and_then(|r| r.authority.clone())
            .map(route_action::HostRewriteSpecifier::HostRewriteLiteral),
        ..Default::default()
    })
}

/// What a route does: answer directly (`directResponse`) or forward.
fn action(http: &HttpRoute, vs_namespace: &str, ctx: &Context<'_>) -> Option<route::Action> {
    if let Some(direct) = &http.direct_response {
        let body = direct.body.as_ref().and_then(|b| b.string.clone());
        return Some(route::Action::DirectResponse(DirectResponseAction {
            status: direct.status,
            body: body.map(|s| DataSource {
                specifier: Some(data_source::Specifier::InlineString(s)),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
    route_action(http, vs_namespace, ctx).map(route::Action::Route)
}

/// Destination port: as given, else the service's only port, else the port
/// the request came in on.
fn dest_port(dest: &mesh_api::Destination, host: &str, ctx: &Context<'_>) -> u32 {
    if let Some(p) = dest.port.filter(|p| p.number > 0) {
        return p.number;
    }
    match ctx.push.registry.service(host).map(|s| s.ports.as_slice()) {
        Some([only]) => only.number,
        _ => ctx.port,
    }
}

/// The route of a service port no VirtualService routes: all to its
/// cluster.
pub(super) fn default_route(port: u32, host: &str) -> Route {
    Route {
        name: "default".to_string(),
        r#match: Some(prefix_match("/")),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                names::outbound_cluster(port, "", host),
            )),
            timeout: Some(seconds(0)),
            ..Default::default()
        })),
        ..Default::default()
    }
}

//! Per-object checks of a `VirtualService`: hosts and gateways, HTTP routes
//! (matches, destinations and weights, redirect, rewrite, retries, faults,
//! mirrors, CORS), TLS and TCP routes.
//!
//! Part of [`super`]; that hosts may be empty only for a delegate is checked
//! across objects in `cross.rs`.

use super::{
    is_dns1123_label, is_wildcard_host, percent, port_number, regex_syntax, string_match, Ctx,
};
use crate::types::common::{Destination, HeaderOperations, Headers};
use crate::types::http_policy::{HttpFaultInjection, HttpRedirect, HttpRetry, HttpRewrite};
use crate::types::virtual_service::{
    HttpMatchRequest, HttpRoute, HttpRouteDestination, RouteDestination, TlsRoute,
    VirtualServiceSpec,
};

/// Checks a VirtualService spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &VirtualServiceSpec) {
    let applies_to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if host == "*" && applies_to_mesh {
            ctx.invalid(
                path,
                "host \"*\" is only allowed for VirtualServices bound to gateways (not mesh)",
            );
        } else if !is_wildcard_host(host) {
            ctx.invalid(path, format!("{host:?} is not a valid host name"));
        }
    }
    for (i, gateway) in spec.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("spec.gateways[{i}]"), gateway);
    }
    for (i, route) in spec.http.iter().enumerate() {
        http_route(ctx, &format!("spec.http[{i}]"), route);
    }
    for (i, route) in spec.tls.iter().enumerate() {
        tls_route(ctx, &format!("spec.tls[{i}]"), route);
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        let path = format!("spec.tcp[{i}]");
        for (j, m) in route.matches.iter().enumerate() {
            if let Some(port) = m.port {
                port_number(ctx, &format!("{path}.match[{j}].port"), port);
            }
        }
        l4_destinations(ctx, &path, &route.route);
    }
}

/// `mesh`, `name` or `namespace/name`.
fn gateway_name(ctx: &mut Ctx<'_>, path: &str, gateway: &str) {
    let valid = match gateway.split_once('/') {
        Some((ns, name)) => is_dns1123_label(ns) && super::is_dns1123_subdomain(name),
        None => super::is_dns1123_subdomain(gateway),
    };
    if !valid {
        ctx.invalid(
            path,
            format!("{gateway:?} is not a gateway reference (mesh, NAME or NAMESPACE/NAME)"),
        );
    }
}

fn http_route(ctx: &mut Ctx<'_>, path: &str, route: &HttpRoute) {
    let actions = [
        !route.route.is_empty(),
        route.redirect.is_some(),
        route.direct_response.is_some(),
        route.delegate.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => ctx.err(
            crate::ErrorKind::MissingField,
            format!("{path}.route"),
            "missing required field (an HTTP route needs route, redirect, directResponse or delegate)",
        ),
        1 => {}
        _ => ctx.invalid(
            path,
            "only one of route, redirect, directResponse and delegate may be set",
        ),
    }
    if route.redirect.is_some() || route.direct_response.is_some() {
        if route.rewrite.is_some() {
            ctx.invalid(
                format!("{path}.rewrite"),
                "rewrite cannot be combined with redirect or directResponse",
            );
        }
        if route.fault.is_some() {
            ctx.invalid(
                format!("{path}.fault"),
                "fault cannot be combined with redirect or directResponse",
            );
        }
    }
    for (j, m) in route.matches.iter().enumerate() {
        http_match(ctx, &format!("{path}.match[{j}]"), m);
    }
    http_destinations(ctx, path, &route.route);
    if let Some(redirect) = &route.redirect {
        http_redirect(ctx, &format!("{path}.redirect"), redirect);
    }
    if let Some(response) = &route.direct_response {
        let p = format!("{path}.directResponse");
        if !(200..=599).contains(&response.status) {
            ctx.invalid(
                format!("{p}.status"),
                format!("HTTP status {} is not in range 200..599", response.status),
            );
        }
        if let Some(body) = &response.body {
            if body.string.is_some() && body.bytes.is_some() {
                ctx.invalid(
                    format!("{p}.body"),
                    "only one of string and bytes may be set",
                );
            }
        }
    }
    if let Some(delegate) = &route.delegate {
        if delegate.name.is_empty() {
            ctx.missing(format!("{path}.delegate.name"));
        }
    }
    if let Some(rewrite) = &route.rewrite {
        http_rewrite(ctx, &format!("{path}.rewrite"), rewrite);
    }
    if let Some(retries) = &route.retries {
        http_retry(ctx, &format!("{path}.retries"), retries);
    }
    if let Some(fault) = &route.fault {
        http_fault(ctx, &format!("{path}.fault"), fault);
    }
    if let Some(mirror) = &route.mirror {
        destination(ctx, &format!("{path}.mirror"), mirror);
    }
    for (j, m) in route.mirrors.iter().enumerate() {
        let p = format!("{path}.mirrors[{j}]");
        destination(ctx, &format!("{p}.destination"), &m.destination);
        percent(ctx, &format!("{p}.percentage"), m.percentage.as_ref());
    }
    if let Some(p) = route.mirror_percent.filter(|p| *p > 100) {
        ctx.invalid(
            format!("{path}.mirrorPercent"),
            format!("{p} is more than 100"),
        );
    }
    percent(
        ctx,
        &format!("{path}.mirrorPercentage"),
        route.mirror_percentage.as_ref(),
    );
    if let Some(cors) = &route.cors_policy {
        for (j, origin) in cors.allow_origins.iter().enumerate() {
            string_match(ctx, &format!("{path}.corsPolicy.allowOrigins[{j}]"), origin);
        }
    }
    if let Some(headers) = &route.headers {
        header_ops(ctx, &format!("{path}.headers"), headers);
    }
}

fn http_match(ctx: &mut Ctx<'_>, path: &str, m: &HttpMatchRequest) {
    let singles = [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ];
    for (field, value) in singles {
        if let Some(sm) = value {
            string_match(ctx, &format!("{path}.{field}"), sm);
        }
    }
    let maps = [
        ("headers", &m.headers),
        ("queryParams", &m.query_params),
        ("withoutHeaders", &m.without_headers),
    ];
    for (field, map) in maps {
        for (name, sm) in map {
            let p = format!("{path}.{field}.{name}");
            if field != "queryParams" && !is_header_name(name) {
                ctx.invalid(p.clone(), format!("{name:?} is not a valid header name"));
            }
            // An empty matcher (`name: {}`) means "present" for headers.
            if field == "queryParams" || *sm != Default::default() {
                string_match(ctx, &p, sm);
            }
        }
    }
    if let Some(port) = m.port {
        port_number(ctx, &format!("{path}.port"), port);
    }
    for (i, gateway) in m.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("{path}.gateways[{i}]"), gateway);
    }
    if let Some(ns) = &m.source_namespace {
        if !is_dns1123_label(ns) {
            ctx.invalid(
                format!("{path}.sourceNamespace"),
                format!("{ns:?} is not a valid namespace"),
            );
        }
    }
}

/// Header names: visible ASCII without separators; pseudo-headers
/// (`:authority`) allowed.
fn is_header_name(name: &str) -> bool {
    let name = name.strip_prefix(':').unwrap_or(name);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn header_ops(ctx: &mut Ctx<'_>, path: &str, headers: &Headers) {
    let sides: [(&str, &Option<HeaderOperations>); 2] = [
        ("request", &headers.request),
        ("response", &headers.response),
    ];
    for (side, ops) in sides {
        let Some(ops) = ops else { continue };
        let names = ops
            .set
            .keys()
            .map(|n| ("set", n.as_str()))
            .chain(ops.add.keys().map(|n| ("add", n.as_str())))
            .chain(ops.remove.iter().map(|n| ("remove", n.as_str())));
        for (op, name) in names {
            if !is_header_name(name) {
                ctx.invalid(
                    format!("{path}.{side}.{op}"),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
    }
}

fn http_destinations(ctx: &mut Ctx<'_>, path: &str, routes: &[HttpRouteDestination]) {
    for (i, r) in routes.iter().enumerate() {
        let p = format!("{path}.route[{i}]");
        match &r.destination {
            Some(d) => destination(ctx, &format!("{p}.destination"), d),
            None => ctx.missing(format!("{p}.destination")),
        }
        if let Some(headers) = &r.headers {
            header_ops(ctx, &format!("{p}.headers"), headers);
        }
    }
    weights(ctx, path, routes.iter().map(|r| r.weight).collect());
}

fn l4_destinations(ctx: &mut Ctx<'_>, path: &str, routes: &[RouteDestination]) {
    if routes.is_empty() {
        ctx.missing(format!("{path}.route"));
    }
    for (i, r) in routes.iter().enumerate() {
        let p = format!("{path}.route[{i}].destination");
        match &r.destination {
            Some(d) => destination(ctx, &p, d),
            None => ctx.missing(p),
        }
    }
    weights(ctx, path, routes.iter().map(|r| r.weight).collect());
}

/// Each weight is 0..100; with more than one destination they must add up
/// to 100 (a lone destination may leave its weight out).
fn weights(ctx: &mut Ctx<'_>, path: &str, weights: Vec<Option<u32>>) {
    for (i, w) in weights.iter().enumerate() {
        if let Some(w) = w.filter(|w| *w > 100) {
            ctx.invalid(
                format!("{path}.route[{i}].weight"),
                format!("weight {w} is more than 100"),
            );
        }
    }
    if weights.len() > 1 {
        let total: u64 = weights.iter().map(|w| u64::from(w.unwrap_or(0))).sum();
        if total != 100 {
            ctx.invalid(
                format!("{path}.route"),
                format!("destination weights sum to {total}, not 100"),
            );
        }
    }
}

/// A destination needs a host; `*` is not a destination.
pub(super) fn destination(ctx: &mut Ctx<'_>, path: &str, d: &Destination) {
    if d.host.is_empty() {
        ctx.missing(format!("{path}.host"));
    } else if d.host == "*" || !is_wildcard_host(&d.host) {
        ctx.invalid(
            format!("{path}.host"),
            format!("{:?} is not a valid destination host", d.host),
        );
    }
    if let Some(subset) = &d.subset {
        if !is_dns1123_label(subset) {
            ctx.invalid(
                format!("{path}.subset"),
                format!("{subset:?} is not a valid subset name"),
            );
        }
    }
    if let Some(port) = &d.port {
        port_number(ctx, &format!("{path}.port.number"), port.number);
    }
}

fn http_redirect(ctx: &mut Ctx<'_>, path: &str, r: &HttpRedirect) {
    if r.uri.is_none()
        && r.authority.is_none()
        && r.port.is_none()
        && r.derive_port.is_none()
        && r.scheme.is_none()
    {
        ctx.invalid(path, "a redirect must set uri, authority, scheme or port");
    }
    if let Some(code) = r.redirect_code.filter(|c| !(300..=399).contains(c)) {
        ctx.invalid(
            format!("{path}.redirectCode"),
            format!("{code} is not a 3xx redirect code"),
        );
    }
    if let Some(scheme) = r
        .scheme
        .as_deref()
        .filter(|s| *s != "http" && *s != "https")
    {
        ctx.invalid(
            format!("{path}.scheme"),
            format!("{scheme:?} is not http or https"),
        );
    }
    if let Some(port) = r.port {
        port_number(ctx, &format!("{path}.port"), port);
        if r.derive_port.is_some() {
            ctx.invalid(path, "only one of port and derivePort may be set");
        }
    }
}

fn http_rewrite(ctx: &mut Ctx<'_>, path: &str, r: &HttpRewrite) {
    if r.uri.is_none() && r.authority.is_none() && r.uri_regex_rewrite.is_none() {
        ctx.invalid(path, "a rewrite must set uri, authority or uriRegexRewrite");
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        if r.uri.is_some() {
            ctx.invalid(path, "only one of uri and uriRegexRewrite may be set");
        }
        regex_syntax(ctx, &format!("{path}.uriRegexRewrite.match"), &rr.pattern);
    }
}

fn http_retry(ctx: &mut Ctx<'_>, path: &str, r: &HttpRetry) {
    if r.attempts < 0 {
        ctx.invalid(format!("{path}.attempts"), "attempts cannot be negative");
    }
}

fn http_fault(ctx: &mut Ctx<'_>, path: &str, f: &HttpFaultInjection) {
    if f.delay.is_none() && f.abort.is_none() {
        ctx.invalid(path, "fault injection needs a delay and/or an abort");
    }
    if let Some(delay) = &f.delay {
        let p = format!("{path}.delay");
        if delay.fixed_delay.is_none() && delay.exponential_delay.is_none() {
            ctx.missing(format!("{p}.fixedDelay"));
        }
        percent(ctx, &format!("{p}.percentage"), delay.percentage.as_ref());
        if let Some(pc) = delay.percent.filter(|p| !(0..=100).contains(p)) {
            ctx.invalid(
                format!("{p}.percent"),
                format!("percentage {pc} is out of range 0..100"),
            );
        }
    }
    if let Some(abort) = &f.abort {
        let p = format!("{path}.abort");
        let kinds = [
            abort.http_status.is_some(),
            abort.grpc_status.is_some(),
            abort.http2_error.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => ctx.missing(format!("{p}.httpStatus")),
            1 => {}
            _ => ctx.invalid(
                p.clone(),
                "only one of httpStatus, grpcStatus and http2Error may be set",
            ),
        }
        if let Some(status) = abort.http_status.filter(|s| !(200..=599).contains(s)) {
            ctx.invalid(
                format!("{p}.httpStatus"),
                format!("HTTP status {status} is not in range 200..599"),
            );
        }
        percent(ctx, &format!("{p}.percentage"), abort.percentage.as_ref());
    }
}

fn tls_route(ctx: &mut Ctx<'_>, path: &str, route: &TlsRoute) {
    if route.matches.is_empty() {
        ctx.missing(format!("{path}.match"));
    }
    for (j, m) in route.matches.iter().enumerate() {
        let p = format!("{path}.match[{j}]");
        if m.sni_hosts.is_empty() {
            ctx.missing(format!("{p}.sniHosts"));
        }
        for (k, host) in m.sni_hosts.iter().enumerate() {
            if !is_wildcard_host(host) {
                ctx.invalid(
                    format!("{p}.sniHosts[{k}]"),
                    format!("{host:?} is not a valid host name"),
                );
            }
        }
        if let Some(port) = m.port {
            port_number(ctx, &format!("{p}.port"), port);
        }
    }
    l4_destinations(ctx, path, &route.route);
}

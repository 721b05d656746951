//! Per-object checks of a `VirtualService`: hosts and gateways, the shape of
//! each HTTP route (one action, its matches, destinations and weights), TLS
//! routes (SNI hosts within the VirtualService's hosts) and TCP routes. The
//! policies an HTTP route carries (retries, faults, redirect, CORS, header
//! operations, ...) are checked in `http_policy.rs`.
//!
//! Part of [`super`]; that hosts may be empty only for a delegate is checked
//! across objects in `cross.rs`.

use std::collections::BTreeMap;

use super::hostname::{ip_or_cidr, is_label, wildcard_domain};
use super::http_policy;
use super::values::{destination, gateway_name, labels, port_number, string_match};
use super::Ctx;
use crate::error::ErrorKind;
use crate::types::common::StringMatch;
use crate::types::virtual_service::{
    HttpMatchRequest, HttpRoute, HttpRouteDestination, L4MatchAttributes, RouteDestination,
    TlsMatchAttributes, TlsRoute, VirtualServiceSpec,
};

/// Pseudo-headers a match may name (RFC 7540).
const PSEUDO_HEADERS: [&str; 5] = [":method", ":scheme", ":authority", ":path", ":status"];

/// Checks a VirtualService spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &VirtualServiceSpec) {
    let delegate = spec.hosts.is_empty();
    if delegate {
        // A delegate holds HTTP routes for the VirtualService that names it.
        let misplaced = [
            ("spec.gateways", !spec.gateways.is_empty(), "gateways"),
            ("spec.tls", !spec.tls.is_empty(), "TLS routes"),
            ("spec.tcp", !spec.tcp.is_empty(), "TCP routes"),
        ];
        for (path, set, what) in misplaced {
            if set {
                ctx.invalid(
                    path,
                    format!("a delegate VirtualService (without hosts) cannot have {what}"),
                );
            }
        }
    }
    for (i, gateway) in spec.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("spec.gateways[{i}]"), gateway);
    }
    let to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
    hosts(ctx, spec, to_mesh);
    if spec.http.is_empty() && spec.tls.is_empty() && spec.tcp.is_empty() {
        ctx.err(
            ErrorKind::MissingField,
            "spec.http",
            "missing required field (a VirtualService needs http, tls or tcp routes)",
        );
    }
    for (i, route) in spec.http.iter().enumerate() {
        http_route(ctx, &format!("spec.http[{i}]"), route, delegate);
    }
    for (i, route) in spec.tls.iter().enumerate() {
        tls_route(ctx, &format!("spec.tls[{i}]"), route, &spec.hosts);
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        let path = format!("spec.tcp[{i}]");
        for (j, m) in route.matches.iter().enumerate() {
            l4_match(ctx, &format!("{path}.match[{j}]"), m);
        }
        l4_destinations(ctx, &path, &route.route);
    }
    super::values::export_to(ctx, &spec.export_to, false, false);
    let http: Vec<&[HttpMatchRequest]> = spec.http.iter().map(|r| r.matches.as_slice()).collect();
    unreachable(ctx, "spec.http", &http);
    let tls: Vec<&[TlsMatchAttributes]> = spec.tls.iter().map(|r| r.matches.as_slice()).collect();
    unreachable(ctx, "spec.tls", &tls);
    let tcp: Vec<&[L4MatchAttributes]> = spec.tcp.iter().map(|r| r.matches.as_slice()).collect();
    unreachable(ctx, "spec.tcp", &tcp);
}

/// Routes no request can reach, as Istio's validation warns about them
/// (first match wins): every route after one without `match` (which
/// matches everything), and a match that repeats an earlier one.
fn unreachable<M: PartialEq>(ctx: &mut Ctx<'_>, path: &str, routes: &[&[M]]) {
    let mut catch_all: Option<usize> = None;
    let mut seen: Vec<(&M, usize)> = Vec::new();
    for (i, matches) in routes.iter().enumerate() {
        if let Some(first) = catch_all {
            ctx.warn(
                ErrorKind::Ineffective,
                format!("{path}[{i}]"),
                format!("this route is never used: {path}[{first}] has no match and takes every request"),
            );
            continue;
        }
        if matches.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let mut repeated = 0;
        for (j, m) in matches.iter().enumerate() {
            match seen.iter().find(|(earlier, _)| *earlier == m) {
                Some((_, k)) => {
                    repeated += 1;
                    ctx.warn(
                        ErrorKind::Ineffective,
                        format!("{path}[{i}].match[{j}]"),
                        format!("this match is never used: {path}[{k}] has the same match"),
                    );
                }
                None => seen.push((m, i)),
            }
        }
        if repeated == matches.len() {
            ctx.warn(
                ErrorKind::Ineffective,
                format!("{path}[{i}]"),
                "this route is never used: earlier routes have all its matches",
            );
        }
    }
}

/// Hosts are domains (wildcards allowed) or IPs; `*` only for gateways;
/// no two overlapping.
fn hosts(ctx: &mut Ctx<'_>, spec: &VirtualServiceSpec, to_mesh: bool) {
    let mut all_valid = true;
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if let Err(err) = wildcard_domain(host) {
            if host.parse::<std::net::IpAddr>().is_err() {
                ctx.invalid(path, err);
                all_valid = false;
            }
        } else if to_mesh && host == "*" {
            ctx.invalid(
                path,
                "host \"*\" is only allowed for VirtualServices bound to gateways (not mesh)",
            );
            all_valid = false;
        }
    }
    if !all_valid {
        return;
    }
    for (j, later) in spec.hosts.iter().enumerate() {
        if let Some(earlier) = spec.hosts[..j].iter().find(|h| overlap(h, later)) {
            ctx.invalid(
                format!("spec.hosts[{j}]"),
                format!("duplicate hosts in one VirtualService: {earlier} and {later}"),
            );
        }
    }
}

fn http_route(ctx: &mut Ctx<'_>, path: &str, route: &HttpRoute, in_delegate: bool) {
    let actions = [
        !route.route.is_empty(),
        route.redirect.is_some(),
        route.direct_response.is_some(),
        route.delegate.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => ctx.err(
            ErrorKind::MissingField,
            format!("{path}.route"),
            "missing required field (an HTTP route needs route, redirect, directResponse or delegate)",
        ),
        1 => {}
        _ => ctx.invalid(
            path,
            "only one of route, redirect, directResponse and delegate may be set",
        ),
    }
    if let Some(delegate) = &route.delegate {
        if in_delegate {
            ctx.invalid(
                format!("{path}.delegate"),
                "a delegate VirtualService's routes cannot delegate again",
            );
        }
        if delegate.name.is_empty() {
            ctx.missing(format!("{path}.delegate.name"));
        }
    }
    if route.redirect.is_some() || route.direct_response.is_some() {
        for (field, set) in [
            ("rewrite", route.rewrite.is_some()),
            ("fault", route.fault.is_some()),
        ] {
            if set {
                ctx.invalid(
                    format!("{path}.{field}"),
                    format!("{field} cannot be combined with redirect or directResponse"),
                );
            }
        }
    }
    if route.mirror.is_some() && !route.mirrors.is_empty() {
        ctx.invalid(
            format!("{path}.mirrors"),
            "only one of mirror and mirrors may be set",
        );
    }
    for (j, m) in route.matches.iter().enumerate() {
        http_match(ctx, &format!("{path}.match[{j}]"), m);
    }
    http_destinations(ctx, path, &route.route);
    http_policy::check(ctx, path, route);
}

fn http_match(ctx: &mut Ctx<'_>, path: &str, m: &HttpMatchRequest) {
    if let Some(uri) = &m.uri {
        // Envoy matches an empty path prefix (everything); not so for the
        // other strings.
        string_match(ctx, &format!("{path}.uri"), uri, true);
    }
    for (field, value) in [
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = value {
            string_match(ctx, &format!("{path}.{field}"), sm, false);
        }
    }
    header_matches(ctx, &format!("{path}.headers"), &m.headers, false);
    header_matches(
        ctx,
        &format!("{path}.withoutHeaders"),
        &m.without_headers,
        true,
    );
    for (name, sm) in &m.query_params {
        // `{}` matches a parameter that is present.
        if *sm != StringMatch::default() {
            string_match(ctx, &format!("{path}.queryParams.{name}"), sm, false);
        }
    }
    if let Some(port) = m.port {
        port_number(ctx, &format!("{path}.port"), port);
    }
    labels(ctx, &format!("{path}.sourceLabels"), &m.source_labels);
    for (i, gateway) in m.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("{path}.gateways[{i}]"), gateway);
    }
    if let Some(ns) = m.source_namespace.as_deref().filter(|ns| !is_label(ns)) {
        ctx.invalid(
            format!("{path}.sourceNamespace"),
            format!("{ns:?} is not a valid namespace"),
        );
    }
}

/// Header matches: a header name (or pseudo-header) and a string match;
/// `{}` means "present" (and, under `withoutHeaders`, so does `regex: "*"`).
fn header_matches(
    ctx: &mut Ctx<'_>,
    path: &str,
    headers: &BTreeMap<String, StringMatch>,
    without: bool,
) {
    for (name, sm) in headers {
        let p = format!("{path}.{name}");
        if name.starts_with("@request.auth.claims") {
            ctx.err(
                ErrorKind::Unsupported,
                p,
                "routing on JWT claims is not enforced by this mesh yet (request authentication \
                 arrives with the security issue)",
            );
            continue;
        }
        if !PSEUDO_HEADERS.contains(&name.as_str()) && !super::values::is_header_token(name) {
            ctx.invalid(p.clone(), format!("{name:?} is not a valid header name"));
        }
        let present =
            *sm == StringMatch::default() || (without && sm.regex.as_deref() == Some("*"));
        if !present {
            string_match(ctx, &p, sm, false);
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
            http_policy::header_ops(ctx, &format!("{p}.headers"), headers);
        }
    }
    weights(ctx, path, routes.iter().map(|r| r.weight));
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
    weights(ctx, path, routes.iter().map(|r| r.weight));
}

/// Weights are relative (a destination gets weight / sum of weights), as
/// in Istio: several destinations must not all weigh 0; a lone destination
/// gets everything whatever its weight.
fn weights(ctx: &mut Ctx<'_>, path: &str, weights: impl ExactSizeIterator<Item = Option<u32>>) {
    let count = weights.len();
    let total: u64 = weights.map(|w| u64::from(w.unwrap_or(0))).sum();
    if count > 1 && total == 0 {
        ctx.invalid(
            format!("{path}.route"),
            "the destination weights sum to 0: no destination would get traffic",
        );
    }
}

fn tls_route(ctx: &mut Ctx<'_>, path: &str, route: &TlsRoute, hosts: &[String]) {
    if route.matches.is_empty() {
        ctx.missing(format!("{path}.match"));
    }
    for (j, m) in route.matches.iter().enumerate() {
        tls_match(ctx, &format!("{path}.match[{j}]"), m, hosts);
    }
    l4_destinations(ctx, path, &route.route);
}

fn tls_match(ctx: &mut Ctx<'_>, path: &str, m: &TlsMatchAttributes, hosts: &[String]) {
    if m.sni_hosts.is_empty() {
        ctx.missing(format!("{path}.sniHosts"));
    }
    for (k, sni) in m.sni_hosts.iter().enumerate() {
        let p = format!("{path}.sniHosts[{k}]");
        if let Err(err) = wildcard_domain(sni) {
            if sni.parse::<std::net::IpAddr>().is_ok() {
                ctx.warn(
                    ErrorKind::Ineffective,
                    p,
                    format!("{sni:?} is an IP address, which SNI does not carry and most clients never send"),
                );
            } else {
                ctx.invalid(p, err);
            }
        } else if !hosts.iter().any(|h| sni_within(sni, h)) {
            ctx.invalid(
                p,
                format!(
                    "SNI host {sni:?} is not within any host of the VirtualService ({})",
                    hosts.join(", ")
                ),
            );
        }
    }
    for (k, subnet) in m.destination_subnets.iter().enumerate() {
        if let Err(err) = ip_or_cidr(subnet) {
            ctx.invalid(format!("{path}.destinationSubnets[{k}]"), err);
        }
    }
    if let Some(port) = m.port {
        port_number(ctx, &format!("{path}.port"), port);
    }
    labels(ctx, &format!("{path}.sourceLabels"), &m.source_labels);
    for (i, gateway) in m.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("{path}.gateways[{i}]"), gateway);
    }
}

fn l4_match(ctx: &mut Ctx<'_>, path: &str, m: &L4MatchAttributes) {
    for (k, subnet) in m.destination_subnets.iter().enumerate() {
        if let Err(err) = ip_or_cidr(subnet) {
            ctx.invalid(format!("{path}.destinationSubnets[{k}]"), err);
        }
    }
    if let Some(port) = m.port {
        port_number(ctx, &format!("{path}.port"), port);
    }
    labels(ctx, &format!("{path}.sourceLabels"), &m.source_labels);
    for (i, gateway) in m.gateways.iter().enumerate() {
        gateway_name(ctx, &format!("{path}.gateways[{i}]"), gateway);
    }
}

/// Whether two hosts of one VirtualService claim a common name, compared
/// as Istio compares them here: case-sensitively, `*` covering any prefix.
fn overlap(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (None, None) => a == b,
        (Some(sa), None) => b.len() > sa.len() && b.ends_with(sa),
        (None, Some(sb)) => a.len() > sb.len() && a.ends_with(sb),
        (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
    }
}

/// Whether every name `sni` stands for is also covered by `host` (Istio's
/// `SubsetOf`): equal, or inside a wildcard host.
fn sni_within(sni: &str, host: &str) -> bool {
    if host == "*" {
        return true;
    }
    match host.strip_prefix('*') {
        Some(suffix) => {
            let sni_rest = sni.strip_prefix('*').unwrap_or(sni);
            sni_rest.len() >= suffix.len()
                && sni_rest
                    .get(sni_rest.len() - suffix.len()..)
                    .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
                && (sni.starts_with('*') || sni.len() > suffix.len())
        }
        None => !sni.starts_with('*') && sni.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::sni_within;

    #[test]
    fn sni_hosts_within_virtual_service_hosts() {
        assert!(sni_within("login.example.com", "login.example.com"));
        assert!(sni_within("login.example.com", "*.example.com"));
        assert!(sni_within("*.a.example.com", "*.example.com"));
        assert!(sni_within("anything", "*"));
        assert!(!sni_within("*.example.com", "login.example.com"));
        assert!(!sni_within("example.com", "*.example.com"));
        assert!(!sni_within("login.example.org", "*.example.com"));
    }
}

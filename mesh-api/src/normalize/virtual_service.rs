//! Normalization of a `VirtualService`: the header fields of Istio
//! 1.0-1.4, `websocketUpgrade`, the integer percentages of mirrors and
//! faults, `allowOrigin`, and legacy gateway references.
//!
//! Part of [`super`], which holds the table of what becomes what.

use std::collections::BTreeMap;

use super::Findings;
use crate::error::ErrorKind;
use crate::types::common::{HeaderOperations, Headers, Percent, StringMatch};
use crate::types::virtual_service::{HttpRoute, VirtualServiceSpec};

/// Rewrites the deprecated fields of a VirtualService spec.
pub(super) fn normalize(out: &mut Findings, spec: &mut VirtualServiceSpec) {
    gateways(out, "spec.gateways", &mut spec.gateways);
    for (i, route) in spec.http.iter_mut().enumerate() {
        http_route(out, &format!("spec.http[{i}]"), route);
        for (j, m) in route.matches.iter_mut().enumerate() {
            gateways(
                out,
                &format!("spec.http[{i}].match[{j}].gateways"),
                &mut m.gateways,
            );
        }
    }
    for (i, route) in spec.tls.iter_mut().enumerate() {
        for (j, m) in route.matches.iter_mut().enumerate() {
            gateways(
                out,
                &format!("spec.tls[{i}].match[{j}].gateways"),
                &mut m.gateways,
            );
        }
    }
    for (i, route) in spec.tcp.iter_mut().enumerate() {
        for (j, m) in route.matches.iter_mut().enumerate() {
            gateways(
                out,
                &format!("spec.tcp[{i}].match[{j}].gateways"),
                &mut m.gateways,
            );
        }
    }
}

/// The legacy `name.namespace[.svc.cluster.local]` gateway reference,
/// rewritten the way Istio resolves it: `namespace/name`.
fn gateways(out: &mut Findings, path: &str, gateways: &mut [String]) {
    for (i, gateway) in gateways.iter_mut().enumerate() {
        if gateway.contains('/') {
            continue;
        }
        let Some((name, rest)) = gateway.split_once('.') else {
            continue;
        };
        let namespace = rest.split('.').next().unwrap_or(rest);
        if name.is_empty() || namespace.is_empty() {
            continue;
        }
        let modern = format!("{namespace}/{name}");
        out.push(
            &format!("{path}[{i}]"),
            ErrorKind::Deprecated,
            format!("deprecated gateway reference form, use {modern}"),
        );
        *gateway = modern;
    }
}

fn http_route(out: &mut Findings, path: &str, route: &mut HttpRoute) {
    match route.websocket_upgrade.take() {
        Some(true) => out.push(
            &format!("{path}.websocketUpgrade"),
            ErrorKind::Deprecated,
            "deprecated, remove it: WebSocket upgrades are allowed on every route".to_string(),
        ),
        Some(false) => out.push(
            &format!("{path}.websocketUpgrade"),
            ErrorKind::Unsupported,
            "websocketUpgrade: false (refusing WebSocket upgrades on one route) cannot be \
             honoured: upgrades are allowed on every route, as in Istio since 1.0; remove it"
                .to_string(),
        ),
        None => {}
    }
    let moves = [
        (
            "appendHeaders",
            std::mem::take(&mut route.append_headers),
            true,
        ),
        (
            "appendRequestHeaders",
            std::mem::take(&mut route.append_request_headers),
            true,
        ),
        (
            "appendResponseHeaders",
            std::mem::take(&mut route.append_response_headers),
            false,
        ),
    ];
    for (field, added, request) in moves {
        add_headers(out, path, field, added, request, &mut route.headers);
    }
    let removals = [
        (
            "removeRequestHeaders",
            std::mem::take(&mut route.remove_request_headers),
            true,
        ),
        (
            "removeResponseHeaders",
            std::mem::take(&mut route.remove_response_headers),
            false,
        ),
    ];
    for (field, removed, request) in removals {
        remove_headers(out, path, field, removed, request, &mut route.headers);
    }
    for (j, dest) in route.route.iter_mut().enumerate() {
        let p = format!("{path}.route[{j}]");
        let adds = [
            (
                "appendRequestHeaders",
                std::mem::take(&mut dest.append_request_headers),
                true,
            ),
            (
                "appendResponseHeaders",
                std::mem::take(&mut dest.append_response_headers),
                false,
            ),
        ];
        for (field, added, request) in adds {
            add_headers(out, &p, field, added, request, &mut dest.headers);
        }
        let removals = [
            (
                "removeRequestHeaders",
                std::mem::take(&mut dest.remove_request_headers),
                true,
            ),
            (
                "removeResponseHeaders",
                std::mem::take(&mut dest.remove_response_headers),
                false,
            ),
        ];
        for (field, removed, request) in removals {
            remove_headers(out, &p, field, removed, request, &mut dest.headers);
        }
    }
    if let Some(value) = route.mirror_percent.take() {
        let field = format!("{path}.mirrorPercent");
        if value > 100 {
            out.push(
                &field,
                ErrorKind::InvalidValue,
                format!("mirrorPercent {value} is more than 100"),
            );
        } else if route.mirror_percentage.is_some() {
            out.shadowed(&field, &format!("{path}.mirrorPercentage"));
        } else {
            route.mirror_percentage = Some(Percent {
                value: f64::from(value),
            });
            out.deprecated(&field, &format!("{path}.mirrorPercentage"));
        }
    }
    if let Some(fault) = &mut route.fault {
        if let Some(delay) = &mut fault.delay {
            let p = format!("{path}.fault.delay");
            fault_percent(out, &p, delay.percent.take(), &mut delay.percentage);
        }
        if let Some(abort) = &mut fault.abort {
            let p = format!("{path}.fault.abort");
            fault_percent(out, &p, abort.percent.take(), &mut abort.percentage);
        }
    }
    if let Some(cors) = &mut route.cors_policy {
        let origins = std::mem::take(&mut cors.allow_origin);
        if !origins.is_empty() {
            let field = format!("{path}.corsPolicy.allowOrigin");
            if cors.allow_origins.is_empty() {
                cors.allow_origins = origins
                    .into_iter()
                    .map(|o| StringMatch {
                        exact: Some(o),
                        ..Default::default()
                    })
                    .collect();
                out.deprecated(&field, &format!("{path}.corsPolicy.allowOrigins (exact)"));
            } else {
                out.shadowed(&field, &format!("{path}.corsPolicy.allowOrigins"));
            }
        }
    }
}

/// The integer `percent` of a fault, moved into `percentage`.
fn fault_percent(
    out: &mut Findings,
    path: &str,
    percent: Option<i32>,
    percentage: &mut Option<Percent>,
) {
    let Some(value) = percent else { return };
    let field = format!("{path}.percent");
    if !(0..=100).contains(&value) {
        out.push(
            &field,
            ErrorKind::InvalidValue,
            format!("percentage {value} is out of range 0..100"),
        );
    } else if percentage.is_some() {
        out.shadowed(&field, &format!("{path}.percentage"));
    } else {
        *percentage = Some(Percent {
            value: f64::from(value),
        });
        out.deprecated(&field, &format!("{path}.percentage"));
    }
}

/// The side (`request` or `response`) of `headers`, created when absent.
fn side(headers: &mut Option<Headers>, request: bool) -> &mut HeaderOperations {
    let headers = headers.get_or_insert_with(Headers::default);
    let ops = if request {
        &mut headers.request
    } else {
        &mut headers.response
    };
    ops.get_or_insert_with(HeaderOperations::default)
}

fn side_name(request: bool) -> &'static str {
    if request {
        "request"
    } else {
        "response"
    }
}

/// Deprecated headers to append, moved into `headers.<side>.add`. A name
/// already there with another value cannot be kept twice (Envoy would
/// have appended both), so that is an error.
fn add_headers(
    out: &mut Findings,
    path: &str,
    field: &str,
    added: BTreeMap<String, String>,
    request: bool,
    headers: &mut Option<Headers>,
) {
    if added.is_empty() {
        return;
    }
    let target = format!("{path}.headers.{}.add", side_name(request));
    let ops = side(headers, request);
    let mut clash = None;
    for (name, value) in added {
        match ops.add.get(&name) {
            Some(existing) if *existing != value => clash = Some(name),
            _ => {
                ops.add.insert(name, value);
            }
        }
    }
    match clash {
        Some(name) => out.push(
            &format!("{path}.{field}"),
            ErrorKind::InvalidValue,
            format!(
                "header {name:?} is also added with another value by {target} or another \
                 deprecated field; merge them into {target}"
            ),
        ),
        None => out.deprecated(&format!("{path}.{field}"), &target),
    }
}

/// Deprecated headers to remove, moved into `headers.<side>.remove`.
fn remove_headers(
    out: &mut Findings,
    path: &str,
    field: &str,
    removed: Vec<String>,
    request: bool,
    headers: &mut Option<Headers>,
) {
    if removed.is_empty() {
        return;
    }
    let ops = side(headers, request);
    for name in removed {
        if !ops.remove.contains(&name) {
            ops.remove.push(name);
        }
    }
    let target = format!("{path}.headers.{}.remove", side_name(request));
    out.deprecated(&format!("{path}.{field}"), &target);
}

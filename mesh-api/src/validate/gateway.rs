//! Per-object checks of a `Gateway`: servers with a named port of a known
//! protocol, hosts, and TLS settings that fit the protocol.
//!
//! Part of [`super`].

use std::collections::BTreeSet;

use super::{is_dns1123_label, is_known_protocol, is_wildcard_host, port_number, Ctx};
use crate::types::gateway::{GatewaySpec, ServerTlsMode, ServerTlsSettings, TlsProtocol};

/// Checks a Gateway spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &GatewaySpec) {
    if spec.servers.is_empty() {
        ctx.missing("spec.servers");
    }
    let mut names = BTreeSet::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let path = format!("spec.servers[{i}]");
        if let Some(name) = &server.name {
            if !names.insert(name.as_str()) {
                ctx.invalid(
                    format!("{path}.name"),
                    format!("server name {name:?} is used twice"),
                );
            }
        }
        if server.hosts.is_empty() {
            ctx.missing(format!("{path}.hosts"));
        }
        for (j, host) in server.hosts.iter().enumerate() {
            server_host(ctx, &format!("{path}.hosts[{j}]"), host);
        }
        let Some(port) = &server.port else {
            ctx.missing(format!("{path}.port"));
            continue;
        };
        port_number(ctx, &format!("{path}.port.number"), port.number);
        if port.name.is_empty() {
            ctx.missing(format!("{path}.port.name"));
        }
        let protocol = port.protocol.to_ascii_uppercase();
        if protocol.is_empty() {
            ctx.missing(format!("{path}.port.protocol"));
        } else if !is_known_protocol(&protocol) {
            ctx.invalid(
                format!("{path}.port.protocol"),
                format!("unsupported protocol {:?} (HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL)", port.protocol),
            );
        }
        if let Some(target) = port.target_port {
            port_number(ctx, &format!("{path}.port.targetPort"), target);
        }
        let is_tls = protocol == "HTTPS" || protocol == "TLS";
        match &server.tls {
            None if is_tls => ctx.missing(format!("{path}.tls")),
            Some(tls) if !is_tls => {
                let redirect_only = tls.https_redirect == Some(true)
                    && tls.server_certificate.is_none()
                    && tls.private_key.is_none()
                    && tls.ca_certificates.is_none()
                    && tls.credential_name.is_none();
                if !(redirect_only && protocol.starts_with("HTTP")) {
                    ctx.invalid(
                        format!("{path}.tls"),
                        format!(
                            "TLS settings need an HTTPS or TLS port, not {}",
                            port.protocol
                        ),
                    );
                }
            }
            Some(tls) => server_tls(ctx, &format!("{path}.tls"), tls),
            None => {}
        }
    }
}

/// `host`, `*.host`, `*` or `namespace/host` (namespace may be `.` or `*`).
fn server_host(ctx: &mut Ctx<'_>, path: &str, host: &str) {
    let (ns, name) = match host.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, host),
    };
    let ns_ok = ns.is_none_or(|ns| ns == "." || ns == "*" || is_dns1123_label(ns));
    if !ns_ok || !is_wildcard_host(name) {
        ctx.invalid(
            path,
            format!("{host:?} is not a valid host ([NAMESPACE/]HOST)"),
        );
    }
}

fn server_tls(ctx: &mut Ctx<'_>, path: &str, tls: &ServerTlsSettings) {
    let has_credential = tls.credential_name.is_some()
        || !tls.credential_names.is_empty()
        || !tls.tls_certificates.is_empty();
    match tls.mode {
        Some(ServerTlsMode::Simple)
        | Some(ServerTlsMode::Mutual)
        | Some(ServerTlsMode::OptionalMutual)
            if !has_credential =>
        {
            if tls.server_certificate.is_none() {
                ctx.missing(format!("{path}.serverCertificate"));
            }
            if tls.private_key.is_none() {
                ctx.missing(format!("{path}.privateKey"));
            }
            if tls.mode != Some(ServerTlsMode::Simple) && tls.ca_certificates.is_none() {
                ctx.missing(format!("{path}.caCertificates"));
            }
        }
        Some(ServerTlsMode::IstioMutual)
            if tls.server_certificate.is_some() || tls.private_key.is_some() || has_credential =>
        {
            ctx.invalid(
                path,
                "ISTIO_MUTUAL uses mesh certificates; certificate fields may not be set",
            );
        }
        _ => {}
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version) {
        // TLS_AUTO means "the proxy's default" and orders with nothing.
        let auto = TlsProtocol::TlsAuto;
        if min != auto && max != auto && (min as u8) > (max as u8) {
            ctx.invalid(
                format!("{path}.minProtocolVersion"),
                "minProtocolVersion is above maxProtocolVersion",
            );
        }
    }
}

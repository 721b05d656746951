//! Per-object checks of a `Gateway`, with Istio's rules: servers with a
//! named port of a known protocol (names unique), hosts as
//! `[namespace/]FQDN`, the bind address, and TLS settings that fit the
//! protocol and the mode (certificate files, one certificate source, CRL).
//!
//! Part of [`super`].

use std::collections::BTreeSet;

use super::hostname::{gateway_host, unix_path};
use super::values::port_number;
use super::{is_known_protocol, protocol_class, Ctx};
use crate::error::ErrorKind;
use crate::types::gateway::{GatewaySpec, Server, ServerTlsMode, ServerTlsSettings, TlsProtocol};

/// Checks a Gateway spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &GatewaySpec) {
    if spec.servers.is_empty() {
        ctx.missing("spec.servers");
    }
    let mut names = BTreeSet::new();
    let mut port_names = BTreeSet::new();
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
        if let Some(port) = server.port.as_ref().filter(|p| !p.name.is_empty()) {
            if !port_names.insert(port.name.as_str()) {
                ctx.invalid(
                    format!("{path}.port.name"),
                    format!("port name {:?} is used by another server", port.name),
                );
            }
        }
        check_server(ctx, &path, server);
    }
}

fn check_server(ctx: &mut Ctx<'_>, path: &str, server: &Server) {
    if server.hosts.is_empty() {
        ctx.missing(format!("{path}.hosts"));
    }
    for (j, host) in server.hosts.iter().enumerate() {
        if let Err(err) = gateway_host(host) {
            ctx.invalid(format!("{path}.hosts[{j}]"), err);
        }
    }
    let unix = server
        .bind
        .as_deref()
        .and_then(|b| b.strip_prefix("unix://"));
    if let Some(bind) = &server.bind {
        match unix {
            Some(socket) => {
                if let Err(err) = unix_path(socket) {
                    ctx.invalid(format!("{path}.bind"), err);
                }
            }
            None => {
                if bind.parse::<std::net::IpAddr>().is_err() {
                    ctx.invalid(
                        format!("{path}.bind"),
                        format!("{bind:?} is not an IP address or unix:// path"),
                    );
                }
            }
        }
    }
    let Some(port) = &server.port else {
        ctx.missing(format!("{path}.port"));
        return;
    };
    match unix {
        Some(_) if port.number != 0 => ctx.invalid(
            format!("{path}.port.number"),
            "a server bound to a unix socket has port number 0",
        ),
        Some(_) => {}
        None => port_number(ctx, &format!("{path}.port.number"), port.number),
    }
    if port.name.is_empty() {
        ctx.missing(format!("{path}.port.name"));
    }
    if port.target_port.is_some() {
        ctx.invalid(
            format!("{path}.port.targetPort"),
            "targetPort has no effect on a Gateway (it listens on number)",
        );
    }
    if port.protocol.is_empty() {
        ctx.missing(format!("{path}.port.protocol"));
        return;
    }
    if !is_known_protocol(&port.protocol) {
        ctx.invalid(
            format!("{path}.port.protocol"),
            format!("unsupported protocol {:?} (HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL)", port.protocol),
        );
        return;
    }
    let class = protocol_class(&port.protocol);
    match &server.tls {
        None if class.tls => ctx.missing(format!("{path}.tls")),
        None => {}
        Some(tls) => {
            if !class.tls {
                // A plain HTTP server may carry only httpsRedirect (a TLS
                // block whose mode is the default PASSTHROUGH, without
                // certificates).
                let passthrough = matches!(
                    tls.mode,
                    None | Some(ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough)
                );
                let files = tls.server_certificate.is_some()
                    || tls.private_key.is_some()
                    || tls.ca_certificates.is_some();
                if !class.http || !passthrough || files {
                    ctx.invalid(
                        format!("{path}.tls"),
                        format!(
                            "TLS settings need an HTTPS or TLS port, not {} (an HTTP server may only set httpsRedirect)",
                            port.protocol
                        ),
                    );
                }
            }
            if tls.https_redirect == Some(true) && !class.http {
                ctx.warn(
                    ErrorKind::Ineffective,
                    format!("{path}.tls.httpsRedirect"),
                    "httpsRedirect only acts on HTTP servers",
                );
            }
            server_tls(ctx, &format!("{path}.tls"), tls);
        }
    }
}

/// Server-side TLS settings (also a Sidecar ingress listener's).
pub(super) fn server_tls(ctx: &mut Ctx<'_>, path: &str, tls: &ServerTlsSettings) {
    let old = matches!(
        tls.min_protocol_version,
        Some(TlsProtocol::TlsV1_0 | TlsProtocol::TlsV1_1)
    );
    if old && tls.cipher_suites.is_empty() {
        ctx.warn(
            ErrorKind::Ineffective,
            format!("{path}.minProtocolVersion"),
            "TLS versions below 1.2 need cipherSuites that support them: the default ones do not",
        );
    }
    let files = tls.server_certificate.is_some()
        || tls.private_key.is_some()
        || tls.ca_certificates.is_some();
    let credential = tls.credential_name.is_some() || !tls.credential_names.is_empty();
    match tls.mode {
        Some(ServerTlsMode::IstioMutual) => {
            if files || credential || !tls.tls_certificates.is_empty() {
                ctx.invalid(
                    path,
                    "ISTIO_MUTUAL uses mesh certificates; certificate fields may not be set",
                );
            }
            return;
        }
        None | Some(ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough)
            if files || credential || tls.ca_crl.is_some() || !tls.tls_certificates.is_empty() =>
        {
            ctx.warn(
                ErrorKind::Ineffective,
                path,
                "a passthrough server does not terminate TLS: its certificates are not used",
            );
        }
        _ => {}
    }
    let sources = [
        tls.server_certificate.is_some() && tls.private_key.is_some(),
        tls.credential_name.is_some(),
        !tls.credential_names.is_empty(),
        !tls.tls_certificates.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        ctx.invalid(
            path,
            "only one of credentialName, credentialNames, serverCertificate/privateKey and tlsCertificates may be set",
        );
    }
    let terminating = matches!(
        tls.mode,
        Some(ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
    );
    if terminating && !credential {
        if tls.mode != Some(ServerTlsMode::Simple) && tls.ca_certificates.is_none() {
            ctx.missing(format!("{path}.caCertificates"));
        }
        if tls.tls_certificates.len() > 2 {
            ctx.warn(
                ErrorKind::Ineffective,
                format!("{path}.tlsCertificates"),
                "a server uses at most 2 certificates (one RSA, one ECDSA)",
            );
        }
        if tls.tls_certificates.is_empty() {
            if tls.server_certificate.is_none() {
                ctx.missing(format!("{path}.serverCertificate"));
            }
            if tls.private_key.is_none() {
                ctx.missing(format!("{path}.privateKey"));
            }
        }
        for (i, cert) in tls.tls_certificates.iter().enumerate() {
            let p = format!("{path}.tlsCertificates[{i}]");
            if cert.server_certificate.is_none() {
                ctx.missing(format!("{p}.serverCertificate"));
            }
            if cert.private_key.is_none() {
                ctx.missing(format!("{p}.privateKey"));
            }
        }
    }
    if tls.ca_crl.is_some() {
        if tls.credential_name.is_some() {
            ctx.invalid(
                format!("{path}.caCrl"),
                "with credentialName the CRL comes from the credential, not caCrl",
            );
        }
        if tls.mode == Some(ServerTlsMode::Simple) {
            ctx.invalid(
                format!("{path}.caCrl"),
                "a CRL needs client certificates (MUTUAL or OPTIONAL_MUTUAL), not SIMPLE",
            );
        }
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

//! Per-object checks of a `Sidecar`, with Istio's rules: not empty; the
//! workload selector; ingress listeners (port, bind, default endpoint, TLS);
//! egress listeners (one catch-all without a port, last; ports and unix
//! sockets unique; bind and capture mode; `namespace/host` hosts); the
//! outbound traffic policy and its egress proxy.
//!
//! Part of [`super`]; that a namespace has at most one Sidecar without a
//! workload selector is checked across objects in `cross.rs`. Several of
//! these fields are not enforced by the mesh and are rejected by
//! `unsupported.rs` as well; they are still checked here, so the message
//! a user gets first is Istio's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::gateway::server_tls;
use super::hostname::{fqdn, is_label, sidecar_host, unix_path};
use super::traffic_policy::connection_pool;
use super::values::{destination, port_number, selector};
use super::{is_known_protocol, protocol_class, Ctx};
use crate::error::ErrorKind;
use crate::types::common::Port;
use crate::types::gateway::ServerTlsMode;
use crate::types::sidecar::{
    CaptureMode, IstioEgressListener, IstioIngressListener, OutboundTrafficMode, SidecarSpec,
};

/// Checks a Sidecar spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &SidecarSpec) {
    if let Some(sel) = &spec.workload_selector {
        selector(ctx, "spec.workloadSelector.labels", &sel.labels);
    }
    if *spec == SidecarSpec::default() || only_selector(spec) {
        ctx.invalid(
            "spec",
            "a Sidecar needs egress, ingress, outboundTrafficPolicy or inboundConnectionPool",
        );
        return;
    }
    let mut ingress_ports = BTreeSet::new();
    for (i, listener) in spec.ingress.iter().enumerate() {
        ingress(
            ctx,
            &format!("spec.ingress[{i}]"),
            listener,
            &mut ingress_ports,
        );
    }
    let mut egress_ports = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    let last = spec.egress.len().saturating_sub(1);
    for (i, listener) in spec.egress.iter().enumerate() {
        let path = format!("spec.egress[{i}]");
        match &listener.port {
            None if i != last => ctx.invalid(
                path.clone(),
                "the egress listener without a port (the catch-all) must be the last one",
            ),
            None => {}
            Some(port) => {
                egress_port(ctx, &path, listener, port);
                let bind = listener.bind.as_deref().unwrap_or("");
                if port.number == 0 {
                    if !sockets.insert(bind) {
                        ctx.invalid(
                            format!("{path}.bind"),
                            format!("unix socket {bind:?} is bound by another egress listener"),
                        );
                    }
                } else if !egress_ports.insert(port.number) {
                    ctx.invalid(
                        format!("{path}.port.number"),
                        format!("port {} has another egress listener", port.number),
                    );
                }
            }
        }
        egress_hosts(ctx, &path, listener);
    }
    if let Some(pool) = &spec.inbound_connection_pool {
        connection_pool(ctx, "spec.inboundConnectionPool", pool);
    }
    if let Some(policy) = &spec.outbound_traffic_policy {
        if let Some(proxy) = &policy.egress_proxy {
            let p = "spec.outboundTrafficPolicy.egressProxy";
            if policy.mode != Some(OutboundTrafficMode::AllowAny) {
                ctx.invalid(p, "egressProxy needs mode ALLOW_ANY");
            }
            if let Err(err) = fqdn(&proxy.host) {
                ctx.invalid(format!("{p}.host"), err);
            }
            match &proxy.port {
                None => ctx.missing(format!("{p}.port")),
                Some(_) => destination(ctx, p, proxy),
            }
        }
    }
}

fn only_selector(spec: &SidecarSpec) -> bool {
    spec.ingress.is_empty()
        && spec.egress.is_empty()
        && spec.outbound_traffic_policy.is_none()
        && spec.inbound_connection_pool.is_none()
}

/// Number, name and protocol of a listener port; `targetPort` has no
/// effect on a Sidecar.
fn listener_port(ctx: &mut Ctx<'_>, path: &str, port: &Port, unix: bool) {
    if !port.name.is_empty() && !is_label(&port.name) {
        ctx.invalid(
            format!("{path}.name"),
            format!("{:?} is not a valid port name", port.name),
        );
    }
    if !port.protocol.is_empty() && !is_known_protocol(&port.protocol) {
        ctx.invalid(
            format!("{path}.protocol"),
            format!("unsupported protocol {:?}", port.protocol),
        );
    }
    if !unix {
        port_number(ctx, &format!("{path}.number"), port.number);
    }
    if port.target_port.is_some() {
        ctx.invalid(
            format!("{path}.targetPort"),
            "targetPort has no effect on a Sidecar",
        );
    }
}

fn bind_ip(ctx: &mut Ctx<'_>, path: &str, bind: Option<&str>) {
    if let Some(bind) = bind.filter(|b| b.parse::<IpAddr>().is_err()) {
        ctx.invalid(
            format!("{path}.bind"),
            format!("{bind:?} is not an IP address"),
        );
    }
}

fn ingress(
    ctx: &mut Ctx<'_>,
    path: &str,
    listener: &IstioIngressListener,
    ports: &mut BTreeSet<u32>,
) {
    let Some(port) = &listener.port else {
        ctx.missing(format!("{path}.port"));
        return;
    };
    listener_port(ctx, &format!("{path}.port"), port, false);
    bind_ip(ctx, path, listener.bind.as_deref());
    if !ports.insert(port.number) {
        ctx.invalid(
            format!("{path}.port.number"),
            format!("port {} has another ingress listener", port.number),
        );
    }
    if let Some(endpoint) = &listener.default_endpoint {
        if let Err(err) = default_endpoint(endpoint) {
            ctx.invalid(format!("{path}.defaultEndpoint"), err);
        }
    }
    if let Some(tls) = &listener.tls {
        let p = format!("{path}.tls");
        let refused = [
            ("subjectAltNames", !tls.subject_alt_names.is_empty()),
            ("httpsRedirect", tls.https_redirect == Some(true)),
            ("credentialName", tls.credential_name.is_some()),
            ("credentialNames", !tls.credential_names.is_empty()),
            ("tlsCertificates", !tls.tls_certificates.is_empty()),
        ];
        for (field, set) in refused {
            if set {
                ctx.invalid(
                    format!("{p}.{field}"),
                    format!("{field} is not supported on a Sidecar ingress listener"),
                );
            }
        }
        if let Some(mode @ (ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough)) = tls.mode
        {
            ctx.invalid(
                format!("{p}.mode"),
                format!("mode {mode:?} cannot be used on a Sidecar ingress listener"),
            );
        }
        if !protocol_class(&port.protocol).tls {
            ctx.invalid(
                p.clone(),
                format!(
                    "TLS settings need an HTTPS or TLS port, not {:?}",
                    port.protocol
                ),
            );
        }
        server_tls(ctx, &p, tls);
    }
    if let Some(pool) = &listener.connection_pool {
        let p = format!("{path}.connectionPool");
        connection_pool(ctx, &p, pool);
        if pool.http.is_some() && !protocol_class(&port.protocol).http {
            ctx.warn(
                ErrorKind::Ineffective,
                format!("{p}.http"),
                format!(
                    "port {} is not HTTP: only the tcp settings apply",
                    port.number
                ),
            );
        }
    }
}

/// `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`, `:PORT` or
/// `unix://PATH`.
fn default_endpoint(endpoint: &str) -> Result<(), String> {
    if let Some(socket) = endpoint.strip_prefix("unix://") {
        return unix_path(socket);
    }
    let bad = || {
        format!("{endpoint:?} is not 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://PATH")
    };
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        return Err(bad());
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        _ => Err(format!(
            "{endpoint:?}: port {port:?} is not a number in 1..65535"
        )),
    }
}

fn egress_port(ctx: &mut Ctx<'_>, path: &str, listener: &IstioEgressListener, port: &Port) {
    let unix = port.number == 0;
    listener_port(ctx, &format!("{path}.port"), port, unix);
    let bind = listener.bind.as_deref();
    if unix {
        match bind.and_then(|b| b.strip_prefix("unix://")) {
            None => ctx.invalid(
                format!("{path}.bind"),
                "a listener with port number 0 needs a unix:// bind address",
            ),
            Some(socket) => {
                if let Err(err) = unix_path(socket) {
                    ctx.invalid(format!("{path}.bind"), err);
                }
            }
        }
        if matches!(listener.capture_mode, Some(CaptureMode::Iptables)) {
            ctx.invalid(
                format!("{path}.captureMode"),
                "a unix socket listener takes captureMode DEFAULT or NONE",
            );
        }
    } else {
        bind_ip(ctx, path, bind);
    }
}

/// `namespace/host` entries; the same host listed twice (or a host also
/// covered by `ns/*`, or anything beside `*/*`) is a warning, as in Istio.
fn egress_hosts(ctx: &mut Ctx<'_>, path: &str, listener: &IstioEgressListener) {
    if listener.hosts.is_empty() {
        ctx.missing(format!("{path}.hosts"));
        return;
    }
    let own = ctx.namespace().to_string();
    let mut by_namespace: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (k, entry) in listener.hosts.iter().enumerate() {
        let p = format!("{path}.hosts[{k}]");
        if let Err(err) = sidecar_host(entry) {
            ctx.invalid(p, err);
            continue;
        }
        let Some((ns, host)) = entry.split_once('/') else {
            continue;
        };
        if ns.starts_with('~') {
            continue;
        }
        let ns = if ns == "." {
            own.clone()
        } else {
            ns.to_string()
        };
        let seen = by_namespace.entry(ns).or_default();
        let duplicate = if host == "*" {
            !seen.is_empty()
        } else {
            seen.contains(host) || seen.contains("*")
        };
        if duplicate {
            ctx.warn(
                ErrorKind::Ineffective,
                p,
                format!("{entry:?} is already covered by another host of this listener"),
            );
        }
        seen.insert(host);
    }
    let everything = by_namespace.get("*").is_some_and(|h| h.contains("*"));
    if everything && by_namespace.len() > 1 {
        ctx.warn(
            ErrorKind::Ineffective,
            format!("{path}.hosts"),
            "*/* selects every host: the other hosts add nothing",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::default_endpoint;

    #[test]
    fn default_endpoints() {
        for ok in [
            "127.0.0.1:8080",
            "0.0.0.0:80",
            "[::1]:9090",
            ":8080",
            "unix:///var/a.sock",
        ] {
            assert_eq!(default_endpoint(ok), Ok(()), "{ok}");
        }
        for bad in [
            "198.18.0.1:80",
            "127.0.0.1",
            "127.0.0.1:0",
            "unix://rel.sock",
            "localhost:80",
        ] {
            assert!(default_endpoint(bad).is_err(), "{bad}");
        }
    }
}

//! Per-object checks of a `DestinationRule`'s traffic policies (rule-level,
//! per subset, per port) with Istio's rules: connection pool, outlier
//! detection, client TLS per mode, port-level settings, tunnel and retry
//! budget; load balancing is checked in `load_balancer.rs`.
//!
//! Part of [`super`]; `destination_rule.rs` calls [`check`].

use std::collections::BTreeSet;

use super::hostname::fqdn;
use super::load_balancer::load_balancer;
use super::values::{duration, int_percent, non_negative, port_number};
use super::Ctx;
use crate::error::ErrorKind;
use crate::types::load_balancer::LoadBalancerSettings;
use crate::types::traffic_policy::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, H2UpgradePolicy, OutlierDetection,
    TrafficPolicy,
};

/// Checks the traffic policy at `path`.
pub(super) fn check(ctx: &mut Ctx<'_>, path: &str, policy: &TrafficPolicy) {
    if *policy == TrafficPolicy::default() {
        ctx.invalid(path, "a traffic policy needs at least one field");
        return;
    }
    if policy.tunnel.is_some() && policy.proxy_protocol.is_some() {
        ctx.invalid(path, "only one of tunnel and proxyProtocol may be set");
    }
    let outlier = policy.outlier_detection.as_ref();
    parts(
        ctx,
        path,
        policy.load_balancer.as_ref(),
        policy.connection_pool.as_ref(),
        outlier,
        policy.tls.as_ref(),
    );
    let mut ports = BTreeSet::new();
    for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
        let p = format!("{path}.portLevelSettings[{i}]");
        match &port_policy.port {
            Some(port) if port.name.is_some() && port.number == 0 => {}
            Some(port) => {
                port_number(ctx, &format!("{p}.port.number"), port.number);
                if port.number != 0 && !ports.insert(port.number) {
                    ctx.invalid(
                        format!("{p}.port.number"),
                        format!(
                            "port {} has more than one portLevelSettings entry",
                            port.number
                        ),
                    );
                }
            }
            None => ctx.missing(format!("{p}.port")),
        }
        let empty = port_policy.load_balancer.is_none()
            && port_policy.connection_pool.is_none()
            && port_policy.outlier_detection.is_none()
            && port_policy.tls.is_none();
        if empty {
            ctx.invalid(p, "a port traffic policy needs at least one field");
            continue;
        }
        parts(
            ctx,
            &p,
            port_policy.load_balancer.as_ref(),
            port_policy.connection_pool.as_ref(),
            port_policy.outlier_detection.as_ref(),
            port_policy.tls.as_ref(),
        );
    }
    if let Some(tunnel) = &policy.tunnel {
        let p = format!("{path}.tunnel");
        if tunnel.target_host.is_empty() {
            ctx.missing(format!("{p}.targetHost"));
        } else if fqdn(&tunnel.target_host).is_err()
            && tunnel.target_host.parse::<std::net::IpAddr>().is_err()
        {
            ctx.invalid(
                format!("{p}.targetHost"),
                format!("{:?} is not a host name or IP address", tunnel.target_host),
            );
        }
        port_number(ctx, &format!("{p}.targetPort"), tunnel.target_port);
        if let Some(proto) = tunnel
            .protocol
            .as_deref()
            .filter(|p| *p != "CONNECT" && *p != "POST")
        {
            ctx.invalid(
                format!("{p}.protocol"),
                format!("{proto:?} is not CONNECT or POST"),
            );
        }
    }
    if let Some(v) = policy
        .retry_budget
        .as_ref()
        .and_then(|b| b.percent)
        .filter(|v| !(0.0..=100.0).contains(v))
    {
        ctx.invalid(
            format!("{path}.retryBudget.percent"),
            format!("percentage {v} is out of range 0..100"),
        );
    }
}

/// The parts a port-level policy shares with the whole policy.
fn parts(
    ctx: &mut Ctx<'_>,
    path: &str,
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
) {
    if let Some(lb) = lb {
        load_balancer(ctx, &format!("{path}.loadBalancer"), lb, outlier.is_some());
    }
    if let Some(pool) = pool {
        connection_pool(ctx, &format!("{path}.connectionPool"), pool);
    }
    if let Some(od) = outlier {
        outlier_detection(ctx, &format!("{path}.outlierDetection"), od);
    }
    if let Some(tls) = tls {
        client_tls(ctx, &format!("{path}.tls"), tls);
    }
}

/// Connection pool limits (also a Sidecar's inbound pools).
pub(super) fn connection_pool(ctx: &mut Ctx<'_>, path: &str, pool: &ConnectionPoolSettings) {
    if pool.tcp.is_none() && pool.http.is_none() {
        ctx.invalid(path, "a connection pool needs tcp and/or http settings");
    }
    if let Some(http) = &pool.http {
        let p = format!("{path}.http");
        let counts = [
            ("http1MaxPendingRequests", http.http1_max_pending_requests),
            ("http2MaxRequests", http.http2_max_requests),
            ("maxRequestsPerConnection", http.max_requests_per_connection),
            ("maxRetries", http.max_retries),
            ("maxConcurrentStreams", http.max_concurrent_streams),
        ];
        for (field, value) in counts {
            non_negative(ctx, &format!("{p}.{field}"), value);
        }
        duration(ctx, &format!("{p}.idleTimeout"), http.idle_timeout.as_ref());
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
            && http.use_client_protocol == Some(true)
        {
            ctx.invalid(
                format!("{p}.useClientProtocol"),
                "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE",
            );
        }
        if let Some(keepalive) = &http.http2_keep_alive {
            let k = format!("{p}.http2KeepAlive");
            for (field, value) in [
                ("interval", &keepalive.interval),
                ("timeout", &keepalive.timeout),
            ] {
                match value {
                    None => ctx.missing(format!("{k}.{field}")),
                    Some(d) => duration(ctx, &format!("{k}.{field}"), Some(d)),
                }
            }
        }
    }
    if let Some(tcp) = &pool.tcp {
        let p = format!("{path}.tcp");
        non_negative(ctx, &format!("{p}.maxConnections"), tcp.max_connections);
        duration(
            ctx,
            &format!("{p}.connectTimeout"),
            tcp.connect_timeout.as_ref(),
        );
        duration(
            ctx,
            &format!("{p}.maxConnectionDuration"),
            tcp.max_connection_duration.as_ref(),
        );
        // 0s turns the idle timeout off.
        let idle = tcp.idle_timeout.filter(|d| !d.0.is_zero());
        duration(ctx, &format!("{p}.idleTimeout"), idle.as_ref());
        if let Some(ka) = &tcp.tcp_keepalive {
            duration(ctx, &format!("{p}.tcpKeepalive.time"), ka.time.as_ref());
            duration(
                ctx,
                &format!("{p}.tcpKeepalive.interval"),
                ka.interval.as_ref(),
            );
        }
    }
}

fn outlier_detection(ctx: &mut Ctx<'_>, path: &str, od: &OutlierDetection) {
    duration(
        ctx,
        &format!("{path}.baseEjectionTime"),
        od.base_ejection_time.as_ref(),
    );
    duration(ctx, &format!("{path}.interval"), od.interval.as_ref());
    if od.consecutive_local_origin_failures.is_some_and(|n| n > 0)
        && od.split_external_local_origin_errors != Some(true)
    {
        ctx.invalid(
            format!("{path}.consecutiveLocalOriginFailures"),
            "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true",
        );
    }
    int_percent(
        ctx,
        &format!("{path}.maxEjectionPercent"),
        od.max_ejection_percent,
    );
    int_percent(
        ctx,
        &format!("{path}.minHealthPercent"),
        od.min_health_percent,
    );
    for (i, code) in od.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            ctx.invalid(
                format!("{path}.outlierDetectionHttpErrorCodes[{i}]"),
                format!("{code} is not an HTTP status code (100..599)"),
            );
        }
    }
}

fn client_tls(ctx: &mut Ctx<'_>, path: &str, tls: &ClientTlsSettings) {
    let files = tls.client_certificate.is_some()
        || tls.private_key.is_some()
        || tls.ca_certificates.is_some()
        || tls.ca_crl.is_some();
    let mode = tls.mode;
    let simple_or_mutual = matches!(mode, Some(ClientTlsMode::Simple | ClientTlsMode::Mutual));
    if tls.insecure_skip_verify == Some(true) {
        let verifying = tls.ca_certificates.is_some()
            || !tls.subject_alt_names.is_empty()
            || (mode == Some(ClientTlsMode::Simple) && tls.credential_name.is_some());
        if simple_or_mutual && verifying {
            ctx.invalid(
                format!("{path}.insecureSkipVerify"),
                "insecureSkipVerify cannot be combined with caCertificates, subjectAltNames or (SIMPLE) credentialName",
            );
        }
    }
    if simple_or_mutual && tls.credential_name.is_some() && files {
        ctx.invalid(
            format!("{path}.credentialName"),
            "credentialName cannot be combined with clientCertificate, privateKey, caCertificates or caCrl",
        );
    }
    if mode == Some(ClientTlsMode::Mutual) && tls.credential_name.is_none() {
        if tls.client_certificate.is_none() {
            ctx.missing(format!("{path}.clientCertificate"));
        }
        if tls.private_key.is_none() {
            ctx.missing(format!("{path}.privateKey"));
        }
    }
    if let Some(sni) = &tls.sni {
        if sni.contains('*') || fqdn(sni).is_err() {
            ctx.invalid(
                format!("{path}.sni"),
                format!("{sni:?} is not a server name (a DNS name without wildcards)"),
            );
        }
    }
    let other = files
        || tls.credential_name.is_some()
        || tls.sni.is_some()
        || !tls.subject_alt_names.is_empty()
        || tls.insecure_skip_verify.is_some();
    if matches!(mode, None | Some(ClientTlsMode::Disable)) && other {
        ctx.warn(
            ErrorKind::Ineffective,
            format!("{path}.mode"),
            "TLS mode is DISABLE (the default): the other TLS settings have no effect",
        );
    }
}

//! Per-object checks of a `DestinationRule`: host, subsets (named, unique)
//! and traffic policies (load balancer, connection pool, outlier detection,
//! TLS, per-port settings).
//!
//! Part of [`super`]; whether routes name existing subsets is checked across
//! objects in `cross.rs`.

use std::collections::BTreeSet;

use super::{is_dns1123_label, is_wildcard_host, percent, port_number, Ctx};
use crate::types::destination_rule::DestinationRuleSpec;
use crate::types::traffic_policy::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings,
    OutlierDetection, TrafficPolicy,
};

/// Checks a DestinationRule spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &DestinationRuleSpec) {
    if spec.host.is_empty() {
        ctx.missing("spec.host");
    } else if spec.host == "*" || !is_wildcard_host(&spec.host) {
        ctx.invalid("spec.host", format!("{:?} is not a valid host", spec.host));
    }
    if let Some(policy) = &spec.traffic_policy {
        traffic_policy(ctx, "spec.trafficPolicy", policy, true);
    }
    let mut names = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        if subset.name.is_empty() {
            ctx.missing(format!("{path}.name"));
        } else if !is_dns1123_label(&subset.name) {
            ctx.invalid(
                format!("{path}.name"),
                format!(
                    "{:?} is not a valid subset name (lowercase letters, digits, '-')",
                    subset.name
                ),
            );
        } else if !names.insert(subset.name.as_str()) {
            ctx.invalid(
                format!("{path}.name"),
                format!("subset {:?} is defined more than once", subset.name),
            );
        }
        if let Some(policy) = &subset.traffic_policy {
            traffic_policy(ctx, &format!("{path}.trafficPolicy"), policy, true);
        }
    }
}

fn traffic_policy(ctx: &mut Ctx<'_>, path: &str, policy: &TrafficPolicy, top: bool) {
    if let Some(lb) = &policy.load_balancer {
        load_balancer(ctx, &format!("{path}.loadBalancer"), lb);
    }
    if let Some(pool) = &policy.connection_pool {
        connection_pool(ctx, &format!("{path}.connectionPool"), pool);
    }
    if let Some(od) = &policy.outlier_detection {
        outlier_detection(ctx, &format!("{path}.outlierDetection"), od);
    }
    if let Some(tls) = &policy.tls {
        client_tls(ctx, &format!("{path}.tls"), tls);
    }
    if top {
        for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
            let p = format!("{path}.portLevelSettings[{i}]");
            match &port_policy.port {
                Some(port) => port_number(ctx, &format!("{p}.port.number"), port.number),
                None => ctx.missing(format!("{p}.port")),
            }
            let as_policy = TrafficPolicy {
                load_balancer: port_policy.load_balancer.clone(),
                connection_pool: port_policy.connection_pool.clone(),
                outlier_detection: port_policy.outlier_detection.clone(),
                tls: port_policy.tls.clone(),
                ..Default::default()
            };
            traffic_policy(ctx, &p, &as_policy, false);
        }
    }
    if let Some(tunnel) = &policy.tunnel {
        let p = format!("{path}.tunnel");
        if tunnel.target_host.is_empty() {
            ctx.missing(format!("{p}.targetHost"));
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
    if let Some(budget) = &policy.retry_budget {
        percent(
            ctx,
            &format!("{path}.retryBudget.percent"),
            budget.percent.as_ref(),
        );
    }
    if let Some(version) = policy
        .proxy_protocol
        .as_ref()
        .and_then(|p| p.version.as_deref())
    {
        if version != "V1" && version != "V2" {
            ctx.invalid(
                format!("{path}.proxyProtocol.version"),
                format!("{version:?} is not V1 or V2"),
            );
        }
    }
}

fn load_balancer(ctx: &mut Ctx<'_>, path: &str, lb: &LoadBalancerSettings) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        ctx.invalid(path, "only one of simple and consistentHash may be set");
    }
    if let Some(hash) = &lb.consistent_hash {
        let keys = [
            hash.http_header_name.is_some(),
            hash.http_cookie.is_some(),
            hash.use_source_ip.is_some(),
            hash.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() > 1 {
            ctx.invalid(
                format!("{path}.consistentHash"),
                "only one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName may be set",
            );
        }
        if hash.http_cookie.as_ref().is_some_and(|c| c.name.is_empty()) {
            ctx.missing(format!("{path}.consistentHash.httpCookie.name"));
        }
    }
    if let Some(locality) = &lb.locality_lb_setting {
        let p = format!("{path}.localityLbSetting");
        if !locality.distribute.is_empty() && !locality.failover.is_empty() {
            ctx.invalid(p.clone(), "only one of distribute and failover may be set");
        }
        for (i, d) in locality.distribute.iter().enumerate() {
            let total: u64 = d.to.values().map(|w| u64::from(*w)).sum();
            if total != 100 {
                ctx.invalid(
                    format!("{p}.distribute[{i}].to"),
                    format!("locality weights sum to {total}, not 100"),
                );
            }
        }
    }
}

fn connection_pool(ctx: &mut Ctx<'_>, path: &str, pool: &ConnectionPoolSettings) {
    let mut non_negative = |field: String, value: Option<i32>| {
        if let Some(v) = value.filter(|v| *v < 0) {
            ctx.invalid(field, format!("{v} cannot be negative"));
        }
    };
    if let Some(tcp) = &pool.tcp {
        non_negative(format!("{path}.tcp.maxConnections"), tcp.max_connections);
    }
    if let Some(http) = &pool.http {
        let p = format!("{path}.http");
        non_negative(
            format!("{p}.http1MaxPendingRequests"),
            http.http1_max_pending_requests,
        );
        non_negative(format!("{p}.http2MaxRequests"), http.http2_max_requests);
        non_negative(
            format!("{p}.maxRequestsPerConnection"),
            http.max_requests_per_connection,
        );
        non_negative(format!("{p}.maxRetries"), http.max_retries);
        non_negative(
            format!("{p}.maxConcurrentStreams"),
            http.max_concurrent_streams,
        );
    }
}

fn outlier_detection(ctx: &mut Ctx<'_>, path: &str, od: &OutlierDetection) {
    let percents = [
        ("maxEjectionPercent", od.max_ejection_percent),
        ("minHealthPercent", od.min_health_percent),
    ];
    for (field, value) in percents {
        if let Some(v) = value.filter(|v| !(0..=100).contains(v)) {
            ctx.invalid(
                format!("{path}.{field}"),
                format!("percentage {v} is out of range 0..100"),
            );
        }
    }
    if let Some(v) = od.consecutive_errors.filter(|v| *v < 0) {
        ctx.invalid(
            format!("{path}.consecutiveErrors"),
            format!("{v} cannot be negative"),
        );
    }
}

fn client_tls(ctx: &mut Ctx<'_>, path: &str, tls: &ClientTlsSettings) {
    if tls.mode == Some(ClientTlsMode::Mutual) && tls.credential_name.is_none() {
        if tls.client_certificate.is_none() {
            ctx.missing(format!("{path}.clientCertificate"));
        }
        if tls.private_key.is_none() {
            ctx.missing(format!("{path}.privateKey"));
        }
    }
    if tls.mode == Some(ClientTlsMode::IstioMutual) {
        let custom = tls.client_certificate.is_some()
            || tls.private_key.is_some()
            || tls.ca_certificates.is_some()
            || tls.credential_name.is_some();
        if custom {
            ctx.invalid(
                path,
                "ISTIO_MUTUAL uses mesh certificates; certificate and key fields may not be set",
            );
        }
    }
}

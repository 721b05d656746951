//! A DestinationRule traffic policy on an outbound cluster, as Istio
//! translates it: load balancer (simple, consistent hash, warm-up),
//! connection pool (circuit breaker thresholds, HTTP protocol options, TCP
//! keepalive, connect timeout, HTTP/2 upgrade), outlier detection (and the
//! panic threshold from `minHealthPercent`) and client TLS (`tls.rs`).
//!
//! ```text
//!  Rule::policy(subset, port) ──► apply(cluster, policy, port) ──► Cluster fields
//!  (no rule)                  ──► defaults: LEAST_REQUEST, open circuit breakers
//! ```

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers, cluster, CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlier,
    UpstreamConnectionOptions,
};
use envoy_types::pb::envoy::config::core::v3::{
    HttpProtocolOptions as CommonHttpOptions, RuntimeDouble, TcpKeepalive,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::v3::Percent as EnvoyPercent;
use envoy_types::pb::google::protobuf::{UInt32Value, UInt64Value};

use mesh_api::types::load_balancer::{LoadBalancerSettings, SimpleLb};
use mesh_api::types::traffic_policy::{
    ConnectionPoolSettings, H2UpgradePolicy, OutlierDetection, TcpKeepalive as IstioKeepalive,
    TrafficPolicy,
};

use super::super::filters::duration;
use crate::registry::ServicePort;

/// Envoy's default ring size for RING_HASH, which Istio always sets.
const DEFAULT_RING_SIZE: u64 = 1024;

/// Istio's circuit breaker thresholds when a rule sets none: effectively
/// unlimited (Envoy's own defaults, 1024 and 3 retries, cut off traffic
/// during pod churn).
pub fn default_thresholds() -> circuit_breakers::Thresholds {
    let max = Some(UInt32Value { value: u32::MAX });
    circuit_breakers::Thresholds {
        max_connections: max,
        max_pending_requests: max,
        max_requests: max,
        max_retries: max,
        track_remaining: true,
        ..Default::default()
    }
}

/// The HTTP protocol options of an outbound cluster, before a policy:
/// explicit HTTP/2 for HTTP2 and GRPC ports.
pub fn protocol_options(port: &ServicePort) -> Option<HttpProtocolOptions> {
    port.protocol.is_http2().then(http2_options)
}

/// Explicit HTTP/2 to the upstream.
pub fn http2_protocol_options() -> HttpProtocolOptions {
    http2_options()
}

/// Whether `options` make the cluster speak HTTP/2.
pub fn is_http2(options: &HttpProtocolOptions) -> bool {
    matches!(
        &options.upstream_protocol_options,
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(_))
            }
        ))
    )
}

fn http2_options() -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(Default::default())),
            },
        )),
        ..Default::default()
    }
}

/// Apply `policy` (possibly none) to an outbound cluster of `port`, and
/// return the HTTP protocol options the cluster needs, if any.
pub fn apply(
    c: &mut Cluster,
    policy: Option<&TrafficPolicy>,
    port: &ServicePort,
) -> Option<HttpProtocolOptions> {
    let mut options = protocol_options(port);
    let pool = policy.and_then(|p| p.connection_pool.as_ref());
    if should_upgrade_h2(pool, port) {
        options = Some(http2_options());
    }
    connection_pool(c, pool, &mut options);
    if let Some(od) = policy.and_then(|p| p.outlier_detection.as_ref()) {
        outlier_detection(c, od);
    }
    load_balancer(c, policy.and_then(|p| p.load_balancer.as_ref()));
    locality_weighted(c, policy);
    options
}

/// Istio turns on locality-weighted balancing when the rule distributes
/// weights across localities, or fails over between named regions (with
/// outlier detection, which failover needs).
fn locality_weighted(c: &mut Cluster, policy: Option<&TrafficPolicy>) {
    let Some(policy) = policy else { return };
    let Some(setting) = policy
        .load_balancer
        .as_ref()
        .and_then(|l| l.locality_lb_setting.as_ref())
    else {
        return;
    };
    let failover = policy.outlier_detection.is_some()
        && (!setting.failover.is_empty() || !setting.failover_priority.is_empty());
    if setting.enabled != Some(false) && (failover || !setting.distribute.is_empty()) {
        c.common_lb_config
            .get_or_insert_with(Default::default)
            .locality_config_specifier = Some(
            cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(
                Default::default(),
            ),
        );
    }
}

/// Istio upgrades an HTTP/1.1 port's cluster to HTTP/2 only when the rule
/// says `h2UpgradePolicy: UPGRADE` (the mesh default is not to), and never
/// with `useClientProtocol`.
fn should_upgrade_h2(pool: Option<&ConnectionPoolSettings>, port: &ServicePort) -> bool {
    let Some(http) = pool.and_then(|p| p.http.as_ref()) else {
        return false;
    };
    if http.use_client_protocol == Some(true) {
        return false;
    }
    http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) && port.protocol.is_http()
}

fn positive(v: Option<i32>) -> Option<UInt32Value> {
    v.filter(|v| *v > 0)
        .map(|v| UInt32Value { value: v as u32 })
}

fn connection_pool(
    c: &mut Cluster,
    pool: Option<&ConnectionPoolSettings>,
    options: &mut Option<HttpProtocolOptions>,
) {
    let mut t = default_thresholds();
    let mut common = CommonHttpOptions::default();
    let mut common_set = false;
    if let Some(http) = pool.and_then(|p| p.http.as_ref()) {
        if let Some(v) = positive(http.http2_max_requests) {
            t.max_requests = Some(v);
        }
        if let Some(v) = positive(http.http1_max_pending_requests) {
            t.max_pending_requests = Some(v);
        }
        if let Some(v) = positive(http.max_retries) {
            t.max_retries = Some(v);
        }
        if let Some(idle) = http.idle_timeout {
            common.idle_timeout = Some(duration(idle.0));
            common_set = true;
        }
        if let Some(v) = positive(http.max_requests_per_connection) {
            common.max_requests_per_connection = Some(v);
            common_set = true;
        }
        if let Some(streams) = positive(http.max_concurrent_streams) {
            if let Some(ProtocolConfig::Http2ProtocolOptions(h2)) =
                options
                    .as_mut()
                    .and_then(|o| match &mut o.upstream_protocol_options {
                        Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => {
                            e.protocol_config.as_mut()
                        }
                        _ => None,
                    })
            {
                h2.max_concurrent_streams = Some(streams);
            }
        }
        if http.use_client_protocol == Some(true) {
            options
                .get_or_insert_with(HttpProtocolOptions::default)
                .upstream_protocol_options = Some(
                UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
                    http_protocol_options: Some(Default::default()),
                    http2_protocol_options: Some(Default::default()),
                    ..Default::default()
                }),
            );
        }
    }
    if let Some(tcp) = pool.and_then(|p| p.tcp.as_ref()) {
        if let Some(timeout) = tcp.connect_timeout {
            c.connect_timeout = Some(duration(timeout.0));
        }
        if let Some(v) = positive(tcp.max_connections) {
            t.max_connections = Some(v);
        }
        if let Some(d) = tcp.max_connection_duration {
            common.max_connection_duration = Some(duration(d.0));
            common_set = true;
        }
        if common.idle_timeout.is_none() {
            if let Some(idle) = tcp.idle_timeout {
                common.idle_timeout = Some(duration(idle.0));
                common_set = true;
            }
        }
        if let Some(keepalive) = &tcp.tcp_keepalive {
            c.upstream_connection_options = Some(UpstreamConnectionOptions {
                tcp_keepalive: Some(tcp_keepalive(keepalive)),
                ..Default::default()
            });
        }
    }
    c.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![t],
        ..Default::default()
    });
    if common_set {
        options
            .get_or_insert_with(HttpProtocolOptions::default)
            .common_http_protocol_options = Some(common);
    }
}

fn tcp_keepalive(k: &IstioKeepalive) -> TcpKeepalive {
    let secs = |d: Option<mesh_api::Duration>| {
        d.map(|d| UInt32Value {
            value: u32::try_from(d.0.as_secs()).unwrap_or(u32::MAX),
        })
    };
    TcpKeepalive {
        keepalive_probes: k.probes.map(|value| UInt32Value { value }),
        keepalive_time: secs(k.time),
        keepalive_interval: secs(k.interval),
    }
}

fn outlier_detection(c: &mut Cluster, od: &OutlierDetection) {
    let enforcing = |v: u32| {
        Some(UInt32Value {
            value: if v > 0 { 100 } else { 0 },
        })
    };
    let mut out = EnvoyOutlier {
        // Istio never ejects by success rate.
        enforcing_success_rate: Some(UInt32Value { value: 0 }),
        ..Default::default()
    };
    if let Some(v) = od.consecutive_5xx_errors {
        out.consecutive_5xx = Some(UInt32Value { value: v });
        out.enforcing_consecutive_5xx = enforcing(v);
    }
    if let Some(v) = od.consecutive_gateway_errors {
        out.consecutive_gateway_failure = Some(UInt32Value { value: v });
        out.enforcing_consecutive_gateway_failure = enforcing(v);
    }
    out.interval = od.interval.map(|d| duration(d.0));
    out.base_ejection_time = od.base_ejection_time.map(|d| duration(d.0));
    out.max_ejection_percent = positive(od.max_ejection_percent);
    if od.split_external_local_origin_errors == Some(true) {
        out.split_external_local_origin_errors = true;
        if let Some(v) = od.consecutive_local_origin_failures.filter(|v| *v > 0) {
            out.consecutive_local_origin_failure = Some(UInt32Value { value: v });
            out.enforcing_consecutive_local_origin_failure = enforcing(v);
        }
        out.enforcing_local_origin_success_rate = Some(UInt32Value { value: 0 });
    }
    c.outlier_detection = Some(out);
    // Istio turns the panic threshold off unless the rule asks for one: a
    // service of few endpoints would otherwise send to ejected ones.
    let min_health = od.min_health_percent.unwrap_or(0).max(0);
    c.common_lb_config
        .get_or_insert_with(Default::default)
        .healthy_panic_threshold = Some(EnvoyPercent {
        value: f64::from(min_health),
    });
}

fn load_balancer(c: &mut Cluster, lb: Option<&LoadBalancerSettings>) {
    if c.lb_policy == cluster::LbPolicy::ClusterProvided as i32 {
        return;
    }
    let slow_start = lb.and_then(slow_start);
    match lb.and_then(|l| l.simple) {
        Some(SimpleLb::Random) => c.lb_policy = cluster::LbPolicy::Random as i32,
        Some(SimpleLb::RoundRobin) => {
            c.lb_policy = cluster::LbPolicy::RoundRobin as i32;
            c.lb_config = slow_start.map(|s| {
                cluster::LbConfig::RoundRobinLbConfig(cluster::RoundRobinLbConfig {
                    slow_start_config: Some(s),
                })
            });
        }
        Some(SimpleLb::Passthrough) => {
            c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            ));
            c.eds_cluster_config = None;
            c.load_assignment = None;
        }
        // Istio's default algorithm, also for UNSPECIFIED and LEAST_CONN.
        _ => {
            c.lb_policy = cluster::LbPolicy::LeastRequest as i32;
            c.lb_config = slow_start.map(|s| {
                cluster::LbConfig::LeastRequestLbConfig(cluster::LeastRequestLbConfig {
                    slow_start_config: Some(s),
                    ..Default::default()
                })
            });
        }
    }
    if let Some(hash) = lb.and_then(|l| l.consistent_hash.as_ref()) {
        if let Some(maglev) = &hash.maglev {
            c.lb_policy = cluster::LbPolicy::Maglev as i32;
            c.lb_config = (maglev.table_size != 0).then_some(cluster::LbConfig::MaglevLbConfig(
                cluster::MaglevLbConfig {
                    table_size: Some(UInt64Value {
                        value: maglev.table_size,
                    }),
                },
            ));
        } else {
            let size = hash
                .ring_hash
                .as_ref()
                .map(|r| r.minimum_ring_size)
                .or(hash.minimum_ring_size)
                .filter(|s| *s != 0)
                .unwrap_or(DEFAULT_RING_SIZE);
            c.lb_policy = cluster::LbPolicy::RingHash as i32;
            c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
                cluster::RingHashLbConfig {
                    minimum_ring_size: Some(UInt64Value { value: size }),
                    ..Default::default()
                },
            ));
        }
    }
}

/// Slow start from `warmup` or the older `warmupDurationSecs`.
fn slow_start(lb: &LoadBalancerSettings) -> Option<cluster::SlowStartConfig> {
    if let Some(w) = &lb.warmup {
        return Some(cluster::SlowStartConfig {
            slow_start_window: w.duration.map(|d| duration(d.0)),
            aggression: Some(RuntimeDouble {
                default_value: w.aggression.unwrap_or(1.0),
                // Istio pins the value: no runtime override.
                runtime_key: "(".to_string(),
            }),
            min_weight_percent: Some(EnvoyPercent {
                value: w.minimum_percent.unwrap_or(10.0),
            }),
        });
    }
    lb.warmup_duration_secs.map(|d| cluster::SlowStartConfig {
        slow_start_window: Some(duration(d.0)),
        ..Default::default()
    })
}

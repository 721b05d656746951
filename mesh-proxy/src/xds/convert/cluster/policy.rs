//! Conversion of a cluster's balancing and protection policies: `lb_policy`
//! with its `lb_config`, `common_lb_config`, `circuit_breakers` and
//! `outlier_detection`, each with Envoy's defaults for unset fields.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds,
    cluster::{
        common_lb_config::LocalityConfigSpecifier, DiscoveryType, LbConfig as XdsLbConfig,
        LbPolicy as XdsLbPolicy, RingHashLbConfig, SlowStartConfig,
    },
    Cluster as XdsCluster, OutlierDetection as XdsOutlier,
};
use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};

use super::super::duration;
use crate::model::{
    CircuitBreakers, FailurePercentage, LbConfig, LbPolicy, OutlierDetection, SlowStart,
    SuccessRate,
};
use crate::xds::error::ConvertError;

/// Envoy's largest ring.
const MAX_RING: u64 = 8 * 1024 * 1024;

/// The policy and its parameters. A `lb_config` for another policy than the
/// one chosen is refused, as is anything of `common_lb_config` the proxy
/// does not do (zone-aware routing, consistent hashing options).
#[allow(deprecated)]
pub(super) fn load_balancing(
    c: &XdsCluster,
    kind: DiscoveryType,
) -> Result<(LbPolicy, LbConfig), ConvertError> {
    let policy = match XdsLbPolicy::try_from(c.lb_policy) {
        Ok(XdsLbPolicy::RoundRobin) => LbPolicy::RoundRobin,
        Ok(XdsLbPolicy::Random) => LbPolicy::Random,
        Ok(XdsLbPolicy::LeastRequest) => LbPolicy::LeastRequest,
        Ok(XdsLbPolicy::RingHash) => LbPolicy::RingHash,
        Ok(XdsLbPolicy::Maglev) => LbPolicy::Maglev,
        Ok(XdsLbPolicy::ClusterProvided) if kind == DiscoveryType::OriginalDst => {
            LbPolicy::ClusterProvided
        }
        Ok(other) => {
            return Err(ConvertError::unsupported(format!(
                "lb_policy {} for this cluster type",
                other.as_str_name()
            )))
        }
        Err(_) => return Err(ConvertError::invalid("lb_policy", c.lb_policy.to_string())),
    };
    // Envoy refuses the same: an ORIGINAL_DST cluster picks its own host.
    if kind == DiscoveryType::OriginalDst && policy != LbPolicy::ClusterProvided {
        return Err(ConvertError::invalid(
            "lb_policy",
            "ORIGINAL_DST clusters take only CLUSTER_PROVIDED",
        ));
    }
    let mut lb = LbConfig::default();
    match (&c.lb_config, policy) {
        (None, _) | (Some(XdsLbConfig::OriginalDstLbConfig(_)), LbPolicy::ClusterProvided) => {}
        (Some(XdsLbConfig::RoundRobinLbConfig(rr)), LbPolicy::RoundRobin) => {
            lb.slow_start = slow_start(rr.slow_start_config.as_ref())
                .map_err(|e| e.at("round_robin_lb_config"))?;
        }
        (Some(XdsLbConfig::LeastRequestLbConfig(lr)), LbPolicy::LeastRequest) => {
            if lr.active_request_bias.is_some() {
                return Err(ConvertError::unsupported(
                    "least_request_lb_config.active_request_bias",
                ));
            }
            lb.choice_count = match &lr.choice_count {
                None => 2,
                Some(n) if n.value >= 2 => n.value,
                Some(_) => {
                    return Err(ConvertError::invalid(
                        "least_request_lb_config.choice_count",
                        "must be at least 2",
                    ))
                }
            };
            lb.slow_start = slow_start(lr.slow_start_config.as_ref())
                .map_err(|e| e.at("least_request_lb_config"))?;
        }
        (Some(XdsLbConfig::RingHashLbConfig(ring)), LbPolicy::RingHash) => {
            (lb.ring_min, lb.ring_max) = ring_sizes(ring)?;
        }
        (Some(XdsLbConfig::MaglevLbConfig(maglev)), LbPolicy::Maglev) => {
            if let Some(size) = &maglev.table_size {
                if !is_prime(size.value) || size.value > 5_000_011 {
                    return Err(ConvertError::invalid(
                        "maglev_lb_config.table_size",
                        format!("{} is not a prime of at most 5000011", size.value),
                    ));
                }
                lb.maglev_table_size = size.value;
            }
        }
        (Some(_), _) => {
            return Err(ConvertError::invalid(
                "lb_config",
                "does not belong to the cluster's lb_policy",
            ))
        }
    }
    if let Some(common) = &c.common_lb_config {
        let at = |e: ConvertError| e.at("common_lb_config");
        if let Some(t) = &common.healthy_panic_threshold {
            if !(0.0..=100.0).contains(&t.value) {
                return Err(at(ConvertError::invalid(
                    "healthy_panic_threshold",
                    "must be within 0..100",
                )));
            }
            lb.healthy_panic_threshold = t.value;
        }
        match &common.locality_config_specifier {
            None => {}
            Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_)) => {
                // Envoy folds locality weights into the hash table's host
                // weights; this proxy chooses the locality first, which
                // would break a key's stickiness.
                if matches!(policy, LbPolicy::RingHash | LbPolicy::Maglev) {
                    return Err(at(ConvertError::unsupported(
                        "locality_weighted_lb_config with RING_HASH or MAGLEV",
                    )));
                }
                lb.locality_weighted = true;
            }
            Some(LocalityConfigSpecifier::ZoneAwareLbConfig(_)) => {
                return Err(at(ConvertError::unsupported("zone_aware_lb_config")))
            }
        }
        let refuse = |set: bool, field: &str| {
            if set {
                Err(at(ConvertError::unsupported(field.to_owned())))
            } else {
                Ok(())
            }
        };
        refuse(
            common.consistent_hashing_lb_config.is_some(),
            "consistent_hashing_lb_config",
        )?;
        refuse(
            common.override_host_status.is_some(),
            "override_host_status",
        )?;
        refuse(
            common.ignore_new_hosts_until_first_hc,
            "ignore_new_hosts_until_first_hc",
        )?;
        refuse(
            common.close_connections_on_host_set_change,
            "close_connections_on_host_set_change",
        )?;
    }
    Ok((policy, lb))
}

fn ring_sizes(ring: &RingHashLbConfig) -> Result<(u64, u64), ConvertError> {
    // Only xxHash, Envoy's default; MURMUR_HASH_2 (1) is not implemented.
    if ring.hash_function != 0 {
        return Err(ConvertError::unsupported(
            "ring_hash_lb_config.hash_function MURMUR_HASH_2",
        ));
    }
    let min = ring.minimum_ring_size.as_ref().map_or(1024, |v| v.value);
    let max = ring
        .maximum_ring_size
        .as_ref()
        .map_or(MAX_RING, |v| v.value);
    if min == 0 || min > MAX_RING || max > MAX_RING || min > max {
        return Err(ConvertError::invalid(
            "ring_hash_lb_config",
            format!("ring sizes {min}..{max} (need 1 <= minimum <= maximum <= 8M)"),
        ));
    }
    Ok((min, max))
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn slow_start(config: Option<&SlowStartConfig>) -> Result<Option<SlowStart>, ConvertError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let at = |e: ConvertError| e.at("slow_start_config");
    let Some(window) = &config.slow_start_window else {
        // No window: slow start is off, as in Envoy.
        return Ok(None);
    };
    let window = duration(window).map_err(at)?;
    let aggression = config.aggression.as_ref().map_or(1.0, |a| a.default_value);
    if !(aggression.is_finite() && aggression > 0.0) {
        return Err(at(ConvertError::invalid("aggression", "must be positive")));
    }
    let min_weight = config.min_weight_percent.as_ref().map_or(10.0, |p| p.value);
    if !(0.0..=100.0).contains(&min_weight) {
        return Err(at(ConvertError::invalid(
            "min_weight_percent",
            "must be within 0..100",
        )));
    }
    if window.is_zero() {
        return Ok(None);
    }
    Ok(Some(SlowStart {
        window,
        aggression,
        min_weight: min_weight / 100.0,
    }))
}

/// The DEFAULT priority's thresholds (Envoy's defaults without any).
/// HIGH thresholds are accepted: every request the proxy sends is of
/// DEFAULT priority, so they never apply.
pub(super) fn circuit_breakers(c: &XdsCluster) -> Result<CircuitBreakers, ConvertError> {
    let mut limits = CircuitBreakers::default();
    let Some(breakers) = &c.circuit_breakers else {
        return Ok(limits);
    };
    if !breakers.per_host_thresholds.is_empty() {
        return Err(ConvertError::unsupported("per_host_thresholds"));
    }
    for (i, t) in breakers.thresholds.iter().enumerate() {
        let at = |e: ConvertError| e.at(format!("thresholds[{i}]"));
        check_thresholds(t).map_err(at)?;
        if RoutingPriority::try_from(t.priority) != Ok(RoutingPriority::Default) {
            continue;
        }
        let value = |v: &Option<UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value);
        limits = CircuitBreakers {
            max_connections: value(&t.max_connections, 1024),
            max_pending_requests: value(&t.max_pending_requests, 1024),
            max_requests: value(&t.max_requests, 1024),
            max_retries: value(&t.max_retries, 3),
        };
    }
    Ok(limits)
}

fn check_thresholds(t: &Thresholds) -> Result<(), ConvertError> {
    if RoutingPriority::try_from(t.priority).is_err() {
        return Err(ConvertError::invalid(
            "priority",
            format!("unknown value {}", t.priority),
        ));
    }
    if t.retry_budget.is_some() {
        return Err(ConvertError::unsupported("retry_budget"));
    }
    if t.max_connection_pools.is_some() {
        return Err(ConvertError::unsupported("max_connection_pools"));
    }
    // `track_remaining` only publishes gauges; there is nothing to honour
    // in the data path.
    Ok(())
}

/// `outlier_detection` with Envoy's defaults.
pub(super) fn outlier_detection(c: &XdsCluster) -> Result<Option<OutlierDetection>, ConvertError> {
    let Some(o) = &c.outlier_detection else {
        return Ok(None);
    };
    refuse_outlier_extras(o)?;
    let d = OutlierDetection::default();
    let n = |v: &Option<UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value);
    let pct = |v: &Option<UInt32Value>, default: u32, field: &'static str| match v {
        Some(v) if v.value > 100 => Err(ConvertError::invalid(field, "must be at most 100")),
        _ => Ok(n(v, default)),
    };
    let time = |v: &Option<PbDuration>, default: Duration, field: &'static str| match v {
        None => Ok(default),
        Some(t) => match duration(t).map_err(|e| e.at(field))? {
            t if t.is_zero() => Err(ConvertError::invalid(field, "must be positive")),
            t => Ok(t),
        },
    };
    let detection = OutlierDetection {
        consecutive_5xx: n(&o.consecutive_5xx, d.consecutive_5xx),
        enforcing_consecutive_5xx: pct(
            &o.enforcing_consecutive_5xx,
            d.enforcing_consecutive_5xx,
            "enforcing_consecutive_5xx",
        )?,
        consecutive_gateway_failure: n(
            &o.consecutive_gateway_failure,
            d.consecutive_gateway_failure,
        ),
        enforcing_consecutive_gateway_failure: pct(
            &o.enforcing_consecutive_gateway_failure,
            d.enforcing_consecutive_gateway_failure,
            "enforcing_consecutive_gateway_failure",
        )?,
        split_local_origin: o.split_external_local_origin_errors,
        consecutive_local_origin_failure: n(
            &o.consecutive_local_origin_failure,
            d.consecutive_local_origin_failure,
        ),
        enforcing_consecutive_local_origin_failure: pct(
            &o.enforcing_consecutive_local_origin_failure,
            d.enforcing_consecutive_local_origin_failure,
            "enforcing_consecutive_local_origin_failure",
        )?,
        interval: time(&o.interval, d.interval, "interval")?,
        base_ejection_time: time(
            &o.base_ejection_time,
            d.base_ejection_time,
            "base_ejection_time",
        )?,
        max_ejection_time: time(
            &o.max_ejection_time,
            d.max_ejection_time,
            "max_ejection_time",
        )?,
        max_ejection_percent: pct(
            &o.max_ejection_percent,
            d.max_ejection_percent,
            "max_ejection_percent",
        )?,
        success_rate: SuccessRate {
            enforcing: pct(
                &o.enforcing_success_rate,
                d.success_rate.enforcing,
                "enforcing_success_rate",
            )?,
            minimum_hosts: n(&o.success_rate_minimum_hosts, d.success_rate.minimum_hosts),
            request_volume: n(
                &o.success_rate_request_volume,
                d.success_rate.request_volume,
            ),
            stdev_factor: n(&o.success_rate_stdev_factor, d.success_rate.stdev_factor),
        },
        failure_percentage: FailurePercentage {
            enforcing: pct(
                &o.enforcing_failure_percentage,
                d.failure_percentage.enforcing,
                "enforcing_failure_percentage",
            )?,
            threshold: pct(
                &o.failure_percentage_threshold,
                d.failure_percentage.threshold,
                "failure_percentage_threshold",
            )?,
            minimum_hosts: n(
                &o.failure_percentage_minimum_hosts,
                d.failure_percentage.minimum_hosts,
            ),
            request_volume: n(
                &o.failure_percentage_request_volume,
                d.failure_percentage.request_volume,
            ),
        },
    };
    Ok(Some(detection))
}

/// Local-origin success-rate and failure-percentage ejection, jitter,
/// monitors and active-health-check un-ejection are not implemented; they
/// are refused when they would do anything.
fn refuse_outlier_extras(o: &XdsOutlier) -> Result<(), ConvertError> {
    let enforced =
        |v: &Option<UInt32Value>, default: u32| v.as_ref().map_or(default, |v| v.value) > 0;
    if o.split_external_local_origin_errors && enforced(&o.enforcing_local_origin_success_rate, 100)
    {
        return Err(ConvertError::unsupported(
            "enforcing_local_origin_success_rate (must be 0 with split_external_local_origin_errors)",
        ));
    }
    if o.split_external_local_origin_errors
        && enforced(&o.enforcing_failure_percentage_local_origin, 0)
    {
        return Err(ConvertError::unsupported(
            "enforcing_failure_percentage_local_origin",
        ));
    }
    if o.max_ejection_time_jitter
        .as_ref()
        .is_some_and(|j| j.seconds != 0 || j.nanos != 0)
    {
        return Err(ConvertError::unsupported("max_ejection_time_jitter"));
    }
    if !o.monitors.is_empty() {
        return Err(ConvertError::unsupported("monitors"));
    }
    // `always_eject_one_host` asks for what the proxy always does.
    Ok(())
}

//! Normalization of a `DestinationRule`'s traffic policies: `LEAST_CONN`,
//! `minimumRingSize`, `warmupDurationSecs` and `consecutiveErrors`.
//!
//! Part of [`super`], which holds the table of what becomes what.

use super::Findings;
use crate::error::ErrorKind;
use crate::types::destination_rule::DestinationRuleSpec;
use crate::types::load_balancer::{LoadBalancerSettings, RingHash, SimpleLb, WarmupConfiguration};
use crate::types::traffic_policy::{OutlierDetection, TrafficPolicy};

/// Rewrites the deprecated fields of a DestinationRule spec.
pub(super) fn normalize(out: &mut Findings, spec: &mut DestinationRuleSpec) {
    if let Some(policy) = &mut spec.traffic_policy {
        traffic_policy(out, "spec.trafficPolicy", policy);
    }
    for (i, subset) in spec.subsets.iter_mut().enumerate() {
        if let Some(policy) = &mut subset.traffic_policy {
            traffic_policy(out, &format!("spec.subsets[{i}].trafficPolicy"), policy);
        }
    }
}

fn traffic_policy(out: &mut Findings, path: &str, policy: &mut TrafficPolicy) {
    if let Some(lb) = &mut policy.load_balancer {
        load_balancer(out, &format!("{path}.loadBalancer"), lb);
    }
    if let Some(od) = &mut policy.outlier_detection {
        outlier_detection(out, &format!("{path}.outlierDetection"), od);
    }
    for (i, port) in policy.port_level_settings.iter_mut().enumerate() {
        let p = format!("{path}.portLevelSettings[{i}]");
        if let Some(lb) = &mut port.load_balancer {
            load_balancer(out, &format!("{p}.loadBalancer"), lb);
        }
        if let Some(od) = &mut port.outlier_detection {
            outlier_detection(out, &format!("{p}.outlierDetection"), od);
        }
    }
}

fn load_balancer(out: &mut Findings, path: &str, lb: &mut LoadBalancerSettings) {
    if lb.simple == Some(SimpleLb::LeastConn) {
        lb.simple = Some(SimpleLb::LeastRequest);
        out.deprecated(&format!("{path}.simple"), "LEAST_REQUEST");
    }
    if let Some(hash) = &mut lb.consistent_hash {
        let p = format!("{path}.consistentHash");
        if let Some(size) = hash.minimum_ring_size.take() {
            let field = format!("{p}.minimumRingSize");
            if hash.ring_hash.is_some() || hash.maglev.is_some() {
                out.push(
                    &field,
                    ErrorKind::InvalidValue,
                    "only one of minimumRingSize and ringHash/maglev may be set".to_string(),
                );
            } else if size == 0 {
                // Istio reads 0 as unset: the ring keeps Envoy's default.
                out.push(
                    &field,
                    ErrorKind::Deprecated,
                    "deprecated, and 0 means unset; remove it".to_string(),
                );
            } else {
                hash.ring_hash = Some(RingHash {
                    minimum_ring_size: size,
                });
                out.deprecated(&field, &format!("{p}.ringHash.minimumRingSize"));
            }
        }
    }
    if let Some(window) = lb.warmup_duration_secs.take() {
        let field = format!("{path}.warmupDurationSecs");
        if lb.warmup.is_some() {
            out.shadowed(&field, &format!("{path}.warmup"));
        } else {
            // Istio's defaults for the other two (aggression 1, minimum 10%)
            // are what an unset field means in `warmup`.
            lb.warmup = Some(WarmupConfiguration {
                duration: Some(window),
                ..Default::default()
            });
            out.deprecated(&field, &format!("{path}.warmup.duration"));
        }
    }
}

fn outlier_detection(out: &mut Findings, path: &str, od: &mut OutlierDetection) {
    let Some(errors) = od.consecutive_errors.take() else {
        return;
    };
    let field = format!("{path}.consecutiveErrors");
    match u32::try_from(errors) {
        Err(_) => out.push(
            &field,
            ErrorKind::InvalidValue,
            format!("{errors} cannot be negative"),
        ),
        // Istio only acted on a positive count.
        Ok(0) => out.push(
            &field,
            ErrorKind::Deprecated,
            "deprecated, and 0 means unset; remove it".to_string(),
        ),
        Ok(count) => {
            // What Istio 1.1-1.6 programmed: eject on `count` gateway
            // errors and not on other 5xx, unless the new fields say
            // otherwise.
            od.consecutive_gateway_errors.get_or_insert(count);
            od.consecutive_5xx_errors.get_or_insert(0);
            out.push(
                &field,
                ErrorKind::Deprecated,
                format!(
                    "deprecated, use {path}.consecutiveGatewayErrors (it counted 502, 503 and \
                     504 responses; other 5xx responses do not eject unless \
                     {path}.consecutive5xxErrors is set)"
                ),
            );
        }
    }
}

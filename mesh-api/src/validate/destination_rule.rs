//! Per-object checks of a `DestinationRule`: host, subsets (named, unique,
//! valid labels), `exportTo`, the workload selector, and the traffic
//! policies, whose rules live in `traffic_policy.rs`.
//!
//! Part of [`super`]; whether routes name existing subsets is checked across
//! objects in `cross.rs`.

use std::collections::BTreeSet;

use super::hostname::{is_label, wildcard_domain};
use super::traffic_policy;
use super::values::{export_to, labels, selector};
use super::Ctx;
use crate::types::destination_rule::DestinationRuleSpec;

/// Checks a DestinationRule spec.
pub(super) fn check(ctx: &mut Ctx<'_>, spec: &DestinationRuleSpec) {
    if spec.host.is_empty() {
        ctx.missing("spec.host");
    } else if let Err(err) = wildcard_domain(&spec.host) {
        ctx.invalid("spec.host", err);
    }
    if let Some(policy) = &spec.traffic_policy {
        traffic_policy::check(ctx, "spec.trafficPolicy", policy);
    }
    let mut names = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        if subset.name.is_empty() {
            ctx.missing(format!("{path}.name"));
        } else if !is_label(&subset.name) {
            ctx.invalid(
                format!("{path}.name"),
                format!(
                    "{:?} is not a valid subset name (letters, digits, '-')",
                    subset.name
                ),
            );
        } else if !names.insert(subset.name.as_str()) {
            ctx.invalid(
                format!("{path}.name"),
                format!("subset {:?} is defined more than once", subset.name),
            );
        }
        labels(ctx, &format!("{path}.labels"), &subset.labels);
        if let Some(policy) = &subset.traffic_policy {
            traffic_policy::check(ctx, &format!("{path}.trafficPolicy"), policy);
        }
    }
    export_to(
        ctx,
        &spec.export_to,
        false,
        spec.workload_selector.is_some(),
    );
    if let Some(sel) = &spec.workload_selector {
        selector(ctx, "spec.workloadSelector.matchLabels", &sel.match_labels);
    }
}

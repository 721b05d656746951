//! `DestinationRule`: what happens to traffic for a host after routing:
//! subsets (by workload labels) and the traffic policy (load balancing,
//! connection pool, outlier detection, client TLS). The policy types live in
//! [`super::traffic_policy`].
//!
//! Pilot's translator makes one `outbound|PORT|SUBSET|HOST` cluster per
//! subset.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::WorkloadSelector;
use super::traffic_policy::TrafficPolicy;

/// The `spec` of a `DestinationRule`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRuleSpec {
    /// The service host; short names are resolved in the rule's namespace.
    /// Required.
    #[serde(default)]
    pub host: String,
    /// Policy for all subsets unless a subset overrides it.
    #[serde(
        alias = "traffic_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named versions of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Namespaces this rule is visible to.
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Limit the rule to the proxies of these workloads.
    #[serde(
        alias = "workload_selector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_selector: Option<WorkloadSelector>,
}

/// A named subset of a service's endpoints, selected by labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Subset name, referenced by `destination.subset`. Required.
    #[serde(default)]
    pub name: String,
    /// Labels the endpoints must carry (e.g. `version: v1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Policy overriding the rule-level one for this subset.
    #[serde(
        alias = "traffic_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub traffic_policy: Option<TrafficPolicy>,
}

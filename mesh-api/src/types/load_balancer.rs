//! Load balancing of a `DestinationRule`'s traffic policy: a simple
//! algorithm or consistent hashing, locality and zone-aware settings, and
//! slow start (warm-up) of new endpoints.
//!
//! Part of [`super::traffic_policy`]; becomes the cluster's LB policy in
//! pilot's translator.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Duration;

/// Load balancing: a simple algorithm, or consistent hashing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    /// A simple algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLb>,
    /// Session affinity by hash.
    #[serde(
        alias = "consistent_hash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Locality-aware load balancing.
    #[serde(
        alias = "locality_lb_setting",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub locality_lb_setting: Option<LocalityLbSetting>,
    /// Zone-aware load balancing (Envoy's), instead of `localityLbSetting`.
    #[serde(
        alias = "zone_aware_lb_setting",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub zone_aware_lb_setting: Option<ZoneAwareLbSetting>,
    /// Deprecated: slow start window for new endpoints. Rewritten by
    /// [`crate::normalize`] into `warmup.duration`, so never set on a loaded
    /// object.
    #[serde(
        alias = "warmup_duration_secs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start with aggression settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfiguration>,
}

/// Simple load balancing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// The proxy's default (least request).
    Unspecified,
    /// Random choice.
    Random,
    /// Forward to the original destination address.
    Passthrough,
    /// Round robin.
    RoundRobin,
    /// Fewest active requests.
    LeastRequest,
    /// Deprecated alias of `LEAST_REQUEST`; [`crate::normalize`] rewrites it,
    /// so a loaded object never has it.
    LeastConn,
}

/// Consistent hash load balancing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHashLb {
    /// Hash on this header.
    #[serde(
        alias = "http_header_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_header_name: Option<String>,
    /// Hash on this cookie (created when absent).
    #[serde(
        alias = "http_cookie",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_cookie: Option<HttpCookie>,
    /// Hash on the source IP.
    #[serde(
        alias = "use_source_ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_source_ip: Option<bool>,
    /// Hash on this query parameter.
    #[serde(
        alias = "http_query_parameter_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_query_parameter_name: Option<String>,
    /// Ring hash settings.
    #[serde(alias = "ring_hash", default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// Maglev settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<MagLev>,
    /// Deprecated: use `ringHash.minimumRingSize`. Rewritten by
    /// [`crate::normalize`], so never set on a loaded object.
    #[serde(
        alias = "minimum_ring_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_ring_size: Option<u64>,
}

/// Cookie used for consistent hashing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCookie {
    /// Cookie name. Required.
    #[serde(default)]
    pub name: String,
    /// Cookie path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Cookie lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Extra cookie attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<CookieAttribute>,
}

/// An extra attribute of a hashing cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieAttribute {
    /// Attribute name.
    #[serde(default)]
    pub name: String,
    /// Attribute value.
    #[serde(default)]
    pub value: String,
}

/// Ring hash settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// Minimum number of virtual nodes.
    #[serde(alias = "minimum_ring_size", default)]
    pub minimum_ring_size: u64,
}

/// Maglev settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MagLev {
    /// Lookup table size (a prime).
    #[serde(alias = "table_size", default)]
    pub table_size: u64,
}

/// Locality-weighted load balancing and failover.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLbSetting {
    /// Traffic distribution per source locality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<LocalityDistribute>,
    /// Failover from a region to another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<LocalityFailover>,
    /// Labels ordered by failover priority.
    #[serde(
        alias = "failover_priority",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover_priority: Vec<String>,
    /// Enable locality load balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Weights from one source locality to destination localities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalityDistribute {
    /// Source locality (`region/zone/subzone`, wildcards allowed).
    #[serde(default)]
    pub from: String,
    /// Destination locality to weight.
    #[serde(default)]
    pub to: BTreeMap<String, u32>,
}

/// Failover from one region to another.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalityFailover {
    /// Origin region.
    #[serde(default)]
    pub from: String,
    /// Region to fail over to.
    #[serde(default)]
    pub to: String,
}

/// Slow start configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmupConfiguration {
    /// Warm-up window. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Minimum traffic share during warm-up.
    #[serde(
        alias = "minimum_percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_percent: Option<f64>,
    /// Non-linearity of the ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

/// Zone-aware load balancing: Envoy keeps traffic in the caller's zone when
/// the destination has enough endpoints there, failing over between regions
/// in the given order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneAwareLbSetting {
    /// Enable zone-aware load balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Region to region failover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<LocalityFailover>,
    /// Endpoint labels ordered by failover priority (no topology labels).
    #[serde(
        alias = "failover_priority",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover_priority: Vec<String>,
    /// Fewer endpoints than this in the caller's zone disable zone-aware
    /// routing.
    #[serde(
        alias = "min_cluster_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_cluster_size: Option<u64>,
}

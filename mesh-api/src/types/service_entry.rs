//! `ServiceEntry` and `WorkloadEntry`: services and workloads added to the
//! mesh's registry by config rather than by a platform (external APIs and
//! databases, VMs, and every workload in local mode).
//!
//! Pilot's registry reads them to build services and endpoints.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Port;

/// The `spec` of a `ServiceEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntrySpec {
    /// Host names of the service (FQDN, wildcards allowed). Required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs / CIDRs of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Inside or outside the mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How endpoints are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Inline endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntrySpec>,
    /// Selects WorkloadEntries (and pods) of the same namespace as endpoints.
    #[serde(
        alias = "workload_selector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_selector: Option<ServiceEntryWorkloadSelector>,
    /// Namespaces this entry is visible to.
    #[serde(alias = "export_to", default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Accepted identities of the service's workloads.
    #[serde(
        alias = "subject_alt_names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
}

/// `ServiceEntry.location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh: no mTLS, no sidecar at the other end.
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// `ServiceEntry.resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the original destination address.
    None,
    /// Use the given endpoint addresses.
    Static,
    /// Resolve host names by DNS, using all addresses.
    Dns,
    /// Resolve by DNS, using the first address.
    DnsRoundRobin,
    /// Resolve the request's own host (Host header or SNI) when it is
    /// handled; wildcard hosts only.
    DynamicDns,
}

/// Workload selector of a `ServiceEntry` or a `Sidecar` (`labels`, unlike
/// the `matchLabels` of `DestinationRule`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntryWorkloadSelector {
    /// Labels a workload must carry.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The `spec` of a `WorkloadEntry`, also the shape of `ServiceEntry`
/// endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntrySpec {
    /// IP, host name or `unix://` path. Required unless `network` is set.
    #[serde(default)]
    pub address: String,
    /// Port overrides by service port name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Workload labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network the workload is on (multi-network meshes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone/subzone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Load balancing weight; 1 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Service account of the workload (its identity).
    #[serde(
        alias = "service_account",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_account: Option<String>,
}

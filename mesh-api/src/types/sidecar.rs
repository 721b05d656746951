//! `Sidecar`: what a sidecar proxy (of the workloads it selects, or of its
//! whole namespace) receives and may reach: ingress listeners, egress
//! listeners with the hosts they import, the outbound traffic policy and the
//! inbound connection pool. Faithful to istio/api `sidecar.proto`.
//!
//! Loaded and validated in mesh-api; pilot narrows each proxy's view with
//! it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Destination, Port};
use super::gateway::ServerTlsSettings;
use super::service_entry::ServiceEntryWorkloadSelector;
use super::traffic_policy::{ClientTlsSettings, ConnectionPoolSettings};

/// The `spec` of a `Sidecar`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarSpec {
    /// The workloads (by label, in the Sidecar's namespace) this applies to;
    /// unset: every workload of the namespace without a more specific
    /// Sidecar (at most one such default Sidecar per namespace).
    #[serde(
        alias = "workload_selector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_selector: Option<ServiceEntryWorkloadSelector>,
    /// Listeners for traffic coming into the workload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IstioIngressListener>,
    /// Listeners for traffic leaving the workload, each with the hosts it
    /// can reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<IstioEgressListener>,
    /// What happens to traffic for hosts the egress listeners do not know.
    #[serde(
        alias = "outbound_traffic_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Connection pool limits for inbound connections to the workload.
    #[serde(
        alias = "inbound_connection_pool",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
    /// TLS between the sidecar and its application (Istio 1.6 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost: Option<Localhost>,
}

/// TLS on the sidecar's connections to and from its own application
/// (Istio 1.6 only, hidden from its docs but in its examples).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Localhost {
    /// TLS from the sidecar to the application.
    #[serde(alias = "client_tls", default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTlsSettings>,
    /// TLS from the application to the sidecar.
    #[serde(alias = "server_tls", default, skip_serializing_if = "Option::is_none")]
    pub server_tls: Option<ServerTlsSettings>,
}

/// A listener for traffic into the workload.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioIngressListener {
    /// The port the listener accepts on. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// The IP address (or `unix://` socket) to bind to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener.
    #[serde(
        alias = "capture_mode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub capture_mode: Option<CaptureMode>,
    /// Where traffic is forwarded: `127.0.0.1:PORT`, `0.0.0.0:PORT`,
    /// `[::1]:PORT`, `[::]:PORT` or `unix:///path`.
    #[serde(
        alias = "default_endpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_endpoint: Option<String>,
    /// TLS termination on this listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Connection pool limits of this listener.
    #[serde(
        alias = "connection_pool",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// TLS from the sidecar to the application (Istio 1.6 only).
    #[serde(
        alias = "localhost_client_tls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub localhost_client_tls: Option<ClientTlsSettings>,
}

/// A listener for traffic out of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioEgressListener {
    /// The port; unset for the catch-all listener (which must come last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// The IP address (or `unix://` socket) to bind to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener.
    #[serde(
        alias = "capture_mode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub capture_mode: Option<CaptureMode>,
    /// The hosts reachable through this listener, `namespace/dnsName`:
    /// namespace `*` (any), `.` (the Sidecar's), `~` (none), a namespace
    /// name, or `~name` to exclude; dnsName `*`, `*.suffix` or an FQDN.
    /// Required (at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS from the application to the sidecar (Istio 1.6 only).
    #[serde(
        alias = "localhost_server_tls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub localhost_server_tls: Option<ServerTlsSettings>,
}

/// How traffic is captured into a Sidecar listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    /// The environment's default (iptables redirection where installed).
    Default,
    /// iptables redirection.
    Iptables,
    /// No capture: the application addresses the listener itself.
    None,
}

/// What a sidecar does with traffic to hosts it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    /// `REGISTRY_ONLY` or `ALLOW_ANY` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<OutboundTrafficMode>,
    /// Send unknown traffic to this egress proxy (`ALLOW_ANY` only).
    #[serde(
        alias = "egress_proxy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_proxy: Option<Destination>,
}

/// `OutboundTrafficPolicy.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficMode {
    /// Only hosts in the service registry are reachable.
    RegistryOnly,
    /// Unknown hosts are passed through.
    AllowAny,
}

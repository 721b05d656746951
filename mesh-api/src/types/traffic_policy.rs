//! `TrafficPolicy` of a `DestinationRule` (and of its subsets): connection
//! pool limits, outlier detection, client TLS, tunnelling, PROXY protocol,
//! retry budget and per-port overrides. Load balancing has its own module,
//! [`super::load_balancer`].
//!
//! Becomes cluster settings in pilot's translator.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Duration, PortSelector};
use super::load_balancer::LoadBalancerSettings;

/// Policies applied to traffic for a destination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    /// Load balancing.
    #[serde(
        alias = "load_balancer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits (circuit breaking).
    #[serde(
        alias = "connection_pool",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of failing hosts.
    #[serde(
        alias = "outlier_detection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS towards the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Per-port overrides.
    #[serde(
        alias = "port_level_settings",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Tunnel the traffic through an HTTP CONNECT proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    /// Send a PROXY protocol header upstream.
    #[serde(
        alias = "proxy_protocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Limit on concurrent retries, relative to active requests.
    #[serde(
        alias = "retry_budget",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_budget: Option<RetryBudget>,
}

/// Retry budget: retries allowed as a share of active requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Share (0..100) of active requests that may be retries; a plain
    /// number (`percent: 20`), Istio's `DoubleValue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Retries always allowed regardless of the share.
    #[serde(
        alias = "min_retry_concurrency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_retry_concurrency: Option<u32>,
    /// Window over which the budget is computed.
    #[serde(
        alias = "budget_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub budget_interval: Option<Duration>,
}

/// Traffic policy for one port of the destination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    /// The port this policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    /// Load balancing.
    #[serde(
        alias = "load_balancer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits.
    #[serde(
        alias = "connection_pool",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    #[serde(
        alias = "outlier_detection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS towards the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// Connection pool limits for TCP and HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    /// TCP-level settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    /// HTTP-level settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// TCP connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    /// Maximum connections to a host.
    #[serde(
        alias = "max_connections",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connections: Option<i32>,
    /// TCP connect timeout.
    #[serde(
        alias = "connect_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive.
    #[serde(
        alias = "tcp_keepalive",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Maximum lifetime of a connection.
    #[serde(
        alias = "max_connection_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connection_duration: Option<Duration>,
    /// Idle timeout of a connection.
    #[serde(
        alias = "idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive probes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    /// Idle time before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Interval between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// Maximum requests queued waiting for a connection.
    #[serde(
        alias = "http1_max_pending_requests",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http1_max_pending_requests: Option<i32>,
    /// Maximum active requests to a destination.
    #[serde(
        alias = "http2_max_requests",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http2_max_requests: Option<i32>,
    /// Maximum requests per connection (1 disables keep-alive).
    #[serde(
        alias = "max_requests_per_connection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_requests_per_connection: Option<i32>,
    /// Maximum outstanding retries.
    #[serde(
        alias = "max_retries",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_retries: Option<i32>,
    /// Idle timeout of upstream connections.
    #[serde(
        alias = "idle_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Whether to upgrade HTTP/1.1 connections to HTTP/2.
    #[serde(
        alias = "h2_upgrade_policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Use the client's protocol upstream.
    #[serde(
        alias = "use_client_protocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_client_protocol: Option<bool>,
    /// Maximum concurrent streams per HTTP/2 connection.
    #[serde(
        alias = "max_concurrent_streams",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_concurrent_streams: Option<i32>,
    /// HTTP/2 PING keepalive on upstream connections.
    #[serde(
        alias = "http2_keep_alive",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http2_keep_alive: Option<ConnectionKeepalive>,
}

/// HTTP/2 keepalive: PING frames on idle upstream connections.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionKeepalive {
    /// Time between PINGs. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long to wait for a PING's answer before closing. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// HTTP/2 upgrade policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// Mesh-wide default.
    Default,
    /// Never upgrade.
    DoNotUpgrade,
    /// Upgrade.
    Upgrade,
}

/// Ejection of hosts that keep failing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Count local-origin failures separately.
    #[serde(
        alias = "split_external_local_origin_errors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub split_external_local_origin_errors: Option<bool>,
    /// Local-origin failures before ejection.
    #[serde(
        alias = "consecutive_local_origin_failures",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_local_origin_failures: Option<u32>,
    /// Gateway errors (502, 503, 504) before ejection.
    #[serde(
        alias = "consecutive_gateway_errors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_gateway_errors: Option<u32>,
    /// 5xx errors before ejection.
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none",
        alias = "consecutive_5xx_errors"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// Deprecated (Istio 1.0): the gateway errors (502, 503, 504) before
    /// ejection. Rewritten by [`crate::normalize`] into
    /// `consecutiveGatewayErrors` (and `consecutive5xxErrors: 0`), so never
    /// set on a loaded object.
    #[serde(
        alias = "consecutive_errors",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_errors: Option<i32>,
    /// Time between ejection sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Minimum ejection duration.
    #[serde(
        alias = "base_ejection_time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub base_ejection_time: Option<Duration>,
    /// Maximum share of hosts ejected.
    #[serde(
        alias = "max_ejection_percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_ejection_percent: Option<i32>,
    /// Disable ejection below this share of healthy hosts.
    #[serde(
        alias = "min_health_percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_health_percent: Option<i32>,
    /// Only these HTTP status codes count as failures for ejection.
    #[serde(
        alias = "outlier_detection_http_error_codes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub outlier_detection_http_error_codes: Vec<u32>,
}

/// TLS from the proxy to the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// TLS mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientTlsMode>,
    /// Client certificate file (MUTUAL).
    #[serde(
        alias = "client_certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate: Option<String>,
    /// Client private key file (MUTUAL).
    #[serde(
        alias = "private_key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_key: Option<String>,
    /// CA certificates file to verify the server.
    #[serde(
        alias = "ca_certificates",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_certificates: Option<String>,
    /// Name of a Kubernetes Secret holding the certificates.
    #[serde(
        alias = "credential_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_name: Option<String>,
    /// Accepted subject alternative names of the server.
    #[serde(
        alias = "subject_alt_names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Skip server certificate verification.
    #[serde(
        alias = "insecure_skip_verify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_verify: Option<bool>,
    /// Certificate revocation list file.
    #[serde(alias = "ca_crl", default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
}

/// Client TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plain text.
    Disable,
    /// TLS, server authenticated.
    Simple,
    /// Mutual TLS with given certificates.
    Mutual,
    /// Mutual TLS with mesh-issued certificates.
    IstioMutual,
}

/// HTTP CONNECT tunnelling settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSettings {
    /// `CONNECT` or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Host the tunnel is opened to. Required.
    #[serde(alias = "target_host", default)]
    pub target_host: String,
    /// Port the tunnel is opened to. Required.
    #[serde(alias = "target_port", default)]
    pub target_port: u32,
}

/// PROXY protocol settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocol {
    /// The PROXY protocol version; `V1` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ProxyProtocolVersion>,
}

/// PROXY protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProxyProtocolVersion {
    /// The human-readable header.
    V1,
    /// The binary header.
    V2,
}

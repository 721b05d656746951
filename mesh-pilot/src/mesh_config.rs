//! Mesh-wide settings (Istio's `MeshConfig`), read once at start from
//! `--mesh-config FILE` and carried in every [`crate::source::ConfigSnapshot`]
//! so the translator sees them with the config they apply to.

use std::path::Path;

use mesh_api::types::http_policy::HttpRetry;
use mesh_api::types::load_balancer::LocalityLbSetting;
use serde::Deserialize;

use crate::error::SourceError;

/// What a sidecar does with outbound traffic to hosts it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Let it through to its original destination (`PassthroughCluster`).
    #[default]
    AllowAny,
    /// Block it (`BlackHoleCluster`, HTTP 502).
    RegistryOnly,
}

/// `outboundTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct OutboundTrafficPolicy {
    /// `ALLOW_ANY` (default) or `REGISTRY_ONLY`.
    #[serde(default)]
    pub mode: OutboundMode,
}

/// The parts of Istio's MeshConfig the pilot acts on. Other MeshConfig
/// fields are accepted and ignored, so an Istio mesh config file loads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    /// Outbound traffic to unknown hosts.
    #[serde(default)]
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// The retry policy of routes that set none (Istio's default policy
    /// when unset).
    #[serde(default)]
    pub default_http_retry_policy: Option<HttpRetry>,
    /// Where proxies write their access log; the empty string turns it
    /// off. Unset means [`DEFAULT_ACCESS_LOG_FILE`] (Istio's demo profile
    /// value: a mesh that explains its failures logs them by default).
    #[serde(default)]
    pub access_log_file: Option<String>,
    /// The access log's format (Envoy command operators); Istio's default
    /// format with the mesh's reason when unset.
    #[serde(default)]
    pub access_log_format: Option<String>,
    /// `TEXT` (default) or `JSON`.
    #[serde(default)]
    pub access_log_encoding: AccessLogEncoding,
    /// Mesh-wide locality load balancing (a DestinationRule's own setting
    /// wins); Istio's default is enabled, failover by proximity.
    #[serde(default)]
    pub locality_lb_setting: Option<LocalityLbSetting>,
    /// The namespace whose Sidecar without a selector applies where a
    /// namespace has none (Istio's `rootNamespace`, default
    /// `istio-system`).
    #[serde(default)]
    pub root_namespace: Option<String>,
    /// Connect timeout of upstream clusters whose DestinationRule sets
    /// none (Istio's `connectTimeout`, default 10 s).
    #[serde(default)]
    pub connect_timeout: Option<mesh_api::types::common::Duration>,
}

/// Where proxies log when the mesh config names no file.
pub const DEFAULT_ACCESS_LOG_FILE: &str = "/dev/stdout";

/// How access log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessLogEncoding {
    /// One line of text per request.
    #[default]
    Text,
    /// One JSON object per request.
    Json,
}

impl MeshConfig {
    /// The root namespace.
    pub fn root_namespace(&self) -> &str {
        self.root_namespace.as_deref().unwrap_or("istio-system")
    }

    /// The access log file, `None` when logging is off.
    pub fn access_log_path(&self) -> Option<&str> {
        match self.access_log_file.as_deref() {
            None => Some(DEFAULT_ACCESS_LOG_FILE),
            Some("") => None,
            Some(path) => Some(path),
        }
    }
}

impl MeshConfig {
    /// Parse MeshConfig YAML.
    pub fn parse(text: &str) -> Result<MeshConfig, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(MeshConfig::default());
        }
        serde_yaml::from_str(text)
    }

    /// Read and parse a MeshConfig file.
    pub fn load(path: &Path) -> Result<MeshConfig, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::MeshConfig {
            path: path.to_path_buf(),
            why: source.to_string(),
        })?;
        MeshConfig::parse(&text).map_err(|e| SourceError::MeshConfig {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_outbound_policy_and_ignores_the_rest() {
        let m = MeshConfig::parse(
            "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
        )
        .unwrap();
        assert_eq!(m.outbound_traffic_policy.mode, OutboundMode::RegistryOnly);
        assert_eq!(MeshConfig::parse("").unwrap(), MeshConfig::default());
        assert!(MeshConfig::parse("outboundTrafficPolicy: {mode: SOMETIMES}").is_err());
    }
}

//! Mesh-wide settings (Istio's `MeshConfig`), read once at start from
//! `--mesh-config FILE` and carried in every [`crate::source::ConfigSnapshot`]
//! so the translator sees them with the config they apply to.

use std::path::Path;

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

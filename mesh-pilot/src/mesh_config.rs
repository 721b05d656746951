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

/// `outboundTrafficPolicy` (Istio's `egressProxy` is not supported: it is
/// refused, not ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    /// `ALLOW_ANY` (default) or `REGISTRY_ONLY`.
    #[serde(default)]
    pub mode: OutboundMode,
}

/// The parts of Istio's MeshConfig the pilot acts on. Any other field is
/// refused with its name ([`MeshConfig::parse`]): a setting the mesh would
/// ignore is never accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// The MeshConfig fields pilot acts on (the fields of [`MeshConfig`]).
pub const SUPPORTED_FIELDS: &[&str] = &[
    "outboundTrafficPolicy",
    "defaultHttpRetryPolicy",
    "accessLogFile",
    "accessLogFormat",
    "accessLogEncoding",
    "localityLbSetting",
    "rootNamespace",
    "connectTimeout",
];

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
    /// Parse MeshConfig YAML. Fields pilot does not act on are refused,
    /// all of them named in one error, rather than ignored.
    pub fn parse(text: &str) -> Result<MeshConfig, String> {
        if text.trim().is_empty() {
            return Ok(MeshConfig::default());
        }
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_mapping() {
            let unknown: Vec<String> = map
                .keys()
                .map(|k| match k.as_str() {
                    Some(name) => name.to_string(),
                    None => format!("{k:?}"),
                })
                .filter(|name| !SUPPORTED_FIELDS.contains(&name.as_str()))
                .collect();
            if !unknown.is_empty() {
                let (fields, are, them) = if unknown.len() == 1 {
                    ("field", "is", "it")
                } else {
                    ("fields", "are", "them")
                };
                return Err(format!(
                    "{fields} {} {are} not supported yet (the mesh would ignore {them}); the supported fields are {}",
                    unknown.join(", "),
                    SUPPORTED_FIELDS.join(", ")
                ));
            }
        }
        serde_yaml::from_value(value).map_err(|e| e.to_string())
    }

    /// Read and parse a MeshConfig file.
    pub fn load(path: &Path) -> Result<MeshConfig, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::MeshConfig {
            path: path.to_path_buf(),
            why: source.to_string(),
        })?;
        MeshConfig::parse(&text).map_err(|why| SourceError::MeshConfig {
            path: path.to_path_buf(),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_outbound_policy() {
        let m = MeshConfig::parse(
            "accessLogFile: /dev/stdout\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n",
        )
        .unwrap();
        assert_eq!(m.outbound_traffic_policy.mode, OutboundMode::RegistryOnly);
        assert_eq!(m.access_log_path(), Some("/dev/stdout"));
        assert_eq!(MeshConfig::parse("").unwrap(), MeshConfig::default());
        assert!(MeshConfig::parse("outboundTrafficPolicy: {mode: SOMETIMES}").is_err());
    }

    /// Nothing accepted and ignored: a field pilot does not act on is
    /// refused by name, every one of them at once, nested ones too.
    #[test]
    fn fields_the_mesh_does_not_act_on_are_refused_by_name() {
        let err = MeshConfig::parse(
            "accessLogFile: /dev/stdout\nenablePrometheusMerge: true\ndefaultConfig: {holdApplicationUntilProxyStarts: true}\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("fields enablePrometheusMerge, defaultConfig are not supported yet"),
            "{err}"
        );
        assert!(
            err.contains("outboundTrafficPolicy, defaultHttpRetryPolicy"),
            "{err}"
        );
        let err = MeshConfig::parse("trustDomain: cluster.local\n").unwrap_err();
        assert!(
            err.starts_with("field trustDomain is not supported yet"),
            "{err}"
        );
        let err = MeshConfig::parse(
            "outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress}}\n",
        )
        .unwrap_err();
        assert!(err.contains("egressProxy"), "{err}");
        // Every supported field parses.
        let all = "outboundTrafficPolicy: {mode: ALLOW_ANY}\ndefaultHttpRetryPolicy: {attempts: 2}\naccessLogFile: ''\naccessLogFormat: '%START_TIME%'\naccessLogEncoding: JSON\nlocalityLbSetting: {enabled: true}\nrootNamespace: mesh-system\nconnectTimeout: 3s\n";
        let m = MeshConfig::parse(all).unwrap();
        assert_eq!(m.root_namespace(), "mesh-system");
        assert_eq!(m.access_log_path(), None);
    }
}

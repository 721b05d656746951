//! `Gateway`: the ports, hosts and TLS settings a gateway proxy (selected by
//! workload labels) listens with. VirtualServices bind to it by name.
//!
//! Pilot's translator makes one listener per server port for the matching
//! gateway proxies.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Port;

/// The `spec` of a `Gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// Listening ports and their hosts. Required (at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads (e.g. `istio: ingressgateway`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

/// One listening port of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// The port. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Bind address or unix socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// Hosts exposed (`*`, `*.example.com`, `ns/host`). Required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS settings for HTTPS/TLS ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Where traffic goes by default (`127.0.0.1:PORT`, `unix://...`);
    /// hidden from Istio's docs and "NOT IMPLEMENTED" there, so not
    /// enforced here either (see [`crate::validate`]'s unsupported list).
    #[serde(
        alias = "default_endpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_endpoint: Option<String>,
    /// Server name, unique within the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// TLS on a gateway server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Answer plain HTTP with a redirect to HTTPS.
    #[serde(
        alias = "https_redirect",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub https_redirect: Option<bool>,
    /// TLS mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    /// Server certificate file.
    #[serde(
        alias = "server_certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_certificate: Option<String>,
    /// Server private key file.
    #[serde(
        alias = "private_key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_key: Option<String>,
    /// CA certificates file for client verification.
    #[serde(
        alias = "ca_certificates",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_certificates: Option<String>,
    /// Certificate revocation list file.
    #[serde(alias = "ca_crl", default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
    /// Kubernetes Secret holding the certificates.
    #[serde(
        alias = "credential_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_name: Option<String>,
    /// Several Kubernetes Secrets (e.g. RSA and ECDSA).
    #[serde(
        alias = "credential_names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credential_names: Vec<String>,
    /// Kubernetes Secret holding only the CA certificates for client
    /// verification.
    #[serde(
        alias = "ca_cert_credential_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_cert_credential_name: Option<String>,
    /// Inline certificate file sets.
    #[serde(
        alias = "tls_certificates",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls_certificates: Vec<TlsCertificate>,
    /// Accepted client subject alternative names.
    #[serde(
        alias = "subject_alt_names",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
    /// Accepted client certificate SPKI hashes (base64).
    #[serde(
        alias = "verify_certificate_spki",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_spki: Vec<String>,
    /// Accepted client certificate hashes (hex).
    #[serde(
        alias = "verify_certificate_hash",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_hash: Vec<String>,
    /// Minimum TLS version.
    #[serde(
        alias = "min_protocol_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_protocol_version: Option<TlsProtocol>,
    /// Maximum TLS version.
    #[serde(
        alias = "max_protocol_version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_protocol_version: Option<TlsProtocol>,
    /// Allowed cipher suites.
    #[serde(
        alias = "cipher_suites",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cipher_suites: Vec<String>,
    /// Accept client certificates without verifying them (MUTUAL modes).
    #[serde(
        alias = "insecure_skip_verify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_verify: Option<bool>,
}

/// Server TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Forward TLS untouched, routed by SNI.
    Passthrough,
    /// Terminate TLS.
    Simple,
    /// Terminate TLS and require client certificates.
    Mutual,
    /// Passthrough with SNI-derived routing (multi-cluster).
    AutoPassthrough,
    /// Mutual TLS with mesh-issued certificates.
    IstioMutual,
    /// Client certificate optional.
    OptionalMutual,
}

/// A certificate set of a gateway server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsCertificate {
    /// Certificate file.
    #[serde(
        alias = "server_certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_certificate: Option<String>,
    /// Private key file.
    #[serde(
        alias = "private_key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub private_key: Option<String>,
    /// CA certificates file.
    #[serde(
        alias = "ca_certificates",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_certificates: Option<String>,
}

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsProtocol {
    /// The proxy's default.
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    /// TLS 1.0.
    #[serde(rename = "TLSV1_0")]
    TlsV1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSV1_1")]
    TlsV1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    TlsV1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    TlsV1_3,
}

//! TLS transport sockets, certificates named by file as in Istio's YAML:
//! origination to upstreams (DestinationRule `tls` SIMPLE and MUTUAL, an
//! `UpstreamTlsContext` on the cluster) and termination at gateways
//! (Gateway server `tls` SIMPLE and MUTUAL, a `DownstreamTlsContext` on the
//! server's filter chain).
//!
//! ```text
//!  ClientTlsSettings ──► upstream_tls(host, settings, http2) ──► cluster transport socket
//!  ServerTlsSettings ──► downstream_tls(settings, alpn)       ──► filter chain transport socket
//! ```
//!
//! As Istio: without `caCertificates` the server is verified against the
//! system's roots, unless `insecureSkipVerify`; the SNI is `sni`, else the
//! destination host (Istio's auto-SNI), and the server certificate must name
//! one of `subjectAltNames`, else the SNI host (Istio's auto SAN
//! validation). HTTP/2 clusters offer ALPN `h2`.

use envoy_types::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol as EnvoyTlsProtocol, CertificateValidationContext,
    CommonTlsContext, DownstreamTlsContext, SubjectAltNameMatcher, TlsCertificate, TlsParameters,
    UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_api::types::gateway::{ServerTlsMode, ServerTlsSettings, TlsProtocol};

use mesh_api::types::traffic_policy::{ClientTlsMode, ClientTlsSettings};

use super::filters::typed_config;

/// Name of Envoy's TLS transport socket.
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The system's CA bundle on Debian (and its derivatives), Istio's
/// "system" root for TLS origination without `caCertificates`.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The transport socket originating TLS to `host` with `tls`, or `None`
/// for plaintext (no settings, `DISABLE`). `ISTIO_MUTUAL` is mesh mTLS,
/// which validation refuses until the mesh has a CA.
pub fn upstream_tls(
    host: &str,
    tls: Option<&ClientTlsSettings>,
    http2: bool,
) -> Option<TransportSocket> {
    let tls = tls?;
    let mutual = match tls.mode {
        Some(ClientTlsMode::Simple) => false,
        Some(ClientTlsMode::Mutual) => true,
        _ => return None,
    };
    let mut common = CommonTlsContext::default();
    if mutual {
        if let (Some(cert), Some(key)) = (&tls.client_certificate, &tls.private_key) {
            common.tls_certificates.push(TlsCertificate {
                certificate_chain: Some(file(cert)),
                private_key: Some(file(key)),
                ..Default::default()
            });
        }
    }
    let sni = tls
        .sni
        .clone()
        .or_else(|| (!host.starts_with('*')).then(|| host.to_string()))
        .unwrap_or_default();
    if tls.insecure_skip_verify != Some(true) {
        let sans: Vec<SubjectAltNameMatcher> = if tls.subject_alt_names.is_empty() {
            (!sni.is_empty())
                .then(|| san(SanType::Dns, &sni))
                .into_iter()
                .collect()
        } else {
            tls.subject_alt_names
                .iter()
                .map(|name| {
                    let kind = if name.contains("://") {
                        SanType::Uri
                    } else {
                        SanType::Dns
                    };
                    san(kind, name)
                })
                .collect()
        };
        let ca = tls.ca_certificates.as_deref().unwrap_or(SYSTEM_CA_BUNDLE);
        common.validation_context_type = Some(ValidationContextType::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(file(ca)),
                match_typed_subject_alt_names: sans,
                crl: tls.ca_crl.as_deref().map(file),
                ..Default::default()
            },
        ));
    }
    if http2 {
        common.alpn_protocols = vec!["h2".to_string()];
    }
    let context = UpstreamTlsContext {
        common_tls_context: Some(common),
        sni,
        ..Default::default()
    };
    Some(TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(typed_config(
            &context,
        ))),
    })
}

/// The transport socket terminating TLS for a gateway server: its
/// certificate files (`serverCertificate`/`privateKey`, or each of
/// `tlsCertificates`), and for MUTUAL (and OPTIONAL_MUTUAL) the client
/// check against `caCertificates` and `subjectAltNames`, hashes and SPKIs.
/// `alpn` lists what the server offers (`h2`, `http/1.1` for HTTPS).
/// `None` for modes that do not terminate here.
pub fn downstream_tls(tls: &ServerTlsSettings, alpn: &[&str]) -> Option<TransportSocket> {
    let require_client = match tls.mode {
        Some(ServerTlsMode::Simple) | None => None,
        Some(ServerTlsMode::Mutual) => Some(true),
        Some(ServerTlsMode::OptionalMutual) => Some(false),
        _ => return None,
    };
    let mut common = CommonTlsContext {
        alpn_protocols: alpn.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    };
    if let (Some(cert), Some(key)) = (&tls.server_certificate, &tls.private_key) {
        common.tls_certificates.push(TlsCertificate {
            certificate_chain: Some(file(cert)),
            private_key: Some(file(key)),
            ..Default::default()
        });
    }
    for set in &tls.tls_certificates {
        if let (Some(cert), Some(key)) = (&set.server_certificate, &set.private_key) {
            common.tls_certificates.push(TlsCertificate {
                certificate_chain: Some(file(cert)),
                private_key: Some(file(key)),
                ..Default::default()
            });
        }
    }
    if require_client.is_some() {
        let ca = tls.ca_certificates.as_deref().or_else(|| {
            tls.tls_certificates
                .iter()
                .find_map(|t| t.ca_certificates.as_deref())
        });
        common.validation_context_type = Some(ValidationContextType::ValidationContext(
            CertificateValidationContext {
                trusted_ca: ca.map(file),
                match_typed_subject_alt_names: tls
                    .subject_alt_names
                    .iter()
                    .map(|name| san(SanType::Dns, name))
                    .collect(),
                verify_certificate_spki: tls.verify_certificate_spki.clone(),
                verify_certificate_hash: tls.verify_certificate_hash.clone(),
                crl: tls.ca_crl.as_deref().map(file),
                ..Default::default()
            },
        ));
    }
    let version = |v: Option<TlsProtocol>| match v {
        Some(TlsProtocol::TlsV1_0) => EnvoyTlsProtocol::TlSv10,
        Some(TlsProtocol::TlsV1_1) => EnvoyTlsProtocol::TlSv11,
        Some(TlsProtocol::TlsV1_2) => EnvoyTlsProtocol::TlSv12,
        Some(TlsProtocol::TlsV1_3) => EnvoyTlsProtocol::TlSv13,
        Some(TlsProtocol::TlsAuto) | None => EnvoyTlsProtocol::TlsAuto,
    } as i32;
    if tls.min_protocol_version.is_some()
        || tls.max_protocol_version.is_some()
        || !tls.cipher_suites.is_empty()
    {
        common.tls_params = Some(TlsParameters {
            tls_minimum_protocol_version: version(tls.min_protocol_version),
            tls_maximum_protocol_version: version(tls.max_protocol_version),
            cipher_suites: tls.cipher_suites.clone(),
            ..Default::default()
        });
    }
    let context = DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: require_client.map(|value| BoolValue { value }),
        ..Default::default()
    };
    Some(TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(typed_config(
            &context,
        ))),
    })
}

fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

fn san(kind: SanType, name: &str) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: kind as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(name.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

//! Upstream TLS origination for the upstream stage (cluster LB ─► upstream
//! pool ─► **TLS** ─► endpoint): the rustls client configuration of a
//! cluster's `UpstreamTlsContext`, built once at conversion time, and the
//! handshake over a dialled TCP stream.
//!
//! Verification follows Envoy, not browsers: with trusted CAs the chain
//! must lead to one of them and, when subject alt name matchers are given,
//! some SAN of the certificate must match one of them; the host name the
//! client dialled (or the SNI) is not checked against the certificate.
//! Without trusted CAs nothing about the server's certificate is checked
//! (Envoy's behaviour without a `validation_context`).

use std::net::IpAddr;
use std::sync::Arc;

use regex::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion};

/// What a cluster's `UpstreamTlsContext` asks for, with files already read.
#[derive(Debug, Default)]
pub struct TlsSettings {
    /// ALPN protocols offered, in order.
    pub alpn: Vec<String>,
    /// CA certificates the server's chain must lead to; `None`: no
    /// verification.
    pub trusted_ca: Option<Vec<CertificateDer<'static>>>,
    /// Some SAN of the server's certificate must match one of these (none:
    /// any SAN).
    pub san_matchers: Vec<SanMatcher>,
    /// The client certificate chain and key (MUTUAL).
    pub client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Allow TLS 1.3 (Envoy's client default maximum is TLS 1.2).
    pub allow_tls13: bool,
    /// Allow TLS 1.2.
    pub allow_tls12: bool,
    /// TLS 1.2 cipher suites by their OpenSSL names, in order; empty keeps
    /// the defaults.
    pub cipher_suites: Vec<String>,
    /// `auto_san_validation`: the certificate must also be valid for the
    /// DNS name the connection was made for (its SNI).
    pub auto_san_validation: bool,
}

/// Which kind of subject alt name a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanKind {
    /// `DNS`.
    Dns,
    /// `URI` (SPIFFE ids).
    Uri,
    /// `IP_ADDRESS`.
    Ip,
    /// `EMAIL`.
    Email,
    /// Any kind (the deprecated `match_subject_alt_names`).
    Any,
}

/// How a SAN value is matched (Envoy's `StringMatcher`).
#[derive(Debug, Clone)]
pub enum StringMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Contains.
    Contains(String),
    /// The whole value matches.
    Regex(Regex),
}

/// One entry of `match_typed_subject_alt_names`.
#[derive(Debug, Clone)]
pub struct SanMatcher {
    /// The SAN kind it applies to.
    pub kind: SanKind,
    /// The match.
    pub matcher: StringMatch,
    /// `ignore_case` (not for regex).
    pub ignore_case: bool,
}

impl SanMatcher {
    fn matches(&self, kind: SanKind, value: &str) -> bool {
        if self.kind != SanKind::Any && self.kind != kind {
            return false;
        }
        let folded;
        let (value, fold) = if self.ignore_case {
            folded = value.to_ascii_lowercase();
            (folded.as_str(), true)
        } else {
            (value, false)
        };
        let norm = |p: &str| {
            if fold {
                p.to_ascii_lowercase()
            } else {
                p.to_owned()
            }
        };
        match &self.matcher {
            StringMatch::Exact(p) => value == norm(p),
            StringMatch::Prefix(p) => value.starts_with(&norm(p)),
            StringMatch::Suffix(p) => value.ends_with(&norm(p)),
            StringMatch::Contains(p) => value.contains(&norm(p)),
            StringMatch::Regex(re) => re.is_match(value),
        }
    }
}

/// Why a TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A cipher suite name we do not know or rustls does not have.
    #[error("cipher suite {0:?} is not supported")]
    CipherSuite(String),
    /// No TLS version is left (rustls has TLS 1.2 and 1.3 only).
    #[error("no supported TLS version in the configured range (TLS 1.2 and 1.3 only)")]
    NoVersion,
    /// rustls refused the certificates, key or parameters.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// A trusted CA certificate could not be added.
    #[error("trusted CA: {0}")]
    TrustedCa(String),
}

/// The rustls client configuration for `settings`.
pub fn client_config(settings: TlsSettings) -> Result<rustls::ClientConfig, TlsError> {
    let mut provider = ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites = cipher_suites(&provider, &settings.cipher_suites)?;
    }
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    if settings.allow_tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if settings.allow_tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err(TlsError::NoVersion);
    }
    let provider = Arc::new(provider);
    let roots = match &settings.trusted_ca {
        Some(cas) => {
            let mut store = RootCertStore::empty();
            for ca in cas {
                store
                    .add(ca.clone())
                    .map_err(|e| TlsError::TrustedCa(e.to_string()))?;
            }
            Some(Arc::new(store))
        }
        None => None,
    };
    let verifier = Arc::new(EnvoyVerifier {
        roots,
        san_matchers: settings.san_matchers,
        check_name: settings.auto_san_validation,
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match settings.client_cert {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = settings.alpn.into_iter().map(String::into_bytes).collect();
    Ok(config)
}

/// The provider's suites named by `names` (OpenSSL names as Envoy takes
/// them; `[A|B]` equal-preference groups are flattened), plus the TLS 1.3
/// suites, which Envoy does not let `cipher_suites` change.
fn cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, TlsError> {
    let mut out: Vec<rustls::SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for group in names {
        for name in group
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split('|')
        {
            let wanted = match name.trim() {
                "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                other => return Err(TlsError::CipherSuite(other.to_owned())),
            };
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| s.suite().as_str() == Some(wanted))
                .ok_or_else(|| TlsError::CipherSuite(name.to_owned()))?;
            if !out.contains(suite) {
                out.push(*suite);
            }
        }
    }
    Ok(out)
}

/// Envoy's verification rules (module doc) as a rustls verifier.
#[derive(Debug)]
struct EnvoyVerifier {
    roots: Option<Arc<RootCertStore>>,
    san_matchers: Vec<SanMatcher>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EnvoyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        if let Some(roots) = &self.roots {
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        if self.check_name && matches!(server_name, ServerName::DnsName(_)) {
            rustls::client::verify_server_name(&parsed, server_name)?;
        }
        if !self.san_matchers.is_empty() && !self.any_san_matches(end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl EnvoyVerifier {
    fn any_san_matches(&self, cert: &CertificateDer<'_>) -> bool {
        subject_alt_names(cert)
            .iter()
            .any(|(kind, value)| self.san_matchers.iter().any(|m| m.matches(*kind, value)))
    }
}

/// The subject alt names of a DER certificate, each with its kind; empty
/// when the certificate cannot be parsed or has none.
pub fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<(SanKind, String)> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(d) => Some((SanKind::Dns, (*d).to_owned())),
            GeneralName::URI(u) => Some((SanKind::Uri, (*u).to_owned())),
            GeneralName::RFC822Name(e) => Some((SanKind::Email, (*e).to_owned())),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| (SanKind::Ip, ip)),
            _ => None,
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

/// The name to send as SNI: the configured one, or (rustls needs a name to
/// build a session) the endpoint's IP, which rustls does not send as SNI.
pub fn server_name(sni: Option<&str>, ip: IpAddr) -> ServerName<'static> {
    sni.and_then(|s| ServerName::try_from(s.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ip.into()))
}

//! Client certificate checks of a terminating chain (Envoy's
//! `CertificateValidationContext`): the chain to `trusted_ca` (webpki), then
//! the leaf's pins (`verify_certificate_hash`, `verify_certificate_spki`:
//! either kind may match) and its SANs (`match_typed_subject_alt_names`:
//! any matcher may match). Pins alone, without a CA, accept a certificate
//! that matches one of them, and `require_client_certificate` alone any
//! certificate, as Envoy does.

use std::net::IpAddr;
use std::sync::Arc;

use regex::Regex;
use ring::digest::{digest, SHA256};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;

use super::{ServerTlsSettings, TlsConfigError};

/// The kind of SAN a matcher looks at (`SubjectAltNameMatcher.san_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    /// `DNS`.
    Dns,
    /// `URI` (SPIFFE ids).
    Uri,
    /// `EMAIL`.
    Email,
    /// `IP_ADDRESS`, compared in its text form.
    IpAddress,
}

/// One `match_typed_subject_alt_names` entry: a SAN type and a whole-value
/// pattern (exact, prefix, suffix and contains become anchored regexes).
#[derive(Debug, Clone)]
pub struct SanMatcher {
    /// Which SANs it looks at.
    pub san_type: SanType,
    /// The whole SAN must match.
    pub pattern: Regex,
}

/// The verifier for `settings`, or `None` when client certificates are not
/// asked for at all (no CA, no pins, not required). Required without a CA
/// or pins, any certificate whose key the client holds is accepted, as
/// Envoy does.
pub(super) fn client_verifier(
    settings: &ServerTlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsConfigError> {
    let pinned = !settings.spki_pins.is_empty() || !settings.hash_pins.is_empty();
    if settings.trusted_ca.is_empty() && !pinned && !settings.require_client_certificate {
        return Ok(None);
    }
    let webpki = if settings.trusted_ca.is_empty() {
        None
    } else {
        let mut roots = RootCertStore::empty();
        for ca in &settings.trusted_ca {
            roots
                .add(ca.clone())
                .map_err(|e| TlsConfigError::TrustedCa(e.to_string()))?;
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        // Mandatory or not is decided below; webpki only checks the chain.
        let verifier = builder
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
        Some(verifier)
    };
    Ok(Some(Arc::new(ClientVerifier {
        webpki,
        provider,
        mandatory: settings.require_client_certificate,
        subject_alt_names: settings.subject_alt_names.clone(),
        spki_pins: settings.spki_pins.clone(),
        hash_pins: settings.hash_pins.clone(),
    })))
}

#[derive(Debug)]
struct ClientVerifier {
    webpki: Option<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
    subject_alt_names: Vec<SanMatcher>,
    spki_pins: Vec<[u8; 32]>,
    hash_pins: Vec<[u8; 32]>,
}

impl ClientVerifier {
    fn check_leaf(&self, leaf: &CertificateDer<'_>) -> Result<(), Error> {
        let bad = |why: &str| Error::General(format!("client certificate {why}"));
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if !self.spki_pins.is_empty() || !self.hash_pins.is_empty() {
            let hash = sha256(leaf.as_ref());
            let spki = sha256(cert.tbs_certificate.subject_pki.raw);
            if !self.hash_pins.contains(&hash) && !self.spki_pins.contains(&spki) {
                return Err(bad("matches no verify_certificate_hash or _spki pin"));
            }
        }
        if !self.subject_alt_names.is_empty() {
            let sans = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|ext| ext.value.general_names.clone())
                .unwrap_or_default();
            let matched = sans.iter().any(|name| {
                let (san_type, value) = match name {
                    GeneralName::DNSName(v) => (SanType::Dns, (*v).to_owned()),
                    GeneralName::URI(v) => (SanType::Uri, (*v).to_owned()),
                    GeneralName::RFC822Name(v) => (SanType::Email, (*v).to_owned()),
                    GeneralName::IPAddress(bytes) => match ip_text(bytes) {
                        Some(ip) => (SanType::IpAddress, ip),
                        None => return false,
                    },
                    _ => return false,
                };
                self.subject_alt_names
                    .iter()
                    .any(|m| m.san_type == san_type && m.pattern.is_match(&value))
            });
            if !matched {
                return Err(bad("has no subject alt name the listener accepts"));
            }
        }
        Ok(())
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.as_ref().map_or(&[], |w| w.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Some(webpki) = &self.webpki {
            webpki.verify_client_cert(end_entity, intermediates, now)?;
        }
        self.check_leaf(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip: IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
        16 => <[u8; 16]>::try_from(bytes).ok()?.into(),
        _ => return None,
    };
    Some(ip.to_string())
}

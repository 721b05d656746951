//! Downstream TLS termination, between filter chain selection and the
//! chain's network filter (accept ─► detect ─► filter chain ─► **TLS** ─►
//! HCM | tcp_proxy): the chain's `envoy.transport_sockets.tls` with rustls
//! (ring provider) and tokio-rustls.
//!
//! ```text
//! conversion: ServerTlsSettings (certs, key, CA, pins, ALPN, versions) ─► build() ─► rustls::ServerConfig
//! per connection: accept() ─► ClientHello (require_sni) ─► handshake ─► TLS stream + DownstreamTls
//! ```
//!
//! The chain was already chosen by the SNI that detection peeked at, so the
//! handshake only ever presents that chain's own certificate.

mod verify;

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{ring as provider, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, NoServerSessionStorage};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::data_plane::DownstreamTls;
use crate::model::ServerTls;

pub use verify::{SanMatcher, SanType};

/// The longest a handshake may take when the chain sets no
/// `transport_socket_connect_timeout`: a client that stalls mid-handshake
/// must not hold its connection for ever.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A TLS protocol version rustls can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Everything a server config is built from, read from the resource and
/// its files by the xDS conversion.
#[derive(Debug)]
pub struct ServerTlsSettings {
    /// The certificate chain, leaf first.
    pub certificate_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub private_key: PrivateKeyDer<'static>,
    /// CAs client certificates must chain to (`trusted_ca`).
    pub trusted_ca: Vec<CertificateDer<'static>>,
    /// A client certificate's SANs must match one of these, when any.
    pub subject_alt_names: Vec<SanMatcher>,
    /// SHA-256 of an accepted client certificate's SubjectPublicKeyInfo.
    pub spki_pins: Vec<[u8; 32]>,
    /// SHA-256 of an accepted client certificate (DER).
    pub hash_pins: Vec<[u8; 32]>,
    /// Refuse clients without a certificate.
    pub require_client_certificate: bool,
    /// ALPN protocols in preference order.
    pub alpn_protocols: Vec<Vec<u8>>,
    /// Lowest and highest version accepted.
    pub versions: (TlsVersion, TlsVersion),
    /// TLS 1.2 cipher suites by Envoy (OpenSSL) name; empty: the defaults.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups by Envoy name (`X25519`, `P-256`, `P-384`);
    /// empty: the defaults.
    pub ecdh_curves: Vec<String>,
    /// Follow the client's cipher order rather than ours.
    pub prefer_client_ciphers: bool,
    /// Offer session tickets.
    pub session_tickets: bool,
    /// Keep a session cache for resumption by id.
    pub session_cache: bool,
}

/// Why a server config cannot be built; each becomes a NACK.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The private key is not one rustls can sign with.
    #[error("private key not usable: {0}")]
    Key(#[source] rustls::Error),
    /// The private key belongs to another certificate.
    #[error("private key does not match the certificate")]
    KeyMismatch,
    /// A cipher suite rustls does not implement (TLS 1.2, ECDHE only).
    #[error("cipher suite {0:?} not supported")]
    CipherSuite(String),
    /// A key exchange group rustls does not implement.
    #[error("ECDH curve {0:?} not supported")]
    Curve(String),
    /// A `trusted_ca` entry rustls refuses as a trust anchor.
    #[error("trusted_ca: {0}")]
    TrustedCa(String),
    /// The client certificate verifier could not be built.
    #[error("client certificate validation: {0}")]
    Verifier(String),
    /// rustls refused the combination.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Build the rustls server config of one filter chain.
pub fn build(settings: ServerTlsSettings) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let provider = Arc::new(crypto_provider(&settings)?);
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.versions.0..=settings.versions.1).contains(v))
    .map(|(_, v)| v)
    .collect();
    let signing_key = provider
        .key_provider
        .load_private_key(settings.private_key.clone_key())
        .map_err(TlsConfigError::Key)?;
    let certified = CertifiedKey::new(settings.certificate_chain.clone(), signing_key);
    certified
        .keys_match()
        .map_err(|_| TlsConfigError::KeyMismatch)?;
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match verify::client_verifier(&settings, provider.clone())? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(settings.certificate_chain, settings.private_key)?;
    config.alpn_protocols = settings.alpn_protocols;
    config.ignore_client_order = !settings.prefer_client_ciphers;
    if settings.session_tickets {
        config.ticketer = provider::Ticketer::new()?;
    }
    if !settings.session_cache {
        config.session_storage = Arc::new(NoServerSessionStorage {});
    }
    Ok(Arc::new(config))
}

/// The ring provider narrowed to the configured cipher suites and curves.
fn crypto_provider(settings: &ServerTlsSettings) -> Result<CryptoProvider, TlsConfigError> {
    use provider::cipher_suite as cs;
    let mut crypto = provider::default_provider();
    if !settings.cipher_suites.is_empty() {
        let tls12: &[(&str, SupportedCipherSuite)] = &[
            (
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                "ECDHE-RSA-AES128-GCM-SHA256",
                cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                "ECDHE-RSA-AES256-GCM-SHA384",
                cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (
                "ECDHE-RSA-CHACHA20-POLY1305",
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ];
        // As in BoringSSL, the list only governs TLS 1.2; TLS 1.3 suites
        // are always on. `[A|B]` is an equal-preference group.
        let mut suites: Vec<SupportedCipherSuite> = crypto
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.tls13().is_some())
            .collect();
        for name in settings
            .cipher_suites
            .iter()
            .flat_map(|n| n.trim_matches(['[', ']']).split('|'))
        {
            let suite = tls12
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| *s)
                .ok_or_else(|| TlsConfigError::CipherSuite(name.to_owned()))?;
            suites.push(suite);
        }
        crypto.cipher_suites = suites;
    }
    if !settings.ecdh_curves.is_empty() {
        let known: &[(&str, &'static dyn SupportedKxGroup)] = &[
            ("X25519", provider::kx_group::X25519),
            ("P-256", provider::kx_group::SECP256R1),
            ("P-384", provider::kx_group::SECP384R1),
        ];
        crypto.kx_groups = settings
            .ecdh_curves
            .iter()
            .map(|name| {
                known
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, g)| *g)
                    .ok_or_else(|| TlsConfigError::Curve(name.clone()))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(crypto)
}

/// Why a downstream handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client sent no SNI and the chain requires one.
    #[error("client sent no SNI (require_sni)")]
    NoSni,
    /// The handshake took longer than allowed.
    #[error("handshake timed out")]
    Timeout,
    /// TLS or socket failure (bad certificate, protocol error, reset).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Terminate TLS on `stream` with the chain's config: the decrypted stream
/// and what the handshake settled.
pub async fn accept(
    tls: &ServerTls,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, DownstreamTls), HandshakeError> {
    let timeout = tls.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
    let handshake = async {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        if tls.require_sni && start.client_hello().server_name().is_none() {
            return Err(HandshakeError::NoSni);
        }
        Ok(start.into_stream(tls.config.clone()).await?)
    };
    let stream = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| HandshakeError::Timeout)??;
    let (_, connection) = stream.get_ref();
    let negotiated = DownstreamTls {
        server_name: connection.server_name().map(str::to_owned),
        alpn: connection
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        peer_certificate: connection
            .peer_certificates()
            .is_some_and(|certs| !certs.is_empty()),
    };
    Ok((stream, negotiated))
}

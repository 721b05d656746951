//! xDS conversion of a filter chain's `transport_socket`
//! `envoy.transport_sockets.tls` (`DownstreamTlsContext`): certificates and
//! CAs are read here, from files or inline, and the rustls server config is
//! built here, so a missing file, a bad PEM or a key that does not match
//! its certificate NACKs the listener, naming the file.
//!
//! Not implemented, so NACKed: SDS secrets, certificate providers, session
//! ticket keys, OCSP, CRLs, custom validators, more than one certificate.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
use envoy_types::pb::envoy::config::core::v3::{transport_socket, TransportSocket};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, downstream_tls_context::SessionTicketKeysType,
    subject_alt_name_matcher::SanType as XdsSanType, tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, TlsCertificate,
    TlsParameters,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use prost::Name;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{bool_or, compile_whole_match, duration, type_name, unpack};
use crate::listener::tls::{self, SanMatcher, SanType, ServerTlsSettings, TlsVersion};
use crate::model::ServerTls;
use crate::xds::error::ConvertError;

/// Name of the TLS transport socket.
pub const TLS_SOCKET: &str = "envoy.transport_sockets.tls";
/// Name of the plaintext transport socket (the default).
pub const RAW_BUFFER_SOCKET: &str = "envoy.transport_sockets.raw_buffer";

/// The TLS a chain's transport socket terminates; `None` for plaintext.
pub fn transport_socket(
    socket: &TransportSocket,
    connect_timeout: Option<&PbDuration>,
) -> Result<Option<ServerTls>, ConvertError> {
    let any = socket
        .config_type
        .as_ref()
        .map(|transport_socket::ConfigType::TypedConfig(any)| any);
    let kind = any.map_or(socket.name.as_str(), |a| type_name(&a.type_url));
    if kind == RAW_BUFFER_SOCKET
        || kind == "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
    {
        return Ok(None);
    }
    let Some(any) = any.filter(|_| kind == DownstreamTlsContext::full_name()) else {
        if kind == TLS_SOCKET {
            return Err(ConvertError::Missing("transport_socket.typed_config"));
        }
        return Err(ConvertError::unsupported(format!(
            "transport_socket {}",
            if socket.name.is_empty() {
                kind
            } else {
                &socket.name
            }
        )));
    };
    let context: DownstreamTlsContext = unpack(any)?;
    let handshake_timeout = connect_timeout.map(duration).transpose()?;
    downstream_tls(&context, handshake_timeout)
        .map(Some)
        .map_err(|e| e.at("transport_socket"))
}

fn downstream_tls(
    ctx: &DownstreamTlsContext,
    handshake_timeout: Option<Duration>,
) -> Result<ServerTls, ConvertError> {
    refuse(&[
        (ctx.session_timeout.is_some(), "session_timeout"),
        (ctx.ocsp_staple_policy != 0, "ocsp_staple_policy"),
        (
            ctx.full_scan_certs_on_sni_mismatch.is_some(),
            "full_scan_certs_on_sni_mismatch",
        ),
    ])?;
    let session_tickets = match &ctx.session_ticket_keys_type {
        None => true,
        Some(SessionTicketKeysType::DisableStatelessSessionResumption(disable)) => !disable,
        Some(SessionTicketKeysType::SessionTicketKeys(_)) => {
            return Err(ConvertError::unsupported("session_ticket_keys"))
        }
        Some(SessionTicketKeysType::SessionTicketKeysSdsSecretConfig(_)) => {
            return Err(ConvertError::unsupported(
                "session_ticket_keys_sds_secret_config",
            ))
        }
    };
    let common = ctx
        .common_tls_context
        .as_ref()
        .ok_or(ConvertError::Missing("common_tls_context"))?;
    let require_client_certificate = bool_or(ctx.require_client_certificate.as_ref(), false);
    let (certificates, chain, key) = certificate(common).map_err(|e| e.at("common_tls_context"))?;
    let validation = validation(common).map_err(|e| e.at("common_tls_context"))?;
    let (trusted_ca, trusted_ca_from, sans, spki_pins, hash_pins) = validation.unwrap_or_default();
    let params = tls_params(common.tls_params.as_ref())
        .map_err(|e| e.at("common_tls_context.tls_params"))?;
    let alpn_protocols = common.alpn_protocols.clone();
    let settings = ServerTlsSettings {
        certificate_chain: chain,
        private_key: key,
        trusted_ca,
        subject_alt_names: sans,
        spki_pins,
        hash_pins,
        require_client_certificate,
        alpn_protocols: alpn_protocols
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        versions: params.0,
        cipher_suites: params.1,
        ecdh_curves: params.2,
        prefer_client_ciphers: ctx.prefer_client_ciphers,
        session_tickets,
        session_cache: !ctx.disable_stateful_session_resumption,
    };
    let config = tls::build(settings).map_err(|e| {
        ConvertError::invalid(
            "common_tls_context.tls_certificates",
            format!("{}: {e}", certificates.join(", ")),
        )
    })?;
    Ok(ServerTls {
        certificates,
        trusted_ca: trusted_ca_from,
        alpn_protocols,
        require_client_certificate,
        require_sni: bool_or(ctx.require_sni.as_ref(), false),
        handshake_timeout,
        config,
    })
}

type Certificate = (
    Vec<String>,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
);

/// The one certificate chain and key, with where they came from.
fn certificate(common: &CommonTlsContext) -> Result<Certificate, ConvertError> {
    #[allow(deprecated)]
    let providers = common.tls_certificate_certificate_provider.is_some()
        || common
            .tls_certificate_certificate_provider_instance
            .is_some();
    refuse(&[
        (
            !common.tls_certificate_sds_secret_configs.is_empty(),
            "tls_certificate_sds_secret_configs",
        ),
        (
            common.tls_certificate_provider_instance.is_some() || providers,
            "tls_certificate_provider_instance",
        ),
        (
            common.custom_tls_certificate_selector.is_some(),
            "custom_tls_certificate_selector",
        ),
        (common.custom_handshaker.is_some(), "custom_handshaker"),
        (common.key_log.is_some(), "key_log"),
        (
            common.tls_certificates.len() > 1,
            "more than one tls_certificates entry",
        ),
    ])?;
    let cert: &TlsCertificate = common
        .tls_certificates
        .first()
        .ok_or(ConvertError::Missing("tls_certificates"))?;
    let at = |e: ConvertError| e.at("tls_certificates[0]");
    refuse(&[
        (cert.pkcs12.is_some(), "pkcs12"),
        (cert.watched_directory.is_some(), "watched_directory"),
        (cert.private_key_provider.is_some(), "private_key_provider"),
        (cert.password.is_some(), "password"),
        (cert.ocsp_staple.is_some(), "ocsp_staple"),
        (
            !cert.signed_certificate_timestamp.is_empty(),
            "signed_certificate_timestamp",
        ),
    ])
    .map_err(at)?;
    let (chain_from, chain_pem) =
        read(cert.certificate_chain.as_ref(), "certificate_chain").map_err(at)?;
    let (key_from, key_pem) = read(cert.private_key.as_ref(), "private_key").map_err(at)?;
    let chain = certificates(&chain_pem, &chain_from).map_err(at)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        at(ConvertError::invalid(
            "private_key",
            format!("{key_from}: {e}"),
        ))
    })?;
    Ok((vec![chain_from], chain, key))
}

type Validation = (
    Vec<CertificateDer<'static>>,
    Option<String>,
    Vec<SanMatcher>,
    Vec<[u8; 32]>,
    Vec<[u8; 32]>,
);

/// The client certificate checks, when there is a validation context.
fn validation(common: &CommonTlsContext) -> Result<Option<Validation>, ConvertError> {
    let vc: &CertificateValidationContext = match &common.validation_context_type {
        None => return Ok(None),
        Some(ValidationContextType::ValidationContext(vc)) => vc,
        Some(ValidationContextType::ValidationContextSdsSecretConfig(_)) => {
            return Err(ConvertError::unsupported(
                "validation_context_sds_secret_config",
            ))
        }
        Some(ValidationContextType::CombinedValidationContext(_)) => {
            return Err(ConvertError::unsupported("combined_validation_context"))
        }
        Some(_) => {
            return Err(ConvertError::unsupported(
                "validation_context_certificate_provider",
            ))
        }
    };
    let at = |e: ConvertError| e.at("validation_context");
    refuse(&[
        (
            vc.ca_certificate_provider_instance.is_some(),
            "ca_certificate_provider_instance",
        ),
        (vc.system_root_certs.is_some(), "system_root_certs"),
        (vc.watched_directory.is_some(), "watched_directory"),
        (
            vc.require_signed_certificate_timestamp.is_some(),
            "require_signed_certificate_timestamp",
        ),
        (vc.crl.is_some(), "crl"),
        (vc.allow_expired_certificate, "allow_expired_certificate"),
        (vc.trust_chain_verification != 0, "trust_chain_verification"),
        (
            vc.custom_validator_config.is_some(),
            "custom_validator_config",
        ),
        (vc.only_verify_leaf_cert_crl, "only_verify_leaf_cert_crl"),
        (vc.max_verify_depth.is_some(), "max_verify_depth"),
    ])
    .map_err(at)?;
    let (ca, ca_from) = match &vc.trusted_ca {
        Some(source) => {
            let (from, pem) = read(Some(source), "trusted_ca").map_err(at)?;
            (certificates(&pem, &from).map_err(at)?, Some(from))
        }
        None => (Vec::new(), None),
    };
    let mut sans = Vec::new();
    for (i, m) in vc.match_typed_subject_alt_names.iter().enumerate() {
        let at = |e: ConvertError| at(e.at(format!("match_typed_subject_alt_names[{i}]")));
        let san_type = match XdsSanType::try_from(m.san_type) {
            Ok(XdsSanType::Dns) => SanType::Dns,
            Ok(XdsSanType::Uri) => SanType::Uri,
            Ok(XdsSanType::Email) => SanType::Email,
            Ok(XdsSanType::IpAddress) => SanType::IpAddress,
            _ => return Err(at(ConvertError::unsupported("san_type"))),
        };
        let matcher = m.matcher.as_ref().ok_or(ConvertError::Missing("matcher"));
        let pattern = matcher.and_then(whole_pattern).map_err(at)?;
        sans.push(SanMatcher { san_type, pattern });
    }
    // The deprecated untyped form matches a SAN of any type.
    #[allow(deprecated)]
    for (i, m) in vc.match_subject_alt_names.iter().enumerate() {
        let pattern =
            whole_pattern(m).map_err(|e| at(e.at(format!("match_subject_alt_names[{i}]"))))?;
        for san_type in [
            SanType::Dns,
            SanType::Uri,
            SanType::Email,
            SanType::IpAddress,
        ] {
            sans.push(SanMatcher {
                san_type,
                pattern: pattern.clone(),
            });
        }
    }
    let spki_pins = vc
        .verify_certificate_spki
        .iter()
        .map(|pin| spki_pin(pin))
        .collect::<Result<Vec<_>, _>>()
        .map_err(at)?;
    let hash_pins = vc
        .verify_certificate_hash
        .iter()
        .map(|pin| hash_pin(pin))
        .collect::<Result<Vec<_>, _>>()
        .map_err(at)?;
    Ok(Some((ca, ca_from, sans, spki_pins, hash_pins)))
}

type Params = ((TlsVersion, TlsVersion), Vec<String>, Vec<String>);

/// Versions (Envoy's server defaults: TLS 1.2 to 1.3), cipher suites and
/// curves. rustls has no TLS 1.0 or 1.1, so asking for them NACKs.
fn tls_params(params: Option<&TlsParameters>) -> Result<Params, ConvertError> {
    let Some(p) = params else {
        return Ok(((TlsVersion::Tls12, TlsVersion::Tls13), vec![], vec![]));
    };
    refuse(&[
        (!p.signature_algorithms.is_empty(), "signature_algorithms"),
        (!p.compliance_policies.is_empty(), "compliance_policies"),
    ])?;
    let version = |v: i32, field: &'static str, auto: TlsVersion| match TlsProtocol::try_from(v) {
        Ok(TlsProtocol::TlsAuto) => Ok(auto),
        Ok(TlsProtocol::TlSv12) => Ok(TlsVersion::Tls12),
        Ok(TlsProtocol::TlSv13) => Ok(TlsVersion::Tls13),
        Ok(old) => Err(ConvertError::unsupported(format!(
            "{field} {} (TLS 1.2 and 1.3 only)",
            old.as_str_name()
        ))),
        Err(_) => Err(ConvertError::invalid(field, format!("unknown value {v}"))),
    };
    let min = version(
        p.tls_minimum_protocol_version,
        "tls_minimum_protocol_version",
        TlsVersion::Tls12,
    )?;
    let max = version(
        p.tls_maximum_protocol_version,
        "tls_maximum_protocol_version",
        TlsVersion::Tls13,
    )?;
    if min > max {
        return Err(ConvertError::invalid(
            "tls_minimum_protocol_version",
            "above tls_maximum_protocol_version",
        ));
    }
    Ok(((min, max), p.cipher_suites.clone(), p.ecdh_curves.clone()))
}

/// The bytes of a `DataSource` and where they came from (a file name,
/// `<inline>` or `$VARIABLE`).
fn read(
    source: Option<&DataSource>,
    field: &'static str,
) -> Result<(String, Vec<u8>), ConvertError> {
    let source = source.ok_or(ConvertError::Missing(field))?;
    if source.watched_directory.is_some() {
        return Err(ConvertError::unsupported(format!(
            "{field}.watched_directory"
        )));
    }
    match &source.specifier {
        Some(Specifier::Filename(path)) => std::fs::read(path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|e| ConvertError::invalid(field, format!("cannot read {path}: {e}"))),
        Some(Specifier::InlineBytes(bytes)) => Ok(("<inline>".into(), bytes.clone())),
        Some(Specifier::InlineString(text)) => Ok(("<inline>".into(), text.clone().into_bytes())),
        Some(Specifier::EnvironmentVariable(name)) => std::env::var(name)
            .map(|v| (format!("${name}"), v.into_bytes()))
            .map_err(|_| {
                ConvertError::invalid(field, format!("environment variable {name} not set"))
            }),
        None => Err(ConvertError::Missing(field)),
    }
}

/// Every certificate of a PEM bundle; none at all is an error.
fn certificates(pem: &[u8], from: &str) -> Result<Vec<CertificateDer<'static>>, ConvertError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConvertError::invalid("certificate", format!("{from}: {e}")))?;
    if certs.is_empty() {
        return Err(ConvertError::invalid(
            "certificate",
            format!("{from}: no PEM certificate in it"),
        ));
    }
    for cert in &certs {
        if x509_parser::parse_x509_certificate(cert.as_ref()).is_err() {
            return Err(ConvertError::invalid(
                "certificate",
                format!("{from}: not a valid X.509 certificate"),
            ));
        }
    }
    Ok(certs)
}

/// A `StringMatcher` as one anchored regex over the whole value.
fn whole_pattern(m: &StringMatcher) -> Result<regex::Regex, ConvertError> {
    let literal = |s: &str, before: &str, after: &str| {
        let flags = if m.ignore_case { "(?i)" } else { "" };
        compile_whole_match(&format!("{flags}{before}{}{after}", regex::escape(s)))
    };
    match m
        .match_pattern
        .as_ref()
        .ok_or(ConvertError::Missing("match_pattern"))?
    {
        MatchPattern::Exact(s) => literal(s, "", ""),
        MatchPattern::Prefix(s) => literal(s, "", "(?s:.*)"),
        MatchPattern::Suffix(s) => literal(s, "(?s:.*)", ""),
        MatchPattern::Contains(s) => literal(s, "(?s:.*)", "(?s:.*)"),
        MatchPattern::SafeRegex(re) => compile_whole_match(&re.regex),
        MatchPattern::Custom(_) => Err(ConvertError::unsupported("custom string matcher")),
    }
}

/// `verify_certificate_spki`: base64 of a SHA-256.
fn spki_pin(pin: &str) -> Result<[u8; 32], ConvertError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pin.trim())
        .map_err(|e| ConvertError::invalid("verify_certificate_spki", format!("{pin:?}: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        ConvertError::invalid(
            "verify_certificate_spki",
            format!("{pin:?} is not a SHA-256"),
        )
    })
}

/// `verify_certificate_hash`: hex of a SHA-256, colons allowed.
fn hash_pin(pin: &str) -> Result<[u8; 32], ConvertError> {
    let bad = || {
        ConvertError::invalid(
            "verify_certificate_hash",
            format!("{pin:?} is not a hex SHA-256"),
        )
    };
    let hex: Vec<u8> = pin.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The first set field of a list of fields the proxy does not implement.
fn refuse(set: &[(bool, &str)]) -> Result<(), ConvertError> {
    match set.iter().find(|(is_set, _)| *is_set) {
        Some((_, field)) => Err(ConvertError::unsupported(*field)),
        None => Ok(()),
    }
}

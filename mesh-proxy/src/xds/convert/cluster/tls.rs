//! Conversion of a cluster's `transport_socket`: raw buffer (plaintext) or
//! `envoy.transport_sockets.tls` with an `UpstreamTlsContext` (Istio's
//! DestinationRule `tls` SIMPLE and MUTUAL). Certificate and key files are
//! read here, at conversion time, so a missing or malformed file NACKs the
//! cluster naming the file; SDS secrets are refused for now.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster as XdsCluster;
use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket, DataSource,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol, CertificateValidationContext, CommonTlsContext, TlsCertificate,
    UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::super::compile_whole_match;
use super::super::unpack;
use crate::model::UpstreamTls;
use crate::upstream::tls::{client_config, SanKind, SanMatcher, StringMatch, TlsSettings};
use crate::xds::error::ConvertError;

const RAW_BUFFER: &str = "envoy.transport_sockets.raw_buffer";
const TLS: &str = "envoy.transport_sockets.tls";

/// The cluster's upstream TLS, `None` for plaintext.
pub(super) fn transport_socket(
    c: &XdsCluster,
    auto_sni: bool,
    auto_san_validation: bool,
) -> Result<Option<Arc<UpstreamTls>>, ConvertError> {
    let Some(ts) = &c.transport_socket else {
        return Ok(None);
    };
    let any = ts
        .config_type
        .as_ref()
        .map(|transport_socket::ConfigType::TypedConfig(any)| any);
    let is_tls = ts.name == TLS
        || any
            .is_some_and(|a| super::super::type_name(&a.type_url).ends_with("UpstreamTlsContext"));
    if !is_tls {
        if ts.name == RAW_BUFFER || ts.name.is_empty() {
            return Ok(None);
        }
        return Err(ConvertError::unsupported(format!(
            "transport_socket {}",
            ts.name
        )));
    }
    let Some(any) = any else {
        return Err(ConvertError::Missing("typed_config"));
    };
    let context: UpstreamTlsContext = unpack(any)?;
    upstream_tls(&context, auto_sni, auto_san_validation).map(|t| Some(Arc::new(t)))
}

fn upstream_tls(
    context: &UpstreamTlsContext,
    auto_sni: bool,
    auto_san_validation: bool,
) -> Result<UpstreamTls, ConvertError> {
    if context.allow_renegotiation {
        return Err(ConvertError::unsupported("allow_renegotiation"));
    }
    if context.auto_host_sni || context.auto_sni_san_validation {
        return Err(ConvertError::unsupported("auto_host_sni"));
    }
    let common = context.common_tls_context.clone().unwrap_or_default();
    let common_at = |e: ConvertError| e.at("common_tls_context");
    refuse_common_extras(&common).map_err(common_at)?;
    let mut settings = TlsSettings {
        alpn: common.alpn_protocols.clone(),
        allow_tls12: true,
        allow_tls13: false,
        auto_san_validation,
        ..TlsSettings::default()
    };
    if let Some(params) = &common.tls_params {
        let at = |e: ConvertError| common_at(e.at("tls_params"));
        if !params.ecdh_curves.is_empty() {
            return Err(at(ConvertError::unsupported("ecdh_curves")));
        }
        if !params.signature_algorithms.is_empty() {
            return Err(at(ConvertError::unsupported("signature_algorithms")));
        }
        let version = |v: i32, field: &'static str| {
            TlsProtocol::try_from(v)
                .map_err(|_| ConvertError::invalid(field, format!("unknown value {v}")))
        };
        let min = version(
            params.tls_minimum_protocol_version,
            "tls_minimum_protocol_version",
        )
        .map_err(at)?;
        let max = version(
            params.tls_maximum_protocol_version,
            "tls_maximum_protocol_version",
        )
        .map_err(at)?;
        // rustls speaks TLS 1.2 and 1.3: an older minimum only widens a
        // range we cannot reach. Envoy's client maximum defaults to 1.2.
        settings.allow_tls13 = matches!(max, TlsProtocol::TlSv13);
        settings.allow_tls12 = !matches!(min, TlsProtocol::TlSv13);
        if matches!(max, TlsProtocol::TlSv10 | TlsProtocol::TlSv11) {
            return Err(at(ConvertError::unsupported(
                "tls_maximum_protocol_version below TLSv1_2",
            )));
        }
        settings.cipher_suites = params.cipher_suites.clone();
    }
    let mut san_descriptions = Vec::new();
    match &common.validation_context_type {
        None => {}
        Some(ValidationContextType::ValidationContext(v)) => {
            validation(v, &mut settings, &mut san_descriptions)
                .map_err(|e| common_at(e.at("validation_context")))?;
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(_)) => {
            return Err(common_at(ConvertError::unsupported(
                "validation_context_sds_secret_config",
            )))
        }
        Some(ValidationContextType::CombinedValidationContext(_)) => {
            return Err(common_at(ConvertError::unsupported(
                "combined_validation_context",
            )))
        }
        Some(_) => {
            return Err(common_at(ConvertError::unsupported(
                "validation context provider",
            )))
        }
    }
    match common.tls_certificates.as_slice() {
        [] => {}
        [cert] => {
            settings.client_cert =
                Some(certificate(cert).map_err(|e| common_at(e.at("tls_certificates[0]")))?);
        }
        _ => {
            return Err(common_at(ConvertError::unsupported(
                "more than one tls_certificates entry",
            )))
        }
    }
    let verify = settings.trusted_ca.is_some();
    let client_certificate = settings.client_cert.is_some();
    let alpn = settings.alpn.clone();
    let config = client_config(settings)
        .map_err(|e| common_at(ConvertError::invalid("tls", e.to_string())))?;
    Ok(UpstreamTls {
        sni: Some(context.sni.clone()).filter(|s| !s.is_empty()),
        auto_sni,
        alpn,
        verify,
        san_matchers: san_descriptions,
        client_certificate,
        config: Arc::new(config),
    })
}

fn refuse_common_extras(common: &CommonTlsContext) -> Result<(), ConvertError> {
    if !common.tls_certificate_sds_secret_configs.is_empty() {
        return Err(ConvertError::unsupported(
            "tls_certificate_sds_secret_configs",
        ));
    }
    if common.tls_certificate_provider_instance.is_some()
        || common.custom_tls_certificate_selector.is_some()
    {
        return Err(ConvertError::unsupported("tls certificate provider"));
    }
    if common.custom_handshaker.is_some() {
        return Err(ConvertError::unsupported("custom_handshaker"));
    }
    if common.key_log.is_some() {
        return Err(ConvertError::unsupported("key_log"));
    }
    Ok(())
}

#[allow(deprecated)]
fn validation(
    v: &CertificateValidationContext,
    settings: &mut TlsSettings,
    described: &mut Vec<String>,
) -> Result<(), ConvertError> {
    if !v.verify_certificate_spki.is_empty() || !v.verify_certificate_hash.is_empty() {
        return Err(ConvertError::unsupported("certificate pinning"));
    }
    if v.crl.is_some() {
        return Err(ConvertError::unsupported("crl"));
    }
    if v.allow_expired_certificate {
        return Err(ConvertError::unsupported("allow_expired_certificate"));
    }
    if v.trust_chain_verification != 0 {
        return Err(ConvertError::unsupported(
            "trust_chain_verification ACCEPT_UNTRUSTED",
        ));
    }
    if v.ca_certificate_provider_instance.is_some() || v.custom_validator_config.is_some() {
        return Err(ConvertError::unsupported("custom validator"));
    }
    if v.system_root_certs.is_some() {
        return Err(ConvertError::unsupported("system_root_certs"));
    }
    if v.watched_directory.is_some() {
        return Err(ConvertError::unsupported("watched_directory"));
    }
    if let Some(ca) = &v.trusted_ca {
        let (bytes, origin) = data(ca).map_err(|e| e.at("trusted_ca"))?;
        let certs = certificates(&bytes, &origin).map_err(|e| e.at("trusted_ca"))?;
        settings.trusted_ca = Some(certs);
    }
    for (i, m) in v.match_typed_subject_alt_names.iter().enumerate() {
        let at = |e: ConvertError| e.at(format!("match_typed_subject_alt_names[{i}]"));
        let kind = match SanType::try_from(m.san_type) {
            Ok(SanType::Dns) => SanKind::Dns,
            Ok(SanType::Uri) => SanKind::Uri,
            Ok(SanType::IpAddress) => SanKind::Ip,
            Ok(SanType::Email) => SanKind::Email,
            _ => {
                return Err(at(ConvertError::unsupported(format!(
                    "san_type {}",
                    m.san_type
                ))))
            }
        };
        let matcher = m
            .matcher
            .as_ref()
            .ok_or(ConvertError::Missing("matcher"))
            .map_err(at)?;
        described.push(format!("{kind:?} {}", describe(matcher)));
        settings
            .san_matchers
            .push(san_matcher(kind, matcher).map_err(at)?);
    }
    for (i, matcher) in v.match_subject_alt_names.iter().enumerate() {
        let at = |e: ConvertError| e.at(format!("match_subject_alt_names[{i}]"));
        described.push(format!("any {}", describe(matcher)));
        settings
            .san_matchers
            .push(san_matcher(SanKind::Any, matcher).map_err(at)?);
    }
    Ok(())
}

fn describe(m: &StringMatcher) -> String {
    match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => format!("exact {s:?}"),
        Some(MatchPattern::Prefix(s)) => format!("prefix {s:?}"),
        Some(MatchPattern::Suffix(s)) => format!("suffix {s:?}"),
        Some(MatchPattern::Contains(s)) => format!("contains {s:?}"),
        Some(MatchPattern::SafeRegex(r)) => format!("regex {:?}", r.regex),
        _ => "?".into(),
    }
}

fn san_matcher(kind: SanKind, m: &StringMatcher) -> Result<SanMatcher, ConvertError> {
    let matcher = match &m.match_pattern {
        Some(MatchPattern::Exact(s)) => StringMatch::Exact(s.clone()),
        Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(s.clone()),
        Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(s.clone()),
        Some(MatchPattern::Contains(s)) => StringMatch::Contains(s.clone()),
        Some(MatchPattern::SafeRegex(r)) => StringMatch::Regex(compile_whole_match(&r.regex)?),
        Some(MatchPattern::Custom(_)) => return Err(ConvertError::unsupported("custom matcher")),
        None => return Err(ConvertError::Missing("match_pattern")),
    };
    Ok(SanMatcher {
        kind,
        matcher,
        ignore_case: m.ignore_case,
    })
}

fn certificate(
    cert: &TlsCertificate,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConvertError> {
    if cert.pkcs12.is_some() {
        return Err(ConvertError::unsupported("pkcs12"));
    }
    if cert.private_key_provider.is_some() {
        return Err(ConvertError::unsupported("private_key_provider"));
    }
    if cert.password.is_some() {
        return Err(ConvertError::unsupported("password"));
    }
    if cert.watched_directory.is_some() {
        return Err(ConvertError::unsupported("watched_directory"));
    }
    let chain = cert
        .certificate_chain
        .as_ref()
        .ok_or(ConvertError::Missing("certificate_chain"))?;
    let (bytes, origin) = data(chain).map_err(|e| e.at("certificate_chain"))?;
    let chain = certificates(&bytes, &origin).map_err(|e| e.at("certificate_chain"))?;
    let key = cert
        .private_key
        .as_ref()
        .ok_or(ConvertError::Missing("private_key"))?;
    let (bytes, origin) = data(key).map_err(|e| e.at("private_key"))?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        ConvertError::invalid("private_key", format!("{origin}: no PEM private key ({e})"))
    })?;
    Ok((chain, key))
}

/// The bytes of a data source and a name for messages: the file (read
/// now) or `inline`.
fn data(source: &DataSource) -> Result<(Vec<u8>, String), ConvertError> {
    if source.watched_directory.is_some() {
        return Err(ConvertError::unsupported("watched_directory"));
    }
    match &source.specifier {
        Some(Specifier::Filename(path)) => std::fs::read(path)
            .map(|bytes| (bytes, format!("file {path}")))
            .map_err(|e| ConvertError::invalid("filename", format!("cannot read {path}: {e}"))),
        Some(Specifier::InlineBytes(bytes)) => Ok((bytes.clone(), "inline_bytes".into())),
        Some(Specifier::InlineString(s)) => Ok((s.clone().into_bytes(), "inline_string".into())),
        Some(Specifier::EnvironmentVariable(_)) => Err(ConvertError::unsupported(
            "environment_variable data source",
        )),
        None => Err(ConvertError::Missing("specifier")),
    }
}

fn certificates(bytes: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, ConvertError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(ConvertError::invalid(
            "certificate",
            format!("{origin}: no PEM certificate"),
        )),
        Err(e) => Err(ConvertError::invalid(
            "certificate",
            format!("{origin}: bad PEM ({e})"),
        )),
    }
}

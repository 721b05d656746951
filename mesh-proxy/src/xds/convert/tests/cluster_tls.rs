//! CDS conversion of `transport_socket`: upstream TLS SIMPLE and MUTUAL,
//! inline and from files, and what is refused.

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::ClusterDiscoveryType, cluster::DiscoveryType, Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CertificateValidationContext, CommonTlsContext,
    SdsSecretConfig, SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::util::pack_any;

use crate::model::Cluster;

fn cluster(name: &str, kind: DiscoveryType) -> XdsCluster {
    XdsCluster {
        name: name.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        ..Default::default()
    }
}

fn convert(c: &XdsCluster) -> Result<Cluster, String> {
    Cluster::try_from(c).map_err(|e| e.to_string())
}

fn nack(c: &XdsCluster, wanted: &str) {
    let err = convert(c).expect_err(wanted);
    assert!(err.contains(wanted), "{err:?} should name {wanted:?}");
}

/// A CA and a server certificate for `names`, as PEM.
fn pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["reviews.default.svc".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn tls_cluster(context: UpstreamTlsContext) -> XdsCluster {
    let mut c = cluster("c", DiscoveryType::Eds);
    c.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    });
    c
}

fn inline(s: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(s.into())),
        watched_directory: None,
    })
}

#[test]
fn upstream_tls_simple_mutual_files_and_refusals() {
    let (ca, cert, key) = pki();
    let validation = |ca: Option<DataSource>| {
        Some(ValidationContextType::ValidationContext(
            CertificateValidationContext {
                trusted_ca: ca,
                match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                    san_type: 2, // DNS
                    matcher: Some(StringMatcher {
                        match_pattern: Some(MatchPattern::Suffix(".default.svc".into())),
                        ignore_case: false,
                    }),
                    oid: String::new(),
                }],
                ..Default::default()
            },
        ))
    };
    let simple = UpstreamTlsContext {
        sni: "reviews.default.svc".into(),
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: vec!["h2".into()],
            validation_context_type: validation(inline(&ca)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tls = convert(&tls_cluster(simple)).unwrap().tls.unwrap();
    assert_eq!(tls.sni.as_deref(), Some("reviews.default.svc"));
    assert!(tls.verify && !tls.client_certificate);
    assert_eq!(tls.san_matchers, ["Dns suffix \".default.svc\""]);
    assert_eq!(tls.config.alpn_protocols, [b"h2".to_vec()]);

    // MUTUAL from files, read at conversion time.
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        Some(DataSource {
            specifier: Some(Specifier::Filename(path.display().to_string())),
            watched_directory: None,
        })
    };
    let mutual = |chain: Option<DataSource>| UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: chain,
                private_key: file("key.pem", &key),
                ..Default::default()
            }],
            validation_context_type: validation(file("ca.pem", &ca)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tls = convert(&tls_cluster(mutual(file("cert.pem", &cert))))
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.client_certificate && tls.verify);
    // No validation context: Envoy does not verify the server.
    let unverified = convert(&tls_cluster(UpstreamTlsContext::default()))
        .unwrap()
        .tls
        .unwrap();
    assert!(!unverified.verify);

    let missing = Some(DataSource {
        specifier: Some(Specifier::Filename("/nonexistent/cert-chain.pem".into())),
        watched_directory: None,
    });
    nack(&tls_cluster(mutual(missing)), "/nonexistent/cert-chain.pem");
    let bad = file("bad.pem", "not a certificate");
    let err = convert(&tls_cluster(mutual(bad))).unwrap_err();
    assert!(
        err.contains("bad.pem") && err.contains("no PEM certificate"),
        "{err}"
    );

    let sds = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: "default".into(),
                sds_config: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    nack(&tls_cluster(sds), "tls_certificate_sds_secret_configs");
    let sds_ca = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                SdsSecretConfig::default(),
            )),
            ..Default::default()
        }),
        ..Default::default()
    };
    nack(&tls_cluster(sds_ca), "validation_context_sds_secret_config");
    let ciphers = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(
                envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsParameters {
                    cipher_suites: vec![
                        "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-ECDSA-AES128-GCM-SHA256]".into(),
                        "DES-CBC3-SHA".into(),
                    ],
                    ..Default::default()
                },
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    nack(&tls_cluster(ciphers), "DES-CBC3-SHA");
}

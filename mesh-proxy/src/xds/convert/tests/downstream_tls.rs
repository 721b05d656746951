//! LDS conversion of a chain's TLS transport socket: files read at
//! conversion, and a NACK naming the file for a missing or bad one, a key
//! of another certificate, or a feature the proxy does not implement.

use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    TlsCertificate, TlsParameters,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;

use super::*;
use crate::model::Listener;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let write_pair = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params =
                rcgen::CertificateParams::new(vec![format!("{name}.example.com")]).unwrap();
            let cert = params.self_signed(&key).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(format!("{name}-key.pem")),
                key.serialize_pem(),
            )
            .unwrap();
        };
        write_pair("a");
        write_pair("b");
        std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn file(path: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::Filename(path.into())),
        ..Default::default()
    })
}

fn context(cert: &str, key: &str) -> DownstreamTlsContext {
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: file(cert),
                private_key: file(key),
                ..Default::default()
            }],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn convert_with(ctx: DownstreamTlsContext) -> Result<Listener, String> {
    let mut fc = chain("https", vec![hcm_filter(hcm(rds("https.443")))]);
    fc.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
    });
    Listener::try_from(&listener("gw", 443, vec![fc])).map_err(|e| e.to_string())
}

#[test]
fn certificates_from_files_convert_and_show_where_they_came_from() {
    let f = Files::new();
    let l = convert_with(context(&f.path("a.pem"), &f.path("a-key.pem"))).unwrap();
    let tls = l.filter_chains[0].tls.as_ref().expect("tls");
    assert_eq!(tls.certificates, [f.path("a.pem")]);
    assert_eq!(tls.alpn_protocols, ["h2", "http/1.1"]);
    assert!(!tls.require_client_certificate);
    assert_eq!(
        tls.config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let dump = serde_json::to_string(&l).unwrap();
    assert!(!dump.contains("PRIVATE KEY"), "the key never shows: {dump}");
}

#[test]
fn a_missing_or_bad_file_or_a_foreign_key_nacks_naming_the_file() {
    let f = Files::new();
    let missing = f.path("missing.pem");
    let e = convert_with(context(&missing, &f.path("a-key.pem"))).unwrap_err();
    assert!(e.contains(&missing) && e.contains("cannot read"), "{e}");
    let garbage = f.path("garbage.pem");
    let e = convert_with(context(&garbage, &f.path("a-key.pem"))).unwrap_err();
    assert!(
        e.contains(&garbage) && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = convert_with(context(&f.path("a.pem"), &garbage)).unwrap_err();
    assert!(e.contains(&garbage) && e.contains("private_key"), "{e}");
    let e = convert_with(context(&f.path("a.pem"), &f.path("b-key.pem"))).unwrap_err();
    assert!(
        e.contains(&f.path("a.pem")) && e.contains("does not match"),
        "{e}"
    );
    assert!(e.starts_with("filter_chains[0].transport_socket"), "{e}");
}

#[test]
fn mutual_reads_its_ca_and_checks_its_pins() {
    let f = Files::new();
    let mut ctx = context(&f.path("a.pem"), &f.path("a-key.pem"));
    ctx.require_client_certificate = Some(BoolValue { value: true });
    // Without a CA Envoy asks for any certificate; so does the proxy.
    let l = convert_with(ctx.clone()).unwrap();
    assert!(
        l.filter_chains[0]
            .tls
            .as_ref()
            .unwrap()
            .require_client_certificate
    );
    let common = ctx.common_tls_context.as_mut().unwrap();
    common.validation_context_type = Some(ValidationContextType::ValidationContext(
        CertificateValidationContext {
            trusted_ca: file(&f.path("b.pem")),
            verify_certificate_hash: vec!["zz".into()],
            ..Default::default()
        },
    ));
    let e = convert_with(ctx.clone()).unwrap_err();
    assert!(e.contains("verify_certificate_hash"), "{e}");
    if let Some(ValidationContextType::ValidationContext(vc)) = &mut ctx
        .common_tls_context
        .as_mut()
        .unwrap()
        .validation_context_type
    {
        vc.verify_certificate_hash.clear();
    }
    let l = convert_with(ctx).unwrap();
    let tls = l.filter_chains[0].tls.as_ref().unwrap();
    assert!(tls.require_client_certificate);
    assert_eq!(tls.trusted_ca.as_deref(), Some(f.path("b.pem").as_str()));
}

#[test]
fn sds_old_protocols_and_other_sockets_are_nacked() {
    let f = Files::new();
    let base = || context(&f.path("a.pem"), &f.path("a-key.pem"));
    let mut sds = base();
    sds.common_tls_context
        .as_mut()
        .unwrap()
        .tls_certificate_sds_secret_configs = vec![SdsSecretConfig {
        name: "default".into(),
        sds_config: None,
    }];
    let e = convert_with(sds).unwrap_err();
    assert!(
        e.contains("unsupported tls_certificate_sds_secret_configs"),
        "{e}"
    );
    let mut sds = base();
    sds.common_tls_context
        .as_mut()
        .unwrap()
        .validation_context_type = Some(ValidationContextType::ValidationContextSdsSecretConfig(
        SdsSecretConfig::default(),
    ));
    let e = convert_with(sds).unwrap_err();
    assert!(
        e.contains("unsupported validation_context_sds_secret_config"),
        "{e}"
    );
    let mut old = base();
    old.common_tls_context.as_mut().unwrap().tls_params = Some(TlsParameters {
        tls_minimum_protocol_version: TlsProtocol::TlSv10 as i32,
        ..Default::default()
    });
    let e = convert_with(old).unwrap_err();
    assert!(e.contains("TLSv1_0"), "{e}");
    let mut ciphers = base();
    ciphers.common_tls_context.as_mut().unwrap().tls_params = Some(TlsParameters {
        cipher_suites: vec!["[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]".into()],
        ..Default::default()
    });
    convert_with(ciphers).expect("an equal-preference group of known suites");
    let mut unknown = base();
    unknown.common_tls_context.as_mut().unwrap().tls_params = Some(TlsParameters {
        cipher_suites: vec!["AES128-SHA".into()],
        ..Default::default()
    });
    let e = convert_with(unknown).unwrap_err();
    assert!(e.contains("AES128-SHA"), "{e}");
    let mut tickets = base();
    tickets.session_ticket_keys_type = Some(
        envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::downstream_tls_context::SessionTicketKeysType::SessionTicketKeys(Default::default()),
    );
    let e = convert_with(tickets).unwrap_err();
    assert!(e.contains("session_ticket_keys"), "{e}");

    let mut fc = chain("x", vec![hcm_filter(hcm(rds("r")))]);
    fc.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.alts".into(),
        config_type: None,
    });
    let e = Listener::try_from(&listener("gw", 443, vec![fc]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported transport_socket envoy.transport_sockets.alts"),
        "{e}"
    );
}

//! Upstream TLS origination on loopback (Istio DestinationRule `tls`
//! SIMPLE and MUTUAL): clusters converted from `UpstreamTlsContext`, a
//! rustls server with rcgen certificates, HTTP through the pool and raw
//! bytes through `connect_tcp`; a wrong CA, a wrong SAN and a missing
//! client certificate are refused.

mod data_common;
mod upstream_support;

use std::net::SocketAddr;
use std::sync::Arc;

use data_common::*;
use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster as XdsCluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CertificateValidationContext, CommonTlsContext,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::util::pack_any;
use hyper_util::rt::TokioIo;
use mesh_proxy::cluster::{ClusterManager, PickContext};
use mesh_proxy::error::ProxyError;
use mesh_proxy::model::*;
use mesh_proxy::upstream::UpstreamPool;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use upstream_support::*;

const SAN: &str = "reviews.default.svc.cluster.local";
const SPIFFE: &str = "spiffe://cluster.local/ns/default/sa/reviews";

/// A TLS server with a certificate from `pki` for SAN and SPIFFE; with
/// `client_ca`, clients must present a certificate it signed.
async fn tls_server(pki: &Pki, client_ca: Option<&str>) -> (SocketAddr, Arc<Stats>) {
    let (cert, key) = pki.leaf(&[SAN, SPIFFE]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match client_ca {
        None => builder
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap()
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            let (acceptor, s) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve("tls", TokioIo::new(tls), s);
                }
            });
        }
    });
    (address, stats)
}

fn inline(pem: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineString(pem.into())),
        watched_directory: None,
    })
}

/// An EDS cluster converted from xDS with this TLS context.
fn cluster(context: UpstreamTlsContext) -> Cluster {
    let xds = XdsCluster {
        name: "c".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
        }),
        ..Default::default()
    };
    Cluster::try_from(&xds).expect("converts")
}

fn context(ca: Option<&str>, san: &str, client: Option<(&str, &str)>) -> UpstreamTlsContext {
    UpstreamTlsContext {
        sni: SAN.into(),
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: client
                .map(|(cert, key)| TlsCertificate {
                    certificate_chain: inline(cert),
                    private_key: inline(key),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            validation_context_type: ca.map(|ca| {
                ValidationContextType::ValidationContext(CertificateValidationContext {
                    trusted_ca: inline(ca),
                    match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                        san_type: 3, // URI
                        matcher: Some(StringMatcher {
                            match_pattern: Some(MatchPattern::Exact(san.into())),
                            ignore_case: false,
                        }),
                        oid: String::new(),
                    }],
                    ..Default::default()
                })
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn call(server: SocketAddr, cluster: Cluster) -> Result<(u16, String), ProxyError> {
    let mut snapshot = Snapshot::default();
    snapshot
        .clusters
        .insert("c".into(), Arc::new(cluster.clone()));
    snapshot.endpoints.insert(
        "c".into(),
        Arc::new(LoadAssignment::new("c", endpoints(&[server]))),
    );
    attempt(
        &ClusterManager::new(),
        &UpstreamPool::new(),
        &snapshot,
        &cluster,
        "/",
    )
    .await
}

#[tokio::test]
async fn simple_tls_verifies_the_ca_and_the_san() {
    let pki = Pki::new();
    let (server, stats) = tls_server(&pki, None).await;
    let ok = call(server, cluster(context(Some(&pki.ca_pem), SPIFFE, None))).await;
    assert_eq!(ok.unwrap(), (200, "tls".to_owned()));
    assert_eq!(stats.get(&stats.requests), 1);

    // Another CA: refused in the handshake, named as a TLS connect failure.
    let other = Pki::new();
    let error = call(server, cluster(context(Some(&other.ca_pem), SPIFFE, None)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProxyError::UpstreamConnect { .. }),
        "{error}"
    );
    assert!(error.reason().contains("TLS error"), "{}", error.reason());

    // The right CA but a SAN the certificate does not have.
    let error = call(
        server,
        cluster(context(
            Some(&pki.ca_pem),
            "spiffe://cluster.local/ns/default/sa/other",
            None,
        )),
    )
    .await
    .unwrap_err();
    assert!(error.reason().contains("TLS error"), "{}", error.reason());
    assert_eq!(
        stats.get(&stats.requests),
        1,
        "no request over a refused handshake"
    );

    // No validation context: Envoy does not check the server at all.
    let unverified = call(server, cluster(context(None, "", None))).await;
    assert_eq!(unverified.unwrap().0, 200);
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = Pki::new();
    let (server, _) = tls_server(&pki, Some(&pki.ca_pem)).await;
    let (cert, key) = pki.leaf(&["spiffe://cluster.local/ns/default/sa/productpage"]);
    let mutual = cluster(context(Some(&pki.ca_pem), SPIFFE, Some((&cert, &key))));
    assert!(mutual.tls.as_ref().unwrap().client_certificate);
    assert_eq!(call(server, mutual).await.unwrap().0, 200);
    // Without a client certificate the server refuses us.
    let simple = cluster(context(Some(&pki.ca_pem), SPIFFE, None));
    assert!(call(server, simple).await.is_err());
}

#[tokio::test]
async fn tcp_proxy_connections_originate_tls_too() {
    let pki = Pki::new();
    // A TLS echo server.
    let (cert, key) = pki.leaf(&[SAN]);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap(),
        PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() {
                        let _ = tls.write_all(&buf).await;
                    }
                }
            });
        }
    });
    let mut context = context(Some(&pki.ca_pem), "", None);
    if let Some(ValidationContextType::ValidationContext(v)) = context
        .common_tls_context
        .as_mut()
        .and_then(|c| c.validation_context_type.as_mut())
    {
        v.match_typed_subject_alt_names.clear();
    }
    let cluster = cluster(context);
    let mut snapshot = Snapshot::default();
    snapshot
        .clusters
        .insert("c".into(), Arc::new(cluster.clone()));
    snapshot.endpoints.insert(
        "c".into(),
        Arc::new(LoadAssignment::new("c", endpoints(&[server]))),
    );
    let manager = ClusterManager::new();
    let picked = manager
        .pick(&snapshot, &cluster, &PickContext::new(server, server))
        .await
        .unwrap();
    let mut stream = UpstreamPool::new()
        .connect_tcp(&picked, &cluster)
        .await
        .unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn auto_sni_sends_the_request_host_and_auto_san_validation_checks_it() {
    use envoy_types::pb::envoy::config::core::v3::UpstreamHttpProtocolOptions;
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
    let pki = Pki::new();
    let (cert, key) = pki.leaf(&["svc.test"]);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap(),
        PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = socket.local_addr().unwrap();
    let sni_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = sni_seen.clone();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            let (acceptor, seen, s) = (acceptor.clone(), seen.clone(), s.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let name = tls.get_ref().1.server_name().unwrap_or("").to_owned();
                    seen.lock().unwrap().push(name);
                    serve("tls", TokioIo::new(tls), s);
                }
            });
        }
    });
    let with_auto = |san_check: bool| {
        let mut ctx = context(Some(&pki.ca_pem), "", None);
        ctx.sni.clear();
        if let Some(ValidationContextType::ValidationContext(v)) = ctx
            .common_tls_context
            .as_mut()
            .and_then(|c| c.validation_context_type.as_mut())
        {
            v.match_typed_subject_alt_names.clear();
        }
        let options = HttpProtocolOptions {
            upstream_http_protocol_options: Some(UpstreamHttpProtocolOptions {
                auto_sni: true,
                auto_san_validation: san_check,
                ..Default::default()
            }),
            ..Default::default()
        };
        let xds = XdsCluster {
            name: "c".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            transport_socket: Some(TransportSocket {
                name: "envoy.transport_sockets.tls".into(),
                config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(ctx))),
            }),
            typed_extension_protocol_options: [(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_owned(),
                pack_any(options),
            )]
            .into(),
            ..Default::default()
        };
        Cluster::try_from(&xds).expect("converts")
    };
    // `attempt` sends `Host: svc.test`, which the certificate names.
    assert_eq!(call(server, with_auto(true)).await.unwrap().0, 200);
    assert_eq!(sni_seen.lock().unwrap().as_slice(), ["svc.test"]);
    // A request for a name the certificate lacks is refused when the SAN
    // is validated against it.
    let cluster = with_auto(true);
    let mut snapshot = Snapshot::default();
    snapshot
        .clusters
        .insert("c".into(), Arc::new(cluster.clone()));
    snapshot.endpoints.insert(
        "c".into(),
        Arc::new(LoadAssignment::new("c", endpoints(&[server]))),
    );
    let manager = ClusterManager::new();
    let picked = manager
        .pick(&snapshot, &cluster, &PickContext::new(server, server))
        .await
        .unwrap();
    let request = http::Request::builder()
        .uri("http://other.test/")
        .header("host", "other.test")
        .body(empty())
        .unwrap();
    let error = UpstreamPool::new()
        .send(&picked, &cluster, request)
        .await
        .unwrap_err();
    assert!(error.reason().contains("TLS error"), "{}", error.reason());
    assert_eq!(stats.get(&stats.requests), 1);
}

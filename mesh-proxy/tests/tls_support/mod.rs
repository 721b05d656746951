//! Test PKI and TLS clients for the downstream TLS tests: a CA and leaf
//! certificates made with rcgen and written to a temporary directory, the
//! `DownstreamTlsContext` pilot would send for them (converted the way the
//! xDS client converts it, files read and all), and a rustls client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{
    address, data_source::Specifier, socket_address, transport_socket, Address, DataSource,
    SocketAddress, TransportSocket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, Filter, FilterChain as XdsChain, FilterChainMatch as XdsMatch, Listener as XdsListener,
    ListenerFilter as XdsListenerFilter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, TlsCertificate,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::util::pack_any;
use mesh_proxy::model::{FilterChain, Listener};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A CA that signs leaf certificates into files of one directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_file: PathBuf,
}

/// A leaf certificate and its key, as files and as DER.
pub struct Leaf {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Pki {
    /// A new CA named `name`, its certificate in `DIR/NAME-ca.pem`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_file = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        Pki { dir, ca, ca_file }
    }

    /// A leaf for `names` (DNS names, or `spiffe://...` URIs) in
    /// `DIR/FILE.pem` and `DIR/FILE-key.pem`.
    pub fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for name in names {
            let san = if name.contains("://") {
                rcgen::SanType::URI(rcgen::string::Ia5String::try_from(*name).expect("uri"))
            } else {
                rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from(*name).expect("dns"))
            };
            params.subject_alt_names.push(san);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        let cert_file = self.dir.path().join(format!("{file}.pem"));
        let key_file = self.dir.path().join(format!("{file}-key.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        Leaf {
            cert_file,
            key_file,
            cert: cert.der().clone(),
            key: PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
        }
    }

    /// The CA certificate (DER), for clients' root stores.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }
}

fn file(path: &Path) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::Filename(path.display().to_string())),
        ..Default::default()
    })
}

/// Pilot's `DownstreamTlsContext` for a server certificate, with ALPN and,
/// for MUTUAL, a CA that client certificates must chain to.
pub fn downstream_context(
    leaf: &Leaf,
    alpn: &[&str],
    client_ca: Option<&Path>,
    require_client_certificate: bool,
) -> DownstreamTlsContext {
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: file(&leaf.cert_file),
                private_key: file(&leaf.key_file),
                ..Default::default()
            }],
            alpn_protocols: alpn.iter().map(|s| s.to_string()).collect(),
            validation_context_type: client_ca.map(|ca| {
                ValidationContextType::ValidationContext(CertificateValidationContext {
                    trusted_ca: file(ca),
                    ..Default::default()
                })
            }),
            ..Default::default()
        }),
        require_client_certificate: Some(BoolValue {
            value: require_client_certificate,
        }),
        ..Default::default()
    }
}

/// The `transport_socket` carrying `context`.
pub fn tls_socket(context: DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}

/// An xDS filter chain: `server_names`, an optional TLS socket, `filter`.
pub fn xds_chain(
    server_names: &[&str],
    socket: Option<TransportSocket>,
    filter: Filter,
) -> XdsChain {
    XdsChain {
        name: server_names.first().copied().unwrap_or("any").into(),
        filter_chain_match: Some(XdsMatch {
            server_names: server_names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .filter(|_| !server_names.is_empty()),
        transport_socket: socket,
        filters: vec![filter],
        ..Default::default()
    }
}

/// A gateway-shaped bound listener on `address` (listener filter
/// `tls_inspector`) with `chains`, converted as the xDS client would.
pub fn gateway_listener(name: &str, address: SocketAddr, chains: Vec<XdsChain>) -> Listener {
    let xds = XdsListener {
        name: name.into(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: address.ip().to_string(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                    address.port(),
                ))),
                ..Default::default()
            })),
        }),
        listener_filters: vec![XdsListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            ..Default::default()
        }],
        filter_chains: chains,
        ..Default::default()
    };
    Listener::try_from(&xds).expect("listener converts")
}

/// A converted filter chain: the xDS chain through the listener conversion.
pub fn converted_chain(chain: XdsChain) -> FilterChain {
    let address: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let mut listener = gateway_listener("x", address, vec![chain]);
    listener.filter_chains.remove(0)
}

/// The network filter `tcp_proxy` to `cluster`, as pilot sends it.
pub fn tcp_proxy_filter(cluster: &str) -> Filter {
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
        tcp_proxy::ClusterSpecifier, TcpProxy,
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(TcpProxy {
            stat_prefix: cluster.into(),
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        }))),
    }
}

/// The HCM with an RDS route config name, as pilot sends it for gateways.
pub fn hcm_rds_filter(route: &str) -> Filter {
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter,
        Rds,
    };
    let hcm = HttpConnectionManager {
        stat_prefix: route.into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: route.into(),
            config_source: None,
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
    }
}

/// A rustls client config trusting `roots`, offering `alpn`, and presenting
/// `identity` when given.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&str],
    identity: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// Connect to `address` and complete a TLS handshake for `sni`.
pub async fn tls_connect(
    address: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connector.connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// The leaf certificate the server presented.
pub fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, connection) = stream.get_ref();
    connection.peer_certificates().expect("server certificate")[0].clone()
}

//! Downstream TLS on a gateway listener, on loopback: termination for the
//! HCM (checked by a rustls client and by curl), the chain and certificate
//! chosen by SNI, ALPN h2, MUTUAL client certificates, and TLS passthrough
//! by SNI through tcp_proxy. Listeners are converted from the xDS pilot
//! sends, so certificate files are read as in production.

mod data_common;
mod tls_support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use data_common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_proxy::model::*;
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

/// A snapshot with `listener` and route config `https.443` sending every
/// request to the upstream `app`.
fn gateway_snapshot(listener: Listener, app: SocketAddr) -> Snapshot {
    let mut snapshot = Snapshot::default();
    add_listener(&mut snapshot, listener);
    add_route_config(
        &mut snapshot,
        route_config(
            "https.443",
            vec![vhost("any", &["*"], vec![to_cluster("app", prefix("/"))])],
        ),
    );
    snapshot
        .clusters
        .insert("app".into(), Arc::new(static_cluster("app", &[app])));
    snapshot
}

/// GET `path` over an established TLS stream, HTTP/2 when ALPN said `h2`.
async fn https_get(
    stream: TlsStream<TcpStream>,
    authority: &str,
    path: &str,
) -> Result<(u16, String), hyper::Error> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let request = |uri: String| {
        http::Request::get(uri)
            .header(http::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender
            .send_request(request(format!("https://{authority}{path}")))
            .await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(request(path.to_owned())).await?
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn terminates_tls_for_the_hcm_checked_by_rustls_and_by_curl() {
    let pki = Pki::new("gw");
    let leaf = pki.leaf("gw", &["gw.example.com"]);
    let app = upstream("app").await;
    let address = free_addr();
    let socket = tls_socket(downstream_context(&leaf, &["h2", "http/1.1"], None, false));
    let chain = xds_chain(
        &["gw.example.com"],
        Some(socket),
        hcm_rds_filter("https.443"),
    );
    let listener = gateway_listener("0.0.0.0_443", address, vec![chain]);
    let proxy = Proxy::start(gateway_snapshot(listener, app)).await;

    let config = client_config(&[pki.ca_der()], &["http/1.1"], None);
    let stream = tls_connect(address, "gw.example.com", config)
        .await
        .expect("handshake");
    assert_eq!(presented(&stream), leaf.cert);
    let (status, body) = https_get(stream, "gw.example.com", "/hello")
        .await
        .expect("answer");
    assert_eq!(status, 200);
    assert!(body.starts_with("app HTTP/1.1 /hello"), "{body}");

    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", flag, "-w", "\n%{http_version}"])
            .arg("--cacert")
            .arg(&pki.ca_file)
            .arg("--resolve")
            .arg(format!("gw.example.com:{}:127.0.0.1", address.port()))
            .arg(format!("https://gw.example.com:{}/curl", address.port()))
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("all_proxy")
            .output()
            .await
            .expect("curl runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {flag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (body, got) = stdout.rsplit_once('\n').expect("version line");
        assert!(body.starts_with("app HTTP/1.1 /curl"), "{body}");
        assert_eq!(got, version, "curl {flag} negotiated HTTP/{got}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn sni_chooses_the_chain_and_its_certificate() {
    let pki = Pki::new("sni");
    let a = pki.leaf("a", &["a.example.com"]);
    let b = pki.leaf("b", &["b.example.com"]);
    let app = upstream("app").await;
    let address = free_addr();
    let chain = |name: &str, leaf: &Leaf| {
        let socket = tls_socket(downstream_context(leaf, &[], None, false));
        xds_chain(&[name], Some(socket), hcm_rds_filter("https.443"))
    };
    let listener = gateway_listener(
        "0.0.0.0_443",
        address,
        vec![chain("a.example.com", &a), chain("b.example.com", &b)],
    );
    let proxy = Proxy::start(gateway_snapshot(listener, app)).await;
    let config = client_config(&[pki.ca_der()], &[], None);
    for (sni, leaf) in [
        ("a.example.com", &a),
        ("b.example.com", &b),
        ("a.example.com", &a),
    ] {
        let stream = tls_connect(address, sni, config.clone())
            .await
            .expect("handshake");
        assert_eq!(presented(&stream), leaf.cert, "certificate for {sni}");
        let (status, _) = https_get(stream, sni, "/").await.expect("answer");
        assert_eq!(status, 200);
    }
    // No chain for this name and no default chain: the connection is closed.
    let other = tls_connect(address, "c.example.com", config).await;
    assert!(other.is_err(), "no chain for c.example.com");
    proxy.stop().await;
}

#[tokio::test]
async fn alpn_h2_is_served_as_http2_and_http11_stays_http11() {
    let pki = Pki::new("alpn");
    let leaf = pki.leaf("gw", &["gw.example.com"]);
    let app = upstream("app").await;
    let address = free_addr();
    let socket = tls_socket(downstream_context(&leaf, &["h2", "http/1.1"], None, false));
    let chain = xds_chain(&[], Some(socket), hcm_rds_filter("https.443"));
    let listener = gateway_listener("0.0.0.0_443", address, vec![chain]);
    let proxy = Proxy::start(gateway_snapshot(listener, app)).await;
    for (offer, expect) in [
        (&["h2", "http/1.1"][..], "h2"),
        (&["http/1.1"][..], "http/1.1"),
    ] {
        let config = client_config(&[pki.ca_der()], offer, None);
        let stream = tls_connect(address, "gw.example.com", config)
            .await
            .expect("handshake");
        let alpn = stream.get_ref().1.alpn_protocol().map(|p| p.to_vec());
        assert_eq!(alpn.as_deref(), Some(expect.as_bytes()));
        let (status, body) = https_get(stream, "gw.example.com", "/v")
            .await
            .expect("answer");
        assert_eq!(status, 200, "{expect}: {body}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn mutual_tls_accepts_a_good_client_certificate_and_refuses_none_or_a_bad_one() {
    let server_pki = Pki::new("server");
    let clients = Pki::new("clients");
    let strangers = Pki::new("strangers");
    let leaf = server_pki.leaf("gw", &["gw.example.com"]);
    let good = clients.leaf("good", &["spiffe://cluster.local/ns/default/sa/good"]);
    let bad = strangers.leaf("bad", &["spiffe://cluster.local/ns/default/sa/bad"]);
    let app = upstream("app").await;
    let address = free_addr();
    let context = downstream_context(&leaf, &[], Some(&clients.ca_file), true);
    let chain = xds_chain(&[], Some(tls_socket(context)), hcm_rds_filter("https.443"));
    let listener = gateway_listener("0.0.0.0_443", address, vec![chain]);
    let proxy = Proxy::start(gateway_snapshot(listener, app)).await;
    let roots = [server_pki.ca_der()];

    let config = client_config(&roots, &[], Some(&good));
    let stream = tls_connect(address, "gw.example.com", config)
        .await
        .expect("handshake");
    let (status, _) = https_get(stream, "gw.example.com", "/")
        .await
        .expect("answer");
    assert_eq!(status, 200, "a certificate from the trusted CA is accepted");

    for (what, identity) in [("no certificate", None), ("a stranger's", Some(&bad))] {
        let config = client_config(&roots, &[], identity);
        // With TLS 1.3 the client may finish its side before the server
        // refuses; then the request fails instead.
        let refused = match tls_connect(address, "gw.example.com", config).await {
            Err(_) => true,
            Ok(stream) => https_get(stream, "gw.example.com", "/").await.is_err(),
        };
        assert!(refused, "{what} is refused");
    }
    proxy.stop().await;
}

/// A TLS server presenting `leaf` that answers every read with `NAME`.
async fn tls_backend(name: &'static str, leaf: &Leaf) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
    .expect("backend config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                    if tls.write_all(name.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn tls_passthrough_on_a_gateway_listener_by_sni() {
    let pki = Pki::new("passthrough");
    let a = pki.leaf("a", &["a.example.com"]);
    let b = pki.leaf("b", &["b.example.com"]);
    let backend_a = tls_backend("A", &a).await;
    let backend_b = tls_backend("B", &b).await;
    let address = free_addr();
    let listener = gateway_listener(
        "0.0.0.0_15443",
        address,
        vec![
            xds_chain(&["a.example.com"], None, tcp_proxy_filter("a")),
            xds_chain(&["b.example.com"], None, tcp_proxy_filter("b")),
        ],
    );
    assert!(listener.bind_to_port);
    let mut snapshot = Snapshot::default();
    add_listener(&mut snapshot, listener);
    for (name, backend) in [("a", backend_a), ("b", backend_b)] {
        snapshot
            .clusters
            .insert(name.into(), Arc::new(static_cluster(name, &[backend])));
    }
    let proxy = Proxy::start(snapshot).await;
    let config = client_config(&[pki.ca_der()], &[], None);
    for (sni, leaf, answer) in [("a.example.com", &a, "A"), ("b.example.com", &b, "B")] {
        // The backend's own certificate: the proxy never touched the TLS.
        let mut stream = tls_connect(address, sni, config.clone())
            .await
            .expect("handshake");
        assert_eq!(presented(&stream), leaf.cert, "{sni}");
        stream.write_all(b"hi").await.expect("write");
        let mut got = [0u8; 1];
        tokio::time::timeout(WAIT, stream.read_exact(&mut got))
            .await
            .expect("answer in time")
            .expect("read");
        assert_eq!(&got, answer.as_bytes());
    }
    proxy.stop().await;
}

#[tokio::test]
async fn required_client_certificate_without_a_ca_accepts_any_but_not_none() {
    let pki = Pki::new("server");
    let strangers = Pki::new("strangers");
    let leaf = pki.leaf("gw", &["gw.example.com"]);
    let anyone = strangers.leaf("anyone", &["anyone.example.com"]);
    let app = upstream("app").await;
    let address = free_addr();
    let context = downstream_context(&leaf, &[], None, true);
    let chain = xds_chain(&[], Some(tls_socket(context)), hcm_rds_filter("https.443"));
    let listener = gateway_listener("0.0.0.0_443", address, vec![chain]);
    let proxy = Proxy::start(gateway_snapshot(listener, app)).await;
    let roots = [pki.ca_der()];
    let config = client_config(&roots, &[], Some(&anyone));
    let stream = tls_connect(address, "gw.example.com", config)
        .await
        .expect("handshake");
    let (status, _) = https_get(stream, "gw.example.com", "/")
        .await
        .expect("answer");
    assert_eq!(status, 200);
    let config = client_config(&roots, &[], None);
    let refused = match tls_connect(address, "gw.example.com", config).await {
        Err(_) => true,
        Ok(stream) => https_get(stream, "gw.example.com", "/").await.is_err(),
    };
    assert!(refused, "no certificate is refused");
    proxy.stop().await;
}

/// Whether a client presenting `identity` gets an answer through `address`.
async fn admitted(
    address: SocketAddr,
    roots: &[rustls::pki_types::CertificateDer<'static>],
    identity: &Leaf,
) -> bool {
    let config = client_config(roots, &[], Some(identity));
    match tls_connect(address, "gw.example.com", config).await {
        Err(_) => false,
        Ok(stream) => https_get(stream, "gw.example.com", "/").await.is_ok(),
    }
}

#[tokio::test]
async fn subject_alt_names_and_pins_narrow_the_accepted_client_certificates() {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
        SubjectAltNameMatcher,
    };
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        string_matcher::MatchPattern, StringMatcher,
    };
    let pki = Pki::new("server");
    let clients = Pki::new("clients");
    let leaf = pki.leaf("gw", &["gw.example.com"]);
    let good = clients.leaf("good", &["spiffe://cluster.local/ns/default/sa/good"]);
    let other = clients.leaf("other", &["spiffe://cluster.local/ns/default/sa/other"]);
    let app = upstream("app").await;
    let roots = [pki.ca_der()];

    // The CA and a URI SAN matcher: only `good` of the CA's certificates.
    let mut context = downstream_context(&leaf, &[], Some(&clients.ca_file), true);
    let common = context.common_tls_context.as_mut().expect("common");
    if let Some(ValidationContextType::ValidationContext(vc)) = &mut common.validation_context_type
    {
        vc.match_typed_subject_alt_names = vec![SubjectAltNameMatcher {
            san_type: SanType::Uri as i32,
            matcher: Some(StringMatcher {
                match_pattern: Some(MatchPattern::Suffix("/sa/good".into())),
                ..Default::default()
            }),
            ..Default::default()
        }];
    }
    let address = free_addr();
    let chain = xds_chain(&[], Some(tls_socket(context)), hcm_rds_filter("https.443"));
    let proxy = Proxy::start(gateway_snapshot(
        gateway_listener("l", address, vec![chain]),
        app,
    ))
    .await;
    assert!(admitted(address, &roots, &good).await, "matching SAN");
    assert!(
        !admitted(address, &roots, &other).await,
        "same CA, other SAN"
    );
    proxy.stop().await;

    // A hash pin and no CA: exactly the pinned certificate.
    let mut context = downstream_context(&leaf, &[], None, true);
    let digest = ring::digest::digest(&ring::digest::SHA256, good.cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    context
        .common_tls_context
        .as_mut()
        .expect("common")
        .validation_context_type = Some(ValidationContextType::ValidationContext(
        envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::CertificateValidationContext {
            verify_certificate_hash: vec![hex.join(":")],
            ..Default::default()
        },
    ));
    let address = free_addr();
    let chain = xds_chain(&[], Some(tls_socket(context)), hcm_rds_filter("https.443"));
    let proxy = Proxy::start(gateway_snapshot(
        gateway_listener("l", address, vec![chain]),
        app,
    ))
    .await;
    assert!(admitted(address, &roots, &good).await, "pinned");
    assert!(!admitted(address, &roots, &other).await, "not pinned");
    proxy.stop().await;
}

//! Harness for the cluster and upstream stage tests: loopback HTTP servers
//! that count their connections and answer by path, a TLS variant with
//! rcgen certificates, and the router's pick ─► send ─► report sequence
//! without the router. Every wait is bounded.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_proxy::cluster::{ClusterManager, Outcome, PickContext};
use mesh_proxy::error::ProxyError;
use mesh_proxy::model::{Cluster, Snapshot};
use mesh_proxy::upstream::{RequestBody, UpstreamPool};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// What a counting server saw.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: AtomicUsize,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Most connections open at once.
    pub max_open: AtomicUsize,
    /// Requests answered.
    pub requests: AtomicUsize,
    /// Requests in flight now / at most.
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl Stats {
    pub fn get(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

fn up(now: &AtomicUsize, max: &AtomicUsize) {
    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(n, Ordering::SeqCst);
}

/// A loopback HTTP/1.1 + h2c server named `name` on `ip`: `/status/N`
/// answers N, `/slow/MS` waits first, `/ws` accepts a WebSocket-style
/// upgrade and echoes.
pub async fn http_server(name: &'static str, ip: [u8; 4]) -> (SocketAddr, Arc<Stats>) {
    let socket = TcpListener::bind(SocketAddr::from((ip, 0)))
        .await
        .expect("bind server");
    let address = socket.local_addr().expect("address");
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                return;
            };
            serve(name, TokioIo::new(stream), s.clone());
        }
    });
    (address, stats)
}

/// Serve one accepted connection (plain or TLS) with the answers of
/// [`http_server`].
pub fn serve<I>(name: &'static str, io: TokioIo<I>, stats: Arc<Stats>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    stats.accepted.fetch_add(1, Ordering::SeqCst);
    up(&stats.open, &stats.max_open);
    tokio::spawn(async move {
        let s = stats.clone();
        let service = service_fn(move |request| answer(name, request, s.clone()));
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(io, service)
            .await;
        stats.open.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn answer(
    name: &'static str,
    mut request: Request<Incoming>,
    stats: Arc<Stats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    up(&stats.in_flight, &stats.max_in_flight);
    let path = request.uri().path().to_owned();
    let mut status = 200;
    if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    }
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|v| v.parse::<u16>().ok())
    {
        status = code;
    }
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    if path == "/ws" {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Ok(Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()))
            .expect("response"));
    }
    Ok(Response::builder()
        .status(status)
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(format!(
            "{name} {:?}",
            request.version()
        ))))
        .expect("response"))
}

/// An empty request body.
pub fn empty() -> RequestBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A GET of `path` as the router would send it to `cluster`.
pub fn request_to(path: &str, http2: bool) -> Request<RequestBody> {
    let mut request = Request::builder()
        .uri(format!("http://svc.test{path}"))
        .header("host", "svc.test")
        .body(empty())
        .expect("request");
    if http2 {
        *request.version_mut() = http::Version::HTTP_2;
        request.headers_mut().remove("host");
    }
    request
}

/// The router's sequence for one attempt: pick, send, report, and read the
/// body. Returns the status and the answering server's name.
pub async fn attempt(
    manager: &ClusterManager,
    pool: &UpstreamPool,
    snapshot: &Snapshot,
    cluster: &Cluster,
    path: &str,
) -> Result<(u16, String), ProxyError> {
    let any: SocketAddr = ([127, 0, 0, 1], 1).into();
    let picked = manager
        .pick(snapshot, cluster, &PickContext::new(any, any))
        .await?;
    let sent = pool
        .send(&picked, cluster, request_to(path, cluster.http2))
        .await;
    match &sent {
        Ok(response) => picked.report(Outcome::Status(response.status().as_u16())),
        Err(ProxyError::UpstreamConnect { .. }) => picked.report(Outcome::ConnectFailure),
        Err(_) => picked.report(Outcome::Reset),
    }
    let response = sent?;
    let status = response.status().as_u16();
    let name = response
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let _ = response.into_body().collect().await;
    Ok((status, name))
}

/// A CA, and certificates it signed.
pub struct Pki {
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca = params.self_signed(&key).expect("CA");
        Pki {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `sans` (DNS names, or `spiffe://` URIs) with its
    /// key, both PEM.
    pub fn leaf(&self, sans: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        for san in sans {
            params
                .subject_alt_names
                .push(if san.starts_with("spiffe://") {
                    rcgen::SanType::URI(rcgen::string::Ia5String::try_from(*san).expect("uri"))
                } else {
                    rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from(*san).expect("dns"))
                });
        }
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}

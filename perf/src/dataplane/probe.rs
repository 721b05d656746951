//! Single requests for readiness and for checking a path before loading
//! it: one fresh connection each, to an address that may differ from the
//! request's authority (the client sidecar's HTTP proxy port, which routes
//! by Host / `:authority`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Each probe gives up after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// HTTP/1.1 or h2c with prior knowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1, origin-form with a Host header.
    Http1,
    /// h2c (prior knowledge).
    H2c,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
    /// The trailers, if any.
    pub trailers: Option<HeaderMap>,
}

/// One request to `http://AUTHORITY/PATH`, sent to `connect`.
#[derive(Debug, Clone)]
pub struct Probe<'a> {
    /// Where the TCP connection goes.
    pub connect: SocketAddr,
    /// Host header / `:authority`.
    pub authority: &'a str,
    /// Method.
    pub method: Method,
    /// Path.
    pub path: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// Request body.
    pub body: Bytes,
    /// Protocol.
    pub version: Version,
}

impl Probe<'_> {
    /// A GET of `path`.
    pub fn get<'a>(connect: SocketAddr, authority: &'a str, path: &'a str) -> Probe<'a> {
        Probe {
            connect,
            authority,
            method: Method::GET,
            path,
            headers: &[],
            body: Bytes::new(),
            version: Version::Http1,
        }
    }

    /// Send it; `None` on any failure (refused, reset, timeout), which a
    /// readiness poll treats as "not yet".
    pub async fn send(&self) -> Option<Reply> {
        tokio::time::timeout(PROBE_TIMEOUT, self.send_inner())
            .await
            .ok()?
            .ok()
    }

    async fn send_inner(&self) -> anyhow::Result<Reply> {
        let stream = TcpStream::connect(self.connect).await?;
        let io = TokioIo::new(stream);
        let mut req = Request::builder().method(self.method.clone());
        req = match self.version {
            Version::Http1 => req
                .uri(self.path)
                .header(http::header::HOST, self.authority),
            Version::H2c => req.uri(format!("http://{}{}", self.authority, self.path)),
        };
        for (k, v) in self.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(self.body.clone()))?;
        let resp = match self.version {
            Version::Http1 => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(conn);
                send.send_request(req).await?
            }
            Version::H2c => {
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(conn);
                send.send_request(req).await?
            }
        };
        let status = resp.status();
        let collected = resp.into_body().collect().await?;
        let trailers = collected.trailers().cloned();
        Ok(Reply {
            status,
            body: collected.to_bytes(),
            trailers,
        })
    }
}

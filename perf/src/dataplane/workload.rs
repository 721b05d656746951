//! What is measured: the workloads, the paths they take, and the check
//! that a path answers a workload's request correctly before it is loaded.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::Method;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::grpc;
use super::probe::{Probe, Version};
use super::topology::{self, Pair, ServicePort, ENVOY_PAIR, MESH_PAIR};
use super::upstream::GRPC_ECHO_PATH;

/// Bytes of the gRPC request message and of a TCP echo message.
pub const MESSAGE_SIZE: usize = 128;

/// A kind of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Workload {
    /// HTTP/1.1 GET of a 1 KiB body.
    Http1_1k,
    /// HTTP/1.1 GET of a 64 KiB body.
    Http1_64k,
    /// h2c GET of a 1 KiB body.
    Http2_1k,
    /// gRPC unary echo of a 128-byte message over h2c.
    GrpcUnary,
    /// 128-byte messages echoed over TCP.
    TcpEcho,
}

/// Every workload, in report order.
pub const ALL: [Workload; 5] = [
    Workload::Http1_1k,
    Workload::Http1_64k,
    Workload::Http2_1k,
    Workload::GrpcUnary,
    Workload::TcpEcho,
];

/// The smoke run's workloads.
pub const SMOKE: [Workload; 2] = [Workload::Http1_1k, Workload::TcpEcho];

impl Workload {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Http1_1k => "http1-1k",
            Workload::Http1_64k => "http1-64k",
            Workload::Http2_1k => "http2-1k",
            Workload::GrpcUnary => "grpc-unary",
            Workload::TcpEcho => "tcp-echo",
        }
    }

    /// The service (and upstream) port it uses.
    pub fn port(self) -> ServicePort {
        match self {
            Workload::Http1_1k | Workload::Http1_64k => topology::HTTP1,
            Workload::Http2_1k => topology::HTTP2,
            Workload::GrpcUnary => topology::GRPC,
            Workload::TcpEcho => topology::TCP,
        }
    }

    /// The request path (HTTP workloads).
    pub fn path(self) -> &'static str {
        match self {
            Workload::Http1_1k | Workload::Http2_1k => "/1k",
            Workload::Http1_64k => "/64k",
            Workload::GrpcUnary => GRPC_ECHO_PATH,
            Workload::TcpEcho => "",
        }
    }

    /// Whether it is h2c end to end (as far as the sidecars go).
    pub fn http2(self) -> bool {
        matches!(self, Workload::Http2_1k | Workload::GrpcUnary)
    }

    /// Extra request headers.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Workload::GrpcUnary => &[("content-type", "application/grpc"), ("te", "trailers")],
            _ => &[],
        }
    }

    /// The response body size a correct answer has.
    fn body_len(self) -> usize {
        match self {
            Workload::Http1_64k => 64 * 1024,
            Workload::GrpcUnary => grpc::PREFIX_LEN + MESSAGE_SIZE,
            _ => 1024,
        }
    }
}

/// The gRPC request body: one frame of [`MESSAGE_SIZE`] bytes.
pub fn grpc_request() -> Vec<u8> {
    grpc::frame(&[b'g'; MESSAGE_SIZE])
}

/// Which way the traffic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PathKind {
    /// Load generator to upstream.
    Direct,
    /// Through the mesh-proxy pair.
    MeshProxy,
    /// Through the Envoy pair.
    Envoy,
}

impl PathKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::MeshProxy => "mesh-proxy",
            PathKind::Envoy => "envoy",
        }
    }

    /// The sidecar pair, if any.
    pub fn pair(self) -> Option<Pair> {
        match self {
            PathKind::Direct => None,
            PathKind::MeshProxy => Some(MESH_PAIR),
            PathKind::Envoy => Some(ENVOY_PAIR),
        }
    }
}

/// Where a workload's requests go on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host header / `:authority` (HTTP).
    pub authority: String,
    /// The address connections go to.
    pub connect: SocketAddr,
    /// Whether only the server sidecar is on the path (TCP through a
    /// pair: NONE-mode sidecars have no outbound TCP listener).
    pub server_side_only: bool,
}

impl Target {
    /// Where `workload` goes on `path`.
    pub fn of(workload: Workload, path: PathKind) -> Self {
        let port = workload.port();
        let direct = topology::upstream(port);
        match (path.pair(), workload) {
            (None, _) => Target {
                authority: direct.to_string(),
                connect: direct,
                server_side_only: false,
            },
            (Some(pair), Workload::TcpEcho) => Target {
                authority: pair.inbound(port).to_string(),
                connect: pair.inbound(port),
                server_side_only: true,
            },
            (Some(pair), _) => Target {
                authority: pair.authority(port),
                connect: pair.proxy_listener(),
                server_side_only: false,
            },
        }
    }

    /// The URL of an HTTP workload's requests.
    pub fn url(&self, workload: Workload) -> String {
        format!("http://{}{}", self.authority, workload.path())
    }
}

/// One request of `workload` to `target`; `Ok` with a note (or none) when
/// the answer is right, `Err` saying what is wrong otherwise.
pub async fn check(workload: Workload, target: &Target) -> Result<Option<String>, String> {
    if workload == Workload::TcpEcho {
        return check_echo(target.connect).await.map(|()| None);
    }
    let (method, body) = match workload {
        Workload::GrpcUnary => (Method::POST, Bytes::from(grpc_request())),
        _ => (Method::GET, Bytes::new()),
    };
    let probe = Probe {
        connect: target.connect,
        authority: &target.authority,
        method,
        path: workload.path(),
        headers: workload.headers(),
        body: body.clone(),
        version: if workload.http2() {
            Version::H2c
        } else {
            Version::Http1
        },
    };
    let reply = probe.send().await.ok_or("no answer")?;
    if !reply.status.is_success() {
        return Err(format!("status {}", reply.status));
    }
    if reply.body.len() != workload.body_len() {
        return Err(format!(
            "{} body bytes, want {}",
            reply.body.len(),
            workload.body_len()
        ));
    }
    if workload != Workload::GrpcUnary {
        return Ok(None);
    }
    if reply.body != body {
        return Err("gRPC echo differs from the request".into());
    }
    let status = reply
        .trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap_or("?").to_string());
    match status.as_deref() {
        Some("0") => Ok(None),
        Some(other) => Err(format!("grpc-status {other}")),
        // oha checks only the HTTP status; say that the trailer was lost.
        None => Ok(Some("grpc-status trailer lost on the way".into())),
    }
}

async fn check_echo(addr: SocketAddr) -> Result<(), String> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let msg = [b'p'; MESSAGE_SIZE];
        s.write_all(&msg).await?;
        let mut back = [0u8; MESSAGE_SIZE];
        s.read_exact(&mut back).await?;
        Ok::<bool, std::io::Error>(back == msg)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), work).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err("echo differs".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timeout".into()),
    }
}

/// Write the gRPC request body file oha sends.
pub fn write_grpc_body(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, grpc_request())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_through_a_pair_reaches_only_the_server_sidecar() {
        let t = Target::of(Workload::TcpEcho, PathKind::MeshProxy);
        assert_eq!(t.connect, MESH_PAIR.inbound(topology::TCP));
        assert!(t.server_side_only);
        let t = Target::of(Workload::GrpcUnary, PathKind::Envoy);
        assert_eq!(t.connect, ENVOY_PAIR.proxy_listener());
        assert_eq!(
            t.url(Workload::GrpcUnary),
            "http://bench-envoy:9082/bench.Echo/Echo"
        );
        let t = Target::of(Workload::Http1_64k, PathKind::Direct);
        assert_eq!(t.url(Workload::Http1_64k), "http://127.1.60.2:9080/64k");
    }

    #[test]
    fn grpc_request_is_one_frame_of_the_message_size() {
        let body = grpc_request();
        assert_eq!(grpc::unframe(&body).unwrap().len(), MESSAGE_SIZE);
        assert_eq!(Workload::GrpcUnary.body_len(), body.len());
    }
}

//! The upstream every path ends at (`mesh-bench upstream`): fixed HTTP
//! bodies and a gRPC unary echo over HTTP/1.1 and h2c, and a TCP echo.
//!
//! ```text
//!  GET  /1k, /64k          200, fixed body of that size
//!  POST /bench.Echo/Echo   200 application/grpc, the request's frame back, trailer grpc-status: 0
//!  anything else           404
//!  TCP                     every byte read is written back
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::grpc;

/// Path of the gRPC echo method.
pub const GRPC_ECHO_PATH: &str = "/bench.Echo/Echo";

/// Largest request body the echo reads; the workloads send a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

type Body = BoxBody<Bytes, Infallible>;

/// Serve HTTP on each of `http` and TCP echo on each of `tcp` until the
/// process is stopped. Binding errors come back at once.
pub async fn serve(http: &[SocketAddr], tcp: &[SocketAddr]) -> anyhow::Result<()> {
    let bodies = Bodies::new();
    let mut tasks = tokio::task::JoinSet::new();
    for &addr in http {
        let listener = bind(addr).await?;
        let bodies = bodies.clone();
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_http(stream, bodies.clone()));
            }
        });
    }
    for &addr in tcp {
        let listener = bind(addr).await?;
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream));
            }
        });
    }
    eprintln!("upstream ready: http {http:?}, tcp {tcp:?}");
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("upstream: bind {addr}: {e}"))
}

/// The fixed response bodies, made once and shared (cloning `Bytes` is a
/// reference count, so responses cost no copy).
#[derive(Clone)]
struct Bodies {
    one_k: Bytes,
    sixty_four_k: Bytes,
}

impl Bodies {
    fn new() -> Self {
        Self {
            one_k: Bytes::from(vec![b'x'; 1024]),
            sixty_four_k: Bytes::from(vec![b'x'; 64 * 1024]),
        }
    }
}

async fn serve_http(stream: TcpStream, bodies: Bodies) {
    let service = service_fn(move |req| handle(req, bodies.clone()));
    let builder = auto::Builder::new(TokioExecutor::new());
    // A client closing mid-response is normal at the end of a load run.
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(req: Request<Incoming>, bodies: Bodies) -> Result<Response<Body>, Infallible> {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/1k") => fixed(bodies.one_k),
        (&Method::GET, "/64k") => fixed(bodies.sixty_four_k),
        (&Method::POST, GRPC_ECHO_PATH) => grpc_echo(req).await,
        _ => status(StatusCode::NOT_FOUND, "no such benchmark path\n"),
    };
    Ok(resp)
}

fn fixed(body: Bytes) -> Response<Body> {
    Response::new(Full::new(body).boxed())
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *resp.status_mut() = code;
    resp
}

/// A unary echo: the request frame back with `grpc-status: 0`, or a
/// non-200 status when the body is not one frame, so that a load run
/// counts a broken request as an error rather than a success.
async fn grpc_echo(req: Request<Incoming>) -> Response<Body> {
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
    };
    if let Err(e) = grpc::unframe(&body) {
        eprintln!("grpc echo: {e}");
        return status(StatusCode::BAD_REQUEST, "not one gRPC frame\n");
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = [Ok(Frame::data(body)), Ok(Frame::trailers(trailers))];
    let mut resp = Response::new(StreamBody::new(futures_iter(frames)).boxed());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    // Over HTTP/1.1 (a sidecar's inbound hop) hyper sends only the trailers
    // this header declares.
    headers.insert(
        http::header::TRAILER,
        HeaderValue::from_static("grpc-status"),
    );
    resp
}

/// A stream of ready frames.
fn futures_iter<const N: usize>(
    frames: [Result<Frame<Bytes>, Infallible>; N],
) -> tokio_stream::Iter<std::array::IntoIter<Result<Frame<Bytes>, Infallible>, N>> {
    tokio_stream::iter(frames)
}

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::probe::{Probe, Version};

    async fn start() -> SocketAddr {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        tokio::spawn(async move { serve(&[addr], &[]).await });
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_ok() {
                return addr;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("upstream on {addr} never listened");
    }

    fn echo_probe(addr: SocketAddr, version: Version, body: Vec<u8>) -> Probe<'static> {
        Probe {
            connect: addr,
            authority: "bench",
            method: Method::POST,
            path: GRPC_ECHO_PATH,
            headers: &[("content-type", "application/grpc"), ("te", "trailers")],
            body: Bytes::from(body),
            version,
        }
    }

    #[tokio::test]
    async fn grpc_echo_keeps_its_status_trailer_over_http1_and_h2c() {
        let addr = start().await;
        let frame = grpc::frame(b"hello");
        for version in [Version::Http1, Version::H2c] {
            let reply = echo_probe(addr, version, frame.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{version:?}");
            assert_eq!(reply.body, frame, "{version:?}");
            let trailers = reply.trailers.expect("trailers");
            assert_eq!(trailers["grpc-status"], "0", "{version:?}");
        }
        let bad = echo_probe(addr, Version::H2c, b"hi".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let body = Probe::get(addr, "bench", "/64k").send().await.unwrap().body;
        assert_eq!(body.len(), 64 * 1024);
    }
}

//! The small HTTP server all four apps run on: an accept loop, HTTP/1.1 and
//! h2c through hyper-util's auto builder, the request body read (bounded)
//! before the handler sees it, and a graceful stop on SIGINT/SIGTERM.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::error::Error;

/// The default listen address of every app, the original's port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9080";

/// Request bodies larger than this are refused with 413: the apps only ever
/// take a login form or a small ratings object.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long open connections may take to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A request as handlers see it: the body already read.
pub type AppRequest = Request<Bytes>;

/// The response type of the handlers.
pub type HttpResponse = Response<Full<Bytes>>;

/// A request handler shared by every connection.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: AppRequest) -> impl Future<Output = HttpResponse> + Send;
}

/// Sets up `tracing` to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A response with a status, a content type and a body.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response. Serializing our own model types cannot fail; if it ever
/// did, the client gets a 500 rather than the process a panic.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => respond(status, "application/json", bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a response");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                r#"{"error":"internal error"}"#,
            )
        }
    }
}

/// `404 Not Found` in plain text.
pub fn not_found() -> HttpResponse {
    respond(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found\n",
    )
}

/// `405 Method Not Allowed` in plain text.
pub fn method_not_allowed() -> HttpResponse {
    respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=utf-8",
        "method not allowed\n",
    )
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        // Without signal handlers we can still stop on Ctrl-C.
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Binds `addr` and serves `handler` on it until `shutdown` resolves.
pub async fn serve<H: Handler>(
    addr: SocketAddr,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    serve_on(listener, handler, shutdown).await;
    Ok(())
}

/// Serves `handler` on an already bound `listener` until `shutdown`
/// resolves, then lets open connections finish (for a few seconds at most).
pub async fn serve_on<H: Handler>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(dispatch(&*handler, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                let span = tracing::debug_span!("connection", %peer);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }.instrument(span));
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down");
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout, closing them");
    }
}

/// Reads the body (bounded), hands the request to `handler` and logs it.
async fn dispatch<H: Handler>(handler: &H, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::info!(%method, %path, error = %e, "request body refused");
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "request body too large or unreadable\n",
            );
        }
    };
    let resp = handler.handle(Request::from_parts(parts, body)).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// The path segment after `prefix`, when the path is exactly `prefix` plus
/// one non-empty segment (`/details/0` with prefix `/details/` gives `0`).
pub fn one_segment_after<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_segment_after_takes_exactly_one_segment() {
        assert_eq!(one_segment_after("/details/0", "/details/"), Some("0"));
        assert_eq!(one_segment_after("/details/", "/details/"), None);
        assert_eq!(one_segment_after("/details/0/x", "/details/"), None);
        assert_eq!(one_segment_after("/other/0", "/details/"), None);
    }

    #[test]
    fn json_sets_the_content_type() {
        let resp = json(StatusCode::OK, &serde_json::json!({"a": 1}));
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    }
}

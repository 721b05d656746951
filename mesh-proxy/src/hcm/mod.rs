//! The HTTP connection manager stage (listener ─► **HCM** ─► router ─►
//! cluster): serve HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the same
//! connection, hand each request to [`proxy::handle`], and drain gracefully
//! when the listener goes away.

pub mod authority;
pub mod headers;
pub mod proxy;
pub mod router;

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub use proxy::HttpConnection;

/// How long a draining connection may take to finish its in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Serve one downstream connection until the client closes it or, after
/// `drain` fires, until its in-flight requests are done (at most
/// [`DRAIN_TIMEOUT`]).
pub async fn serve(stream: TcpStream, conn: HttpConnection, drain: CancellationToken) {
    let conn = Arc::new(conn);
    let service = service_fn(move |request| proxy::handle(conn.clone(), request));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = drain.cancelled() => {
            // HTTP/1: close after the current response; HTTP/2: GOAWAY.
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_TIMEOUT, connection).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!("drain timeout; closing connection");
                    return;
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with error");
    }
}

//! The HTTP connection manager, one of the two network filters a filter
//! chain ends in (listener ─► **HCM** | tcp_proxy ─► cluster ─► upstream
//! pool): serve HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the same
//! connection, hand each request to [`proxy::handle`], and drain gracefully
//! when the listener goes away.
//!
//! ```text
//! serve (per connection) ─► proxy::handle (per request)
//!                             ├─ headers    x-request-id in, hop-by-hop headers out
//!                             ├─ authority  absolute URI, else Host
//!                             ├─ router     virtual host by authority, then route
//!                             └─ direct response | forward ─► cluster ─► upstream pool
//! ```
//!
//! The state it shares with the listener stage and `tcp_proxy` (snapshot
//! store, LB state, pools, the connection's addresses) is in
//! [`crate::data_plane`].

pub mod authority;
pub mod headers;
pub mod proxy;
pub mod router;

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use proxy::HttpConnection;

/// How long a draining connection may take to finish its in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Serve one downstream connection (plain TCP, or TLS the listener
/// terminated) until the client closes it or, after `drain` fires, until its
/// in-flight requests are done (at most [`DRAIN_TIMEOUT`]).
pub async fn serve<I>(stream: I, conn: HttpConnection, drain: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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

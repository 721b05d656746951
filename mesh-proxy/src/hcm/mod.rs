//! The HTTP connection manager, one of the two network filters a filter
//! chain ends in (listener ─► **HCM** | tcp_proxy ─► cluster ─► upstream
//! pool): serve HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the same
//! connection with the HCM's protocol options and timeouts, hand each
//! request to [`proxy::handle`], and drain gracefully when the listener
//! goes away.
//!
//! ```text
//! serve (per connection: codec, header limits, idle and max duration)
//!   └─ proxy::handle (per request)
//!        ├─ forwarded   XFF / XFP / request id / internal or external
//!        ├─ path        normalize_path, merge_slashes, escaped slashes
//!        ├─ router      virtual host by authority, then route (path, headers, query)
//!        ├─ filters     in order: fault (delay, abort) ─► cors (preflight) ─► router
//!        ├─ action      direct response | redirect | require_tls ─► forward:
//!        │                mutate (header levels), hash, mirror, upgrade,
//!        │                upstream (attempts: retry, per-try timeout, backoff)
//!        │                ─► cluster ─► upstream pool
//!        ├─ reply       local replies with x-mesh-reason, gRPC-shaped for gRPC
//!        └─ body        replayable request body; response tail (timeouts,
//!                       bytes) ─► access_log when done
//! ```
//!
//! The state it shares with the listener stage and `tcp_proxy` (snapshot
//! store, LB state, pools, log writers, the connection's addresses) is in
//! [`crate::data_plane`].

pub mod authority;
pub mod body;
pub mod cors;
pub mod exchange;
pub mod fault;
pub mod forward;
pub mod forwarded;
pub mod hash;
pub mod headers;
pub mod mirror;
pub mod mutate;
pub mod path;
pub mod proxy;
pub mod redirect;
pub mod reply;
pub mod retry;
pub mod router;
pub mod upgrade;
pub mod upstream;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use proxy::HttpConnection;
pub use reply::ResponseBody;

/// How long a draining connection may take to finish its in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Counts a connection's requests in flight, so that the idle timeout
/// only counts time with none.
struct InFlight(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        self.1.notify_one();
    }
}

/// Serve one downstream connection (plain TCP, or TLS the listener
/// terminated) until the client closes it, it stays idle past the HCM's
/// `idle_timeout`, it reaches `max_connection_duration`, or, after `drain`
/// fires, until its in-flight requests are done (at most
/// [`DRAIN_TIMEOUT`]).
pub async fn serve<I>(stream: I, conn: HttpConnection, drain: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = conn.hcm.options.clone();
    let conn = Arc::new(conn);
    let active = Arc::new(AtomicUsize::new(0));
    let activity = Arc::new(tokio::sync::Notify::new());
    let service = {
        let (active, activity) = (active.clone(), activity.clone());
        let drain = drain.clone();
        service_fn(move |request| {
            active.fetch_add(1, Ordering::Relaxed);
            activity.notify_one();
            let guard = InFlight(active.clone(), activity.clone());
            let conn = conn.clone();
            let drain = drain.clone();
            async move {
                let response = proxy::handle(conn, drain, request).await;
                drop(guard);
                response
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if options.http1_only {
        builder = builder.http1_only();
    } else if options.http2_only {
        builder = builder.http2_only();
    }
    {
        let mut h1 = builder.http1();
        h1.timer(TokioTimer::new())
            .max_buf_size((options.max_request_headers_kb as usize * 1024).max(8192))
            .max_headers(options.max_headers_count as usize)
            .header_read_timeout(options.request_headers_timeout);
    }
    {
        let mut h2 = builder.http2();
        h2.timer(TokioTimer::new())
            .max_header_list_size(options.max_request_headers_kb * 1024)
            .max_concurrent_streams(options.http2_max_concurrent_streams)
            .initial_stream_window_size(options.http2_initial_stream_window_size)
            .initial_connection_window_size(options.http2_initial_connection_window_size);
        if options.http2_allow_connect {
            h2.enable_connect_protocol();
        }
        if let Some((interval, timeout)) = options.http2_keepalive {
            h2.keep_alive_interval(interval).keep_alive_timeout(timeout);
        }
    }
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle = async {
        let Some(limit) = options.idle_timeout else {
            return std::future::pending::<()>().await;
        };
        loop {
            if active.load(Ordering::Relaxed) == 0 {
                if tokio::time::timeout(limit, activity.notified())
                    .await
                    .is_err()
                    && active.load(Ordering::Relaxed) == 0
                {
                    return;
                }
            } else {
                activity.notified().await;
            }
        }
    };
    let max_duration = async {
        match options.max_connection_duration {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending::<()>().await,
        }
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = idle => {
            tracing::debug!("idle timeout; closing connection");
            connection.as_mut().graceful_shutdown();
            finish_within(connection.as_mut()).await
        }
        () = max_duration => {
            tracing::debug!("max connection duration; draining");
            connection.as_mut().graceful_shutdown();
            finish_within(connection.as_mut()).await
        }
        () = drain.cancelled() => {
            // HTTP/1: close after the current response; HTTP/2: GOAWAY.
            connection.as_mut().graceful_shutdown();
            finish_within(connection.as_mut()).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with error");
    }
}

async fn finish_within<F>(
    connection: std::pin::Pin<&mut F>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    F: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    match tokio::time::timeout(DRAIN_TIMEOUT, connection).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!("drain timeout; closing connection");
            Ok(())
        }
    }
}

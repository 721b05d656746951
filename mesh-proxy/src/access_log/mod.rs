//! Access logs, beside the data path (HCM | tcp_proxy ─► **access_log**):
//! what happened to each request or connection ([`StreamInfo`]), rendered
//! with the filter's `access_log[]` formats and handed to one writer task
//! per destination, never blocking the request.
//!
//! ```text
//!  HCM (per request, when its response is done) ─┐
//!  tcp_proxy (per connection, when it closes)   ─┴► log(): filter ─► format ─► Sinks
//!                                                     bounded queue per file/stdout/stderr
//!                                                     ─► one writer task each (full: dropped, counted)
//! ```

pub mod flags;
pub mod format;
mod writer;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;
use http::HeaderMap;

use crate::model::{AccessLog, Comparison, LogFilter};

pub use flags::ResponseFlags;
pub use format::{render_line, LogContext};
pub use writer::Sinks;

/// What the access log knows of one request or connection.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Wall clock at the start, for `START_TIME`.
    pub start: SystemTime,
    /// Monotonic clock at the start, for durations.
    pub started: Instant,
    /// `HTTP/1.1`, `HTTP/2`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// The status sent downstream.
    pub response_code: Option<u16>,
    /// Envoy's response flags.
    pub flags: ResponseFlags,
    /// `RESPONSE_CODE_DETAILS`: `via_upstream`, `route_not_found`, ...
    pub details: Option<String>,
    /// `CONNECTION_TERMINATION_DETAILS`: the mesh's reason when it refused.
    pub termination_details: Option<String>,
    /// `UPSTREAM_TRANSPORT_FAILURE_REASON`.
    pub upstream_failure: Option<String>,
    /// Body bytes read from the client.
    pub bytes_received: u64,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
    /// When the request had been read whole.
    pub request_done: Option<Duration>,
    /// When the first response byte was ready (headers).
    pub first_byte: Option<Duration>,
    /// When it all ended.
    pub ended: Option<Duration>,
    /// The endpoint of the last attempt.
    pub upstream_host: Option<SocketAddr>,
    /// Its cluster.
    pub upstream_cluster: Option<String>,
    /// The local address of the upstream connection, when known.
    pub upstream_local: Option<SocketAddr>,
    /// Attempts made upstream (retries included).
    pub attempts: u32,
    /// The downstream connection's local address.
    pub downstream_local: SocketAddr,
    /// The downstream connection's peer.
    pub downstream_peer: SocketAddr,
    /// The client as the HCM trusts it (`x-forwarded-for` rules).
    pub downstream_remote: SocketAddr,
    /// SNI of a TLS downstream connection.
    pub server_name: Option<String>,
    /// The route taken.
    pub route_name: Option<String>,
}

impl StreamInfo {
    /// A stream starting now on a connection between `local` and `peer`.
    pub fn new(local: SocketAddr, peer: SocketAddr) -> Self {
        Self {
            start: SystemTime::now(),
            started: Instant::now(),
            protocol: None,
            response_code: None,
            flags: ResponseFlags::NONE,
            details: None,
            termination_details: None,
            upstream_failure: None,
            bytes_received: 0,
            bytes_sent: 0,
            request_done: None,
            first_byte: None,
            ended: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local: None,
            attempts: 0,
            downstream_local: local,
            downstream_peer: peer,
            downstream_remote: peer,
            server_name: None,
            route_name: None,
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Write one line per access log of `logs` whose filter passes.
pub fn log(
    sinks: &Sinks,
    logs: &[AccessLog],
    info: &StreamInfo,
    request: Option<&Parts>,
    response: Option<&HeaderMap>,
    trailers: Option<&HeaderMap>,
) {
    if logs.is_empty() {
        return;
    }
    let ctx = LogContext {
        info,
        request,
        response,
        trailers,
    };
    for entry in logs {
        if entry
            .filter
            .as_ref()
            .is_some_and(|filter| !passes(filter, info))
        {
            continue;
        }
        sinks.write(&entry.sink, render_line(&entry.format, &ctx));
    }
}

/// Whether a request passes an access log filter.
pub fn passes(filter: &LogFilter, info: &StreamInfo) -> bool {
    let compare = |op: Comparison, have: u64, want: u32| {
        let want = u64::from(want);
        match op {
            Comparison::Eq => have == want,
            Comparison::Ge => have >= want,
            Comparison::Le => have <= want,
            Comparison::Ne => have != want,
        }
    };
    match filter {
        LogFilter::StatusCode { op, value } => {
            compare(*op, u64::from(info.response_code.unwrap_or(0)), *value)
        }
        LogFilter::Duration { op, value } => {
            let ms = info.ended.unwrap_or_else(|| info.elapsed()).as_millis();
            compare(*op, u64::try_from(ms).unwrap_or(u64::MAX), *value)
        }
        LogFilter::ResponseFlags(wanted) if wanted.is_empty() => !info.flags.is_empty(),
        LogFilter::ResponseFlags(wanted) => wanted.iter().any(|f| info.flags.contains_code(f)),
        LogFilter::NotHealthCheck => true,
        LogFilter::And(all) => all.iter().all(|f| passes(f, info)),
        LogFilter::Or(any) => any.iter().any(|f| passes(f, info)),
    }
}

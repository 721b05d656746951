//! HTTP connection manager part of the model: where an HCM's routes come
//! from, its HTTP filters, its connection and header options and its
//! access logs, as the HCM stage reads them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::access_log::AccessLog;
use super::policy::FaultConfig;
use super::route::RouteConfig;

/// HTTP connection manager settings.
#[derive(Debug, Clone, Serialize)]
pub struct HttpConnectionManager {
    /// Stats prefix.
    pub stat_prefix: String,
    /// Where the routes come from.
    pub routes: RouteSource,
    /// HTTP filters in order; the last one is the router.
    pub http_filters: Vec<HttpFilter>,
    /// Connection and header options.
    pub options: Arc<HcmOptions>,
    /// Access logs, each written for every request.
    pub access_log: Vec<AccessLog>,
}

impl HttpConnectionManager {
    /// An HCM with only the router filter and Envoy's default options.
    pub fn new(stat_prefix: impl Into<String>, routes: RouteSource) -> Self {
        Self {
            stat_prefix: stat_prefix.into(),
            routes,
            http_filters: vec![HttpFilter::Router],
            options: Arc::new(HcmOptions::default()),
            access_log: Vec::new(),
        }
    }
}

/// Route table of an HTTP connection manager.
#[derive(Debug, Clone, Serialize)]
pub enum RouteSource {
    /// Looked up by name in [`super::Snapshot::route_configs`] per request.
    Rds(String),
    /// Carried in the listener itself.
    Inline(Arc<RouteConfig>),
}

/// An HTTP filter. Only filters the proxy implements exist here; conversion
/// rejects unknown non-optional filters with a NACK.
#[derive(Debug, Clone, Serialize)]
pub enum HttpFilter {
    /// `envoy.filters.http.fault`, with its filter-level config (routes
    /// and virtual hosts may replace it).
    Fault(Arc<FaultConfig>),
    /// `envoy.filters.http.cors`; policies come from routes and virtual
    /// hosts.
    Cors,
    /// `envoy.filters.http.router`: forward to the route's cluster.
    Router,
}

/// The HCM's options that change what it does per connection and request,
/// with Envoy's defaults.
#[derive(Debug, Clone, Serialize)]
pub struct HcmOptions {
    /// Trust the connection's peer as the client (`use_remote_address`).
    pub use_remote_address: bool,
    /// Hops of `x-forwarded-for` trusted (`xff_num_trusted_hops`).
    pub xff_num_trusted_hops: u32,
    /// Do not append the peer to `x-forwarded-for`.
    pub skip_xff_append: bool,
    /// Add `x-request-id` when absent (Envoy default true).
    pub generate_request_id: bool,
    /// Keep an external request's `x-request-id`.
    pub preserve_external_request_id: bool,
    /// Echo `x-request-id` on every response.
    pub always_set_request_id_in_response: bool,
    /// Reset streams idle this long (Envoy default 5 min; `None`: never).
    pub stream_idle_timeout: Option<Duration>,
    /// Limit on receiving the whole request (`request_timeout`).
    pub request_timeout: Option<Duration>,
    /// Close connections with no stream for this long (Envoy default 1 h).
    pub idle_timeout: Option<Duration>,
    /// Close connections after this long in any case.
    pub max_connection_duration: Option<Duration>,
    /// Longest a stream may last (`common_http_protocol_options`).
    pub max_stream_duration: Option<Duration>,
    /// Largest request head, KiB (Envoy default 60).
    pub max_request_headers_kb: u32,
    /// Most request header fields (Envoy default 100).
    pub max_headers_count: u32,
    /// RFC 3986 path normalisation (`normalize_path`).
    pub normalize_path: bool,
    /// Merge repeated slashes in the path.
    pub merge_slashes: bool,
    /// What to do with `%2F`, `%5C` in paths.
    pub escaped_slashes: EscapedSlashes,
    /// The `server` header value (Envoy default `envoy`).
    pub server_name: String,
    /// How the `server` header is set.
    pub server_header: ServerHeader,
    /// Upgrade types the HCM allows (lower case), e.g. `websocket`.
    pub upgrades: Vec<String>,
    /// Upgrade types listed as disabled, which routes may enable.
    pub upgrades_disabled: Vec<String>,
    /// `codec_type: HTTP1`.
    pub http1_only: bool,
    /// `codec_type: HTTP2`.
    pub http2_only: bool,
    /// Serve HTTP/1.0 requests (`accept_http_10`); else they get 426.
    pub accept_http_10: bool,
    /// Limit on receiving a request head (`request_headers_timeout`).
    pub request_headers_timeout: Option<Duration>,
    /// HTTP/2 PING interval and timeout (`connection_keepalive`).
    pub http2_keepalive: Option<(Option<Duration>, Duration)>,
    /// HTTP/2 extended CONNECT (RFC 8441) from clients.
    pub http2_allow_connect: bool,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` (default 100, Envoy's
    /// recommendation for untrusted clients; Envoy's own default is 2^31-1).
    /// `None`: hyper's limit.
    pub http2_max_concurrent_streams: Option<u32>,
    /// HTTP/2 initial stream window.
    pub http2_initial_stream_window_size: Option<u32>,
    /// HTTP/2 initial connection window.
    pub http2_initial_connection_window_size: Option<u32>,
    /// Requests whose peer is one of these are internal (not external):
    /// `None` is Envoy's historic default (loopback and private ranges).
    pub internal_cidrs: Option<Vec<(std::net::IpAddr, u8)>>,
}

/// Concurrent HTTP/2 streams per downstream connection when the HCM sets
/// none.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

impl Default for HcmOptions {
    fn default() -> Self {
        Self {
            use_remote_address: false,
            xff_num_trusted_hops: 0,
            skip_xff_append: false,
            generate_request_id: true,
            preserve_external_request_id: false,
            always_set_request_id_in_response: false,
            stream_idle_timeout: Some(Duration::from_secs(300)),
            request_timeout: None,
            idle_timeout: Some(Duration::from_secs(3600)),
            max_connection_duration: None,
            max_stream_duration: None,
            max_request_headers_kb: 60,
            max_headers_count: 100,
            normalize_path: false,
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::KeepUnchanged,
            server_name: "envoy".into(),
            server_header: ServerHeader::Overwrite,
            upgrades: Vec::new(),
            upgrades_disabled: Vec::new(),
            http1_only: false,
            http2_only: false,
            accept_http_10: false,
            request_headers_timeout: None,
            http2_keepalive: None,
            http2_allow_connect: false,
            http2_max_concurrent_streams: Some(DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
            http2_initial_stream_window_size: None,
            http2_initial_connection_window_size: None,
            internal_cidrs: None,
        }
    }
}

/// `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EscapedSlashes {
    /// Leave the path as it is (Envoy's default).
    KeepUnchanged,
    /// Answer 400.
    Reject,
    /// Unescape, and redirect the client to the unescaped path.
    UnescapeAndRedirect,
    /// Unescape and forward.
    UnescapeAndForward,
}

/// `server_header_transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServerHeader {
    /// Always `server_name`.
    Overwrite,
    /// `server_name` when the upstream sent none.
    AppendIfAbsent,
    /// As the upstream sent it (or none).
    PassThrough,
}

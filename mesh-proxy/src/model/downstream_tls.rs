//! Downstream TLS part of the model: what a filter chain's `tls` transport
//! socket terminates (Envoy's `DownstreamTlsContext`), as the listener stage
//! reads it. The certificates were read and the rustls server config built
//! when the resource converted, so a bad file NACKs instead of failing
//! handshakes later.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// TLS a filter chain terminates.
#[derive(Debug, Serialize)]
pub struct ServerTls {
    /// Where each certificate chain came from (a file name, or `<inline>`),
    /// for the config dump; the key material itself is never shown.
    pub certificates: Vec<String>,
    /// Where the CA that client certificates are verified against came
    /// from, when there is one.
    pub trusted_ca: Option<String>,
    /// ALPN protocols offered, in order of preference (`h2`, `http/1.1`).
    pub alpn_protocols: Vec<String>,
    /// Refuse clients without a (valid) certificate (`MUTUAL`).
    pub require_client_certificate: bool,
    /// Refuse clients that send no SNI (`require_sni`).
    pub require_sni: bool,
    /// Give up on a handshake after this long
    /// (`transport_socket_connect_timeout`).
    pub handshake_timeout: Option<Duration>,
    /// The server side of the handshake, built once.
    #[serde(skip)]
    pub config: Arc<rustls::ServerConfig>,
}

//! Listener part of the model: listeners, their filter chains and the
//! terminal network filter of each (HTTP connection manager or tcp_proxy),
//! as the listener stage reads them.

use std::net::SocketAddr;

use serde::Serialize;

use super::hcm::HttpConnectionManager;
use super::route::ClusterTarget;

/// A listener: where to accept connections and what to do with them.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// Resource name, e.g. `127.0.10.1_15080`.
    pub name: String,
    /// Address to bind (or, with `bind_to_port == false`, to dispatch for).
    pub address: SocketAddr,
    /// False for listeners reached only through a capture listener.
    pub bind_to_port: bool,
    /// Hand accepted connections to the listener owning the original destination.
    pub use_original_dst: bool,
    /// The listener filters pilot asked for, in order. The proxy does their
    /// work itself (docs/capture.md); they are kept to show in the config dump.
    pub listener_filters: Vec<ListenerFilter>,
    /// Envoy's `traffic_direction`, when pilot sets it. A capture listener
    /// only hands connections to listeners of its own direction.
    pub traffic_direction: Option<TrafficDirection>,
    /// Filter chains, tried in order by their match.
    pub filter_chains: Vec<FilterChain>,
    /// Used when no chain matches.
    pub default_filter_chain: Option<FilterChain>,
}

/// A listener filter: a step before filter chain selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ListenerFilter {
    /// `envoy.filters.listener.original_dst`: read SO_ORIGINAL_DST.
    OriginalDst,
    /// `envoy.filters.listener.http_inspector`: detect HTTP/1.x and h2c.
    HttpInspector,
    /// `envoy.filters.listener.tls_inspector`: detect TLS, its SNI and ALPN.
    TlsInspector,
}

/// Which way a listener's traffic flows, relative to the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrafficDirection {
    /// Into the workload (`virtualInbound`, `inbound|...`).
    Inbound,
    /// Out of the workload (`virtualOutbound`, service listeners).
    Outbound,
}

/// A filter chain and the connections it is for.
#[derive(Debug, Clone, Serialize)]
pub struct FilterChain {
    /// Chain name (may be empty).
    pub name: String,
    /// Which connections take this chain.
    pub matcher: FilterChainMatch,
    /// The terminal network filter.
    pub filter: NetworkFilter,
}

/// Connection properties a filter chain is selected by. Empty fields match anything.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterChainMatch {
    /// Original destination port.
    pub destination_port: Option<u16>,
    /// TLS SNI names (`*.example.com` allowed).
    pub server_names: Vec<String>,
    /// `raw_buffer` or `tls`.
    pub transport_protocol: Option<String>,
    /// ALPN / detected protocols, e.g. `http/1.1`, `h2c`.
    pub application_protocols: Vec<String>,
}

/// The terminal network filter of a chain.
#[derive(Debug, Clone, Serialize)]
pub enum NetworkFilter {
    /// `envoy.filters.network.http_connection_manager`.
    Http(HttpConnectionManager),
    /// `envoy.filters.network.tcp_proxy`.
    Tcp(TcpProxy),
}

/// `tcp_proxy`: relay bytes to a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct TcpProxy {
    /// Stats prefix.
    pub stat_prefix: String,
    /// Destination cluster(s).
    pub destination: ClusterTarget,
}

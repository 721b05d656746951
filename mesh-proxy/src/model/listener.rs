//! Listener part of the model: listeners, their filter chains and the
//! terminal network filter of each (HTTP connection manager or tcp_proxy),
//! as the listener stage reads them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::access_log::AccessLog;
use super::downstream_tls::ServerTls;
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
    /// `transport_socket` `envoy.transport_sockets.tls`: TLS this chain
    /// terminates before its filter sees the bytes. `None`: plaintext (or
    /// TLS passed through untouched).
    pub tls: Option<Arc<ServerTls>>,
    /// The terminal network filter.
    pub filter: NetworkFilter,
}

/// Connection properties a filter chain is selected by, in Envoy's order of
/// selection (`listener::select`). Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilterChainMatch {
    /// Original destination port.
    pub destination_port: Option<u16>,
    /// Original destination IP ranges (`prefix_ranges`); the longest
    /// matching prefix wins.
    pub prefix_ranges: Vec<CidrRange>,
    /// TLS SNI names (`*.example.com` allowed).
    pub server_names: Vec<String>,
    /// `raw_buffer` or `tls`.
    pub transport_protocol: Option<String>,
    /// ALPN / detected protocols, e.g. `http/1.1`, `h2c`.
    pub application_protocols: Vec<String>,
    /// Ranges of the directly connected peer's IP (without a PROXY
    /// protocol filter, the same as the source IP).
    pub direct_source_prefix_ranges: Vec<CidrRange>,
    /// Whether the peer is this host (`SAME_IP_OR_LOOPBACK`) or not.
    pub source_type: SourceType,
    /// Ranges of the source IP.
    pub source_prefix_ranges: Vec<CidrRange>,
    /// Source ports.
    pub source_ports: Vec<u16>,
}

/// Envoy's `ConnectionSourceType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub enum SourceType {
    /// Any source.
    #[default]
    Any,
    /// The peer's IP is a loopback address or the connection's local IP.
    SameIpOrLoopback,
    /// Any other peer.
    External,
}

/// An IP prefix, `address/prefix_len`, with the bits past the prefix
/// cleared (Envoy ignores them too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CidrRange {
    /// The network address (host bits zero).
    pub address: IpAddr,
    /// Prefix length: 0..=32 (IPv4) or 0..=128 (IPv6).
    pub prefix_len: u8,
}

impl CidrRange {
    /// The range of `address/prefix_len`; `None` when the length is too
    /// long for the address family.
    pub fn new(address: IpAddr, prefix_len: u8) -> Option<CidrRange> {
        let address = match address.to_canonical() {
            IpAddr::V4(v4) if prefix_len <= 32 => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) if prefix_len <= 128 => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix_len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => return None,
        };
        Some(CidrRange {
            address,
            prefix_len,
        })
    }

    /// Whether `ip` is inside the range (v4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        CidrRange::new(ip, self.prefix_len).is_some_and(|masked| masked.address == self.address)
    }
}

impl std::fmt::Display for CidrRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl Serialize for CidrRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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
    /// Close the connection after this long without bytes either way
    /// (`idle_timeout`; Envoy's default is 1 hour, `0s` disables it).
    pub idle_timeout: Option<Duration>,
    /// Close the connection this long after the upstream connected
    /// (`max_downstream_connection_duration`), busy or not.
    pub max_downstream_connection_duration: Option<Duration>,
    /// Connect attempts before giving up (`max_connect_attempts`, >= 1,
    /// default 1); each retry avoids the endpoints already tried.
    pub max_connect_attempts: u32,
    /// Consistent-hash key of the connection for RING_HASH / MAGLEV
    /// clusters (`hash_policy`).
    pub hash_policy: Option<TcpHashPolicy>,
    /// Access logs, each written once per connection.
    pub access_log: Vec<AccessLog>,
}

/// Envoy's default `tcp_proxy` `idle_timeout`.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

impl TcpProxy {
    /// A proxy to `destination` with Envoy's defaults for everything else.
    pub fn new(stat_prefix: impl Into<String>, destination: ClusterTarget) -> TcpProxy {
        TcpProxy {
            stat_prefix: stat_prefix.into(),
            destination,
            idle_timeout: Some(DEFAULT_TCP_IDLE_TIMEOUT),
            max_downstream_connection_duration: None,
            max_connect_attempts: 1,
            hash_policy: None,
            access_log: Vec::new(),
        }
    }
}

/// What a `tcp_proxy` hashes a connection on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TcpHashPolicy {
    /// The downstream source IP (`hash_policy[].source_ip`).
    SourceIp,
}

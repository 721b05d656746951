//! Where a captured connection was going (accept ─► **original destination**
//! ─► dispatch ─► filter chain): iptables REDIRECT rewrites the destination
//! to our capture port and keeps the real one in conntrack, where
//! `SO_ORIGINAL_DST` (IPv4) or `IP6T_SO_ORIGINAL_DST` (IPv6) reads it back.
//!
//! The workspace forbids `unsafe`, so the `getsockopt` goes through the `nix`
//! crate's safe `sockopt::OriginalDst` / `Ip6tOriginalDst` on the tokio
//! stream's file descriptor. Tests inject the destination instead
//! ([`OriginalDst::Fixed`]), so the whole capture path runs without root.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpStream;

/// How a listener with `use_original_dst` learns a connection's original
/// destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OriginalDst {
    /// Ask the kernel (`SO_ORIGINAL_DST`); connections that were not
    /// redirected keep their local address.
    #[default]
    SocketOption,
    /// Every connection was meant for this address (tests without root).
    Fixed(SocketAddr),
}

impl OriginalDst {
    /// The original destination of `stream`, accepted on `local`. Falls back
    /// to `local` when there is none (no NAT entry: the client dialled the
    /// listener itself), so such a connection is served as it always was.
    pub fn lookup(&self, stream: &TcpStream, local: SocketAddr) -> SocketAddr {
        match self {
            Self::Fixed(address) => *address,
            Self::SocketOption => match read(stream, local) {
                // A v4-mapped v6 address is the v4 destination listeners are keyed by.
                Ok(address) => SocketAddr::new(address.ip().to_canonical(), address.port()),
                Err(error) => {
                    tracing::debug!(%error, "no original destination; using the local address");
                    local
                }
            },
        }
    }
}

/// Read the original destination from conntrack.
pub fn read(stream: &TcpStream, local: SocketAddr) -> io::Result<SocketAddr> {
    let v4 = match local {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().is_some(),
    };
    if v4 {
        let raw = getsockopt(stream, sockopt::OriginalDst).map_err(io::Error::from)?;
        // Both fields are in network byte order.
        let ip = Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr));
        Ok(SocketAddr::V4(SocketAddrV4::new(
            ip,
            u16::from_be(raw.sin_port),
        )))
    } else {
        let raw = getsockopt(stream, sockopt::Ip6tOriginalDst).map_err(io::Error::from)?;
        let ip = Ipv6Addr::from(raw.sin6_addr.s6_addr);
        Ok(SocketAddr::V6(SocketAddrV6::new(
            ip,
            u16::from_be(raw.sin6_port),
            u32::from_be(raw.sin6_flowinfo),
            raw.sin6_scope_id,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_that_was_not_redirected_keeps_its_local_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let local = stream.local_addr().unwrap();
        assert_eq!(OriginalDst::SocketOption.lookup(&stream, local), local);
        let fixed: SocketAddr = "198.19.0.3:9080".parse().unwrap();
        assert_eq!(OriginalDst::Fixed(fixed).lookup(&stream, local), fixed);
    }
}

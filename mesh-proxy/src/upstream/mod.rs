//! The upstream stage of the data path (cluster LB ─► **upstream pool** ─►
//! endpoint): dial the endpoint the load balancer chose, with the cluster's
//! connect timeout, and keep HTTP connections pooled per endpoint.

pub mod pool;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

pub use pool::UpstreamPool;

/// Open a TCP connection to `addr`, giving up after `timeout`. With `bind`,
/// the connection comes from that source address (any port): the cluster's
/// `upstream_bind_config`, e.g. 127.0.0.6 for inbound, which the capture
/// rules let through instead of redirecting it back to us.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    bind: Option<IpAddr>,
) -> io::Result<TcpStream> {
    let dial = async {
        let Some(source) = bind else {
            return TcpStream::connect(addr).await;
        };
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(addr).await
    };
    let stream = tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
    // Proxied requests are small and latency-bound; don't wait for Nagle.
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connect_binds_the_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let timeout = Duration::from_secs(5);
        let bound = "127.0.0.6".parse().unwrap();
        let _client = connect(address, timeout, Some(bound)).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), bound);
        let _plain = connect(address, timeout, None).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.1");
    }
}

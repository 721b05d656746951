//! The upstream stage of the data path (cluster LB ─► **upstream pool** ─►
//! endpoint): dial the endpoint the load balancer chose, with the cluster's
//! connect timeout, and keep HTTP connections pooled per endpoint.

pub mod pool;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

pub use pool::UpstreamPool;

/// Open a TCP connection to `addr`, giving up after `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
    // Proxied requests are small and latency-bound; don't wait for Nagle.
    stream.set_nodelay(true)?;
    Ok(stream)
}

//! Dialling one endpoint for the upstream stage: TCP with the cluster's
//! connect timeout, source address and keepalive, then TLS when the cluster
//! originates it. The resulting [`UpstreamStream`] holds the cluster's
//! `max_connections` slot, so the slot is free exactly when the socket is
//! closed, whoever owns the stream by then (the pool, hyper, a WebSocket
//! tunnel, tcp_proxy).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::cluster::Permit;
use crate::error::ProxyError;
use crate::model::{Cluster, TcpKeepalive};

/// Why a connection could not be made, worded as Envoy's failure reasons
/// (`connection refused`, `connection timeout`, `TLS error: ...`), with the
/// OS or TLS error kept as the source.
#[derive(Debug)]
pub struct ConnectFailure {
    reason: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConnectFailure {
    fn io(error: io::Error) -> ConnectFailure {
        let reason = match error.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::TimedOut => "connection timeout".to_owned(),
            io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
            io::ErrorKind::AddrNotAvailable => "address not available".to_owned(),
            _ => error.to_string(),
        };
        ConnectFailure {
            reason,
            source: Some(Box::new(error)),
        }
    }

    fn tls(error: io::Error) -> ConnectFailure {
        ConnectFailure {
            reason: format!("TLS error: {error}"),
            source: Some(Box::new(error)),
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConnectFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

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
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(source) = bind {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        socket.connect(addr).await
    };
    let stream = tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
    // Proxied requests are small and latency-bound; don't wait for Nagle.
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn set_keepalive(stream: &TcpStream, keepalive: &TcpKeepalive) -> io::Result<()> {
    let mut k = socket2::TcpKeepalive::new();
    if let Some(time) = keepalive.time {
        k = k.with_time(time);
    }
    if let Some(interval) = keepalive.interval {
        k = k.with_interval(interval);
    }
    if let Some(probes) = keepalive.probes {
        k = k.with_retries(probes);
    }
    socket2::SockRef::from(stream).set_tcp_keepalive(&k)
}

/// Dial `address` for `cluster` holding `permit` (its `max_connections`
/// slot): TCP, keepalive, and TLS with `sni` (the cluster's own SNI unless
/// the caller has an `auto_sni` host). The whole of it is bounded by the
/// connect timeout.
pub async fn dial(
    cluster: &Cluster,
    address: SocketAddr,
    sni: Option<&str>,
    permit: Permit,
) -> Result<UpstreamStream, ProxyError> {
    let failed = |failure: ConnectFailure| ProxyError::UpstreamConnect {
        addr: address,
        source: Box::new(failure),
    };
    let deadline = tokio::time::Instant::now() + cluster.connect_timeout;
    let tcp = connect(address, cluster.connect_timeout, cluster.upstream_bind)
        .await
        .map_err(|e| failed(ConnectFailure::io(e)))?;
    if let Some(keepalive) = &cluster.tcp_keepalive {
        set_keepalive(&tcp, keepalive).map_err(|e| failed(ConnectFailure::io(e)))?;
    }
    let io = match &cluster.tls {
        None => Io::Plain(tcp),
        Some(tls) => {
            let name = super::tls::server_name(sni.or(tls.sni.as_deref()), address.ip());
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let handshake = tokio::time::timeout_at(deadline, connector.connect(name, tcp));
            let stream = handshake
                .await
                .map_err(|_| {
                    failed(ConnectFailure::io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timeout",
                    )))
                })?
                .map_err(|e| failed(ConnectFailure::tls(e)))?;
            Io::Tls(Box::new(stream))
        }
    };
    Ok(UpstreamStream {
        io,
        _permit: permit,
    })
}

/// An upstream connection, plaintext or TLS, that holds its cluster's
/// connection slot for as long as it is open.
#[derive(Debug)]
pub struct UpstreamStream {
    io: Io,
    _permit: Permit,
}

#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl UpstreamStream {
    /// The address of the upstream end of the connection.
    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.io {
            Io::Plain(s) => s.peer_addr(),
            Io::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }

    /// The ALPN protocol the TLS handshake settled on, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.io {
            Io::Plain(_) => None,
            Io::Tls(tls) => tls.get_ref().1.alpn_protocol(),
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
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

    #[tokio::test]
    async fn refused_connections_read_as_envoy_and_keepalive_is_set() {
        use std::sync::Arc;
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = free.local_addr().unwrap();
        drop(free);
        let resources = Arc::new(crate::cluster::Resources::default());
        let mut cluster = Cluster::new("c", crate::model::Discovery::OriginalDst);
        let permit = resources
            .admit(&cluster, crate::cluster::Limit::Connections)
            .unwrap();
        let error = dial(&cluster, address, None, permit).await.unwrap_err();
        assert_eq!(
            error.reason(),
            format!("UF connect failure: {address}: connection refused")
        );
        assert_eq!(
            resources.in_use(crate::cluster::Limit::Connections),
            0,
            "a failed dial gives its slot back"
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        cluster.tcp_keepalive = Some(TcpKeepalive {
            probes: Some(3),
            time: Some(Duration::from_secs(7)),
            interval: Some(Duration::from_secs(2)),
        });
        let permit = resources
            .admit(&cluster, crate::cluster::Limit::Connections)
            .unwrap();
        let stream = dial(&cluster, listener.local_addr().unwrap(), None, permit)
            .await
            .unwrap();
        let Io::Plain(tcp) = &stream.io else { panic!() };
        let sock = socket2::SockRef::from(tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
        assert_eq!(resources.in_use(crate::cluster::Limit::Connections), 1);
        drop(stream);
        assert_eq!(resources.in_use(crate::cluster::Limit::Connections), 0);
    }
}

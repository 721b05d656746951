//! The `tcp_proxy` network filter, beside the HCM at the end of a filter
//! chain (listener ─► HCM | **tcp_proxy** ─► cluster ─► upstream): pick a
//! cluster (weighted targets too) and an endpoint, dial it (again, on
//! another endpoint, up to `max_connect_attempts`), and relay bytes both
//! ways until either side closes, the connection idles past
//! `idle_timeout`, outlives `max_downstream_connection_duration`, or its
//! listener drains.
//!
//! ```text
//! relay ─► connect: pick (avoid tried, hash by source IP) ─► dial ─► fail? report, next attempt
//!       └► pipe: copy both ways ─┬─ either side closes
//!                                ├─ no byte either way for idle_timeout
//!                                ├─ max_downstream_connection_duration
//!                                └─ drain + TCP_DRAIN_GRACE
//! ```

use std::hash::{Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::access_log::{self, StreamInfo};
use crate::cluster::{choose_cluster, Outcome, PickContext, Picked};
use crate::data_plane::{DataPlane, Downstream};
use crate::error::ProxyError;
use crate::model::{Snapshot, TcpHashPolicy, TcpProxy};
use crate::upstream::UpstreamStream;

/// How long a relay may go on after its listener started draining. TCP has
/// no way to ask a peer to finish, so after this the connection is closed.
pub const TCP_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// A side closed (or failed); the other was closed after it.
    Closed,
    /// No byte either way for `idle_timeout`.
    Idle,
    /// `max_downstream_connection_duration` passed.
    MaxDuration,
    /// The listener drained and the grace ran out.
    Drained,
}

/// Relay one downstream connection to an endpoint of the filter's cluster.
///
/// `snapshot` is the one the connection's filter chain came from: the
/// cluster is looked up in it too, and it is let go once connected.
pub async fn relay<D>(
    data_plane: &DataPlane,
    snapshot: Arc<Snapshot>,
    filter: &TcpProxy,
    downstream_stream: D,
    downstream: Downstream,
    drain: CancellationToken,
) where
    D: AsyncRead + AsyncWrite + Unpin,
{
    // As Envoy after the original_dst filter: the local address is where
    // the client meant to connect.
    let mut info = StreamInfo::new(downstream.original_dst, downstream.peer);
    let connected = connect(data_plane, &snapshot, filter, &downstream, &mut info).await;
    drop(snapshot);
    // The endpoint counts as busy (least-request) for the relay's lifetime.
    let (upstream, endpoint) = match connected {
        Ok(connected) => connected,
        Err(error) => {
            // Closing the downstream is all TCP can say about it; the log
            // line says why.
            tracing::debug!(%error, side = ?error.source_side(), "tcp_proxy: no upstream");
            info.flags.insert_code(error.flag());
            info.termination_details = Some(error.reason());
            write_log(data_plane, filter, &mut info);
            return;
        }
    };
    let (end, sent, received) = pipe(downstream_stream, upstream, filter, drain).await;
    tracing::debug!(upstream = %endpoint.address, ?end, sent, received, "tcp_proxy: closed");
    info.bytes_received = sent;
    info.bytes_sent = received;
    write_log(data_plane, filter, &mut info);
}

/// The connection's access log lines (`access_log[]` of the filter).
fn write_log(data_plane: &DataPlane, filter: &TcpProxy, info: &mut StreamInfo) {
    info.ended = Some(info.elapsed());
    access_log::log(
        &data_plane.access_logs,
        &filter.access_log,
        info,
        None,
        None,
        None,
    );
}

/// Pick and dial, up to `max_connect_attempts` times, each attempt avoiding
/// the endpoints that already failed (when the cluster has others).
async fn connect(
    data_plane: &DataPlane,
    snapshot: &Snapshot,
    filter: &TcpProxy,
    downstream: &Downstream,
    info: &mut StreamInfo,
) -> Result<(UpstreamStream, Picked), ProxyError> {
    // One cluster per connection, as in Envoy: retries stay in it.
    let cluster_name = choose_cluster(&filter.destination);
    info.upstream_cluster = Some(cluster_name.to_owned());
    let cluster = snapshot
        .clusters
        .get(cluster_name)
        .ok_or_else(|| ProxyError::ClusterNotFound(cluster_name.to_owned()))?;
    let hash = filter.hash_policy.map(|policy| match policy {
        TcpHashPolicy::SourceIp => hash_of(&downstream.peer.ip()),
    });
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ctx = PickContext {
            hash,
            avoid: &tried,
            ..PickContext::new(downstream.original_dst, downstream.local)
        };
        let endpoint = data_plane.clusters.pick(snapshot, cluster, &ctx).await?;
        info.upstream_host = Some(endpoint.address);
        // The pool counts the connection against max_connections and dials
        // with the cluster's timeout, bind, keepalive and TLS.
        match data_plane.pool.connect_tcp(&endpoint, cluster).await {
            Ok(stream) => {
                endpoint.report(Outcome::Status(200));
                return Ok((stream, endpoint));
            }
            Err(error @ ProxyError::UpstreamConnect { .. }) => {
                endpoint.report(Outcome::ConnectFailure);
                tracing::debug!(upstream = %endpoint.address, attempt, %error, "tcp_proxy: connect failed");
                if attempt >= filter.max_connect_attempts {
                    return Err(error);
                }
                tried.push(endpoint.address);
            }
            // An overflow never reached the endpoint: nothing to report,
            // and another attempt would overflow too.
            Err(error) => return Err(error),
        }
    }
}

/// A stable 64-bit hash (the same key always lands on the same host).
fn hash_of(value: &impl Hash) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Copy both ways until one of the ends in [`RelayEnd`]; returns it and the
/// bytes sent upstream and received from it.
pub async fn pipe<D, U>(
    downstream: D,
    upstream: U,
    filter: &TcpProxy,
    drain: CancellationToken,
) -> (RelayEnd, u64, u64)
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Arc::new(Activity::new());
    let mut downstream = Tracked {
        inner: downstream,
        activity: activity.clone(),
    };
    let mut upstream = Tracked {
        inner: upstream,
        activity: activity.clone(),
    };
    let draining = async {
        drain.cancelled().await;
        tokio::time::sleep(TCP_DRAIN_GRACE).await;
    };
    let idle = async {
        match filter.idle_timeout {
            Some(timeout) => activity.idle_for(timeout).await,
            None => std::future::pending().await,
        }
    };
    let lifetime = async {
        match filter.max_downstream_connection_duration {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => match result {
            Ok((sent, received)) => (RelayEnd::Closed, sent, received),
            Err(error) => {
                tracing::debug!(%error, "tcp_proxy: relay ended");
                (RelayEnd::Closed, 0, 0)
            }
        },
        () = idle => (RelayEnd::Idle, 0, 0),
        () = lifetime => (RelayEnd::MaxDuration, 0, 0),
        () = draining => (RelayEnd::Drained, 0, 0),
    }
}

/// When a relay last moved a byte, either way.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Nanoseconds after `start` of the last byte.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Returns once no byte has moved for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that records each byte read or written in its [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "tcp_proxy_tests.rs"]
mod tests;

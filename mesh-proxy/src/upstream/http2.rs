//! HTTP/2 connections of one endpoint, for the upstream pool: requests are
//! streams multiplexed on a connection up to `max_concurrent_streams`;
//! past that a new connection is opened within `max_connections`, and past
//! that the request waits (at most `max_pending_requests` waiting) for a
//! stream or a slot to free. A connection that reached
//! `max_requests_per_connection` or `max_connection_duration` takes no new
//! stream and closes when its last stream ends; one with no stream for
//! `idle_timeout` is closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::Instant;

use super::connect::dial;
use super::RequestBody;
use crate::cluster::{Limit, Permit, Picked};
use crate::error::ProxyError;
use crate::model::{Cluster, PoolSettings};

/// One HTTP/2 connection.
struct Conn {
    sender: http2::SendRequest<RequestBody>,
    created: Instant,
    /// Streams open now.
    active: AtomicU32,
    /// Streams ever opened.
    opened: AtomicU32,
    /// When the last stream ended (for the idle timeout).
    idle_since: Mutex<Instant>,
    settings: PoolSettings,
}

impl Conn {
    fn usable(&self, now: Instant) -> bool {
        let s = &self.settings;
        !self.sender.is_closed()
            && self.active.load(Ordering::Acquire) < s.max_concurrent_streams
            && s.max_requests_per_connection
                .is_none_or(|max| self.opened.load(Ordering::Acquire) < max)
            && s.max_connection_duration
                .is_none_or(|max| now.saturating_duration_since(self.created) < max)
    }

    /// Whether it can never take a stream again.
    fn spent(&self, now: Instant) -> bool {
        let s = &self.settings;
        self.sender.is_closed()
            || s.max_requests_per_connection
                .is_some_and(|max| self.opened.load(Ordering::Acquire) >= max)
            || s.max_connection_duration
                .is_some_and(|max| now.saturating_duration_since(self.created) >= max)
    }
}

/// Holds one stream of a connection open; dropping it ends the stream's
/// claim (and, for a spent connection, its last handle closes it).
pub struct StreamGuard {
    conn: Arc<Conn>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.conn.active.fetch_sub(1, Ordering::AcqRel);
        *self
            .conn
            .idle_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

/// The HTTP/2 connections of one endpoint of one cluster.
pub struct Http2Pool {
    address: SocketAddr,
    sni: Option<String>,
    conns: Mutex<Vec<Arc<Conn>>>,
    reaper: Mutex<bool>,
    /// One dial at a time: requests that find no stream wait for the
    /// connection being made instead of each dialling their own.
    dialing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Http2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Pool")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Http2Pool {
    /// An empty pool for `address`.
    pub fn new(address: SocketAddr, sni: Option<String>) -> Http2Pool {
        Http2Pool {
            address,
            sni,
            conns: Mutex::new(Vec::new()),
            reaper: Mutex::new(false),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether it holds no connection.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A sender for one new stream and the guard of its slot.
    pub async fn checkout(
        self: &Arc<Self>,
        picked: &Picked,
        cluster: &Cluster,
    ) -> Result<(http2::SendRequest<RequestBody>, StreamGuard), ProxyError> {
        let resources = picked.resources().clone();
        let mut pending: Option<Permit> = None;
        loop {
            let freed = resources.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(taken) = self.take_stream() {
                return Ok(taken);
            }
            let dialing = self.dialing.lock().await;
            if let Some(taken) = self.take_stream() {
                return Ok(taken);
            }
            if let Some(slot) =
                resources.try_acquire(Limit::Connections, cluster.circuit_breakers.max_connections)
            {
                let stream = dial(cluster, self.address, self.sni.as_deref(), slot).await?;
                let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| ProxyError::UpstreamConnect {
                        addr: self.address,
                        source: Box::new(e),
                    })?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "upstream HTTP/2 connection ended");
                    }
                });
                let now = Instant::now();
                let conn = Arc::new(Conn {
                    sender,
                    created: now,
                    active: AtomicU32::new(0),
                    opened: AtomicU32::new(0),
                    idle_since: Mutex::new(now),
                    settings: cluster.pool.clone(),
                });
                self.lock().push(conn);
                self.start_reaper(cluster.pool.idle_timeout);
                drop(dialing);
                continue;
            }
            drop(dialing);
            if pending.is_none() {
                pending = Some(resources.admit(cluster, Limit::PendingRequests)?);
            }
            freed.await;
        }
    }

    fn take_stream(&self) -> Option<(http2::SendRequest<RequestBody>, StreamGuard)> {
        let now = Instant::now();
        let mut conns = self.lock();
        // Spent connections leave the pool; their open streams keep them
        // alive until done.
        conns.retain(|c| !c.spent(now));
        let conn = conns.iter().find(|c| c.usable(now))?.clone();
        conn.active.fetch_add(1, Ordering::AcqRel);
        conn.opened.fetch_add(1, Ordering::AcqRel);
        Some((conn.sender.clone(), StreamGuard { conn }))
    }

    fn start_reaper(self: &Arc<Self>, timeout: Option<std::time::Duration>) {
        let Some(timeout) = timeout else { return };
        let mut running = self.reaper.lock().unwrap_or_else(|p| p.into_inner());
        if *running {
            return;
        }
        *running = true;
        tokio::spawn(reap(Arc::downgrade(self), timeout));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Send one request on a stream of `sender`.
pub async fn send(
    mut sender: http2::SendRequest<RequestBody>,
    request: http::Request<RequestBody>,
    address: SocketAddr,
) -> Result<http::Response<Incoming>, ProxyError> {
    sender
        .send_request(request)
        .await
        .map_err(|e| ProxyError::UpstreamReset {
            addr: address,
            source: Box::new(e),
        })
}

/// Close connections with no stream for `timeout`; ends when the pool has
/// no connection left.
async fn reap(pool: std::sync::Weak<Http2Pool>, timeout: std::time::Duration) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else { return };
            let now = Instant::now();
            let mut conns = pool.lock();
            conns.retain(|c| {
                let idle = c.active.load(Ordering::Acquire) == 0
                    && now.saturating_duration_since(
                        *c.idle_since.lock().unwrap_or_else(|p| p.into_inner()),
                    ) >= timeout;
                !idle && !c.sender.is_closed()
            });
            if conns.is_empty() {
                *pool.reaper.lock().unwrap_or_else(|p| p.into_inner()) = false;
                return;
            }
            // Connections with open streams are looked at again a timeout
            // from now at the latest.
            let next = conns
                .iter()
                .filter(|c| c.active.load(Ordering::Acquire) == 0)
                .map(|c| *c.idle_since.lock().unwrap_or_else(|p| p.into_inner()) + timeout)
                .min();
            match next {
                Some(next) => next.max(now + std::time::Duration::from_millis(1)),
                None if !conns.is_empty() => now + timeout,
                None => {
                    *pool.reaper.lock().unwrap_or_else(|p| p.into_inner()) = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next).await;
    }
}

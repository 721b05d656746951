//! HTTP/1.1 connections of one endpoint, for the upstream pool: each
//! carries one request at a time and is reused after its response ends.
//! A request with no idle connection dials a new one if the cluster's
//! `max_connections` allows, else waits (FIFO, at most
//! `max_pending_requests` waiting) for a connection to come back or a slot
//! to free. Idle connections close after `idle_timeout`; a connection past
//! `max_requests_per_connection` or `max_connection_duration` is closed
//! instead of reused.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::connect::{dial, UpstreamStream};
use super::RequestBody;
use crate::cluster::{Limit, Permit, Picked};
use crate::error::ProxyError;
use crate::model::{Cluster, PoolSettings};

/// One HTTP/1.1 connection.
pub struct Http1Conn {
    sender: http1::SendRequest<RequestBody>,
    address: SocketAddr,
    created: Instant,
    requests: u32,
    settings: PoolSettings,
}

impl Http1Conn {
    /// Handshake on a fresh stream and run the connection in its own task
    /// (upgrades kept possible).
    pub async fn handshake(
        stream: UpstreamStream,
        address: SocketAddr,
    ) -> Result<Http1Conn, ProxyError> {
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProxyError::UpstreamConnect {
                addr: address,
                source: Box::new(e),
            })?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream HTTP/1.1 connection ended");
            }
        });
        Ok(Http1Conn {
            sender,
            address,
            created: Instant::now(),
            requests: 0,
            settings: PoolSettings::default(),
        })
    }

    /// Send one request; the connection stays checked out until the caller
    /// gives it back.
    pub async fn send(
        &mut self,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        self.try_send(request).await.map_err(|(error, _)| error)
    }

    /// Send one request; on failure, the request too when it never left
    /// (the connection was found closed), so it can go on another one.
    pub async fn try_send(
        &mut self,
        request: http::Request<RequestBody>,
    ) -> Result<http::Response<Incoming>, (ProxyError, Option<http::Request<RequestBody>>)> {
        self.requests += 1;
        let address = self.address;
        self.sender
            .try_send_request(request)
            .await
            .map_err(|mut e| {
                let unsent = e.take_message();
                let error = ProxyError::UpstreamReset {
                    addr: address,
                    source: Box::new(e.into_error()),
                };
                (error, unsent)
            })
    }

    /// Whether it carried a request before this checkout.
    pub fn reused(&self) -> bool {
        self.requests > 0
    }

    /// The handle that returns this connection to `pool` when the
    /// response ends.
    pub fn finish(self, pool: Arc<Http1Pool>) -> Returning {
        Returning { conn: self, pool }
    }

    fn reusable(&self, now: Instant) -> bool {
        let s = &self.settings;
        !self.sender.is_closed()
            && s.max_requests_per_connection
                .is_none_or(|max| self.requests < max)
            && s.max_connection_duration
                .is_none_or(|max| now.saturating_duration_since(self.created) < max)
    }
}

/// A checked-out connection on its way back to the pool.
pub struct Returning {
    conn: Http1Conn,
    pool: Arc<Http1Pool>,
}

impl Returning {
    /// The response has ended: hand the connection to the first waiting
    /// request, else keep it idle (or close it when it may not be reused).
    pub fn give_back(self) {
        let Returning { conn, pool } = self;
        pool.put(conn);
    }
}

struct Idle {
    conn: Http1Conn,
    since: Instant,
}

/// The HTTP/1.1 connections of one endpoint of one cluster.
pub struct Http1Pool {
    address: SocketAddr,
    sni: Option<String>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    idle: VecDeque<Idle>,
    waiters: VecDeque<oneshot::Sender<Http1Conn>>,
    reaper: bool,
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Http1Pool {
    /// An empty pool for `address`.
    pub fn new(address: SocketAddr, sni: Option<String>) -> Http1Pool {
        Http1Pool {
            address,
            sni,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether it holds no connection and nobody waits.
    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.idle.is_empty() && inner.waiters.is_empty()
    }

    /// A connection for one request: idle, new, or (at `max_connections`)
    /// the next one given back, after waiting in the pending queue.
    pub async fn checkout(
        self: &Arc<Self>,
        picked: &Picked,
        cluster: &Cluster,
    ) -> Result<Http1Conn, ProxyError> {
        let resources = picked.resources().clone();
        let mut pending: Option<Permit> = None;
        loop {
            let freed = resources.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(conn) = self.take_idle().await {
                return Ok(conn);
            }
            if let Some(slot) =
                resources.try_acquire(Limit::Connections, cluster.circuit_breakers.max_connections)
            {
                let stream = dial(cluster, self.address, self.sni.as_deref(), slot).await?;
                let mut conn = Http1Conn::handshake(stream, self.address).await?;
                conn.settings = cluster.pool.clone();
                return Ok(conn);
            }
            if pending.is_none() {
                pending = Some(resources.admit(cluster, Limit::PendingRequests)?);
            }
            let (tx, rx) = oneshot::channel();
            {
                let mut inner = self.lock();
                // Waiters that gave up (or woke for a free slot) leave.
                inner.waiters.retain(|w| !w.is_closed());
                inner.waiters.push_back(tx);
            }
            let mut rx = rx;
            tokio::select! {
                // A connection handed over wins over a slot freed at the
                // same time (a response's end does both).
                biased;
                given = &mut rx => if let Ok(conn) = given {
                    return Ok(conn);
                },
                () = freed => if let Ok(conn) = rx.try_recv() {
                    return Ok(conn);
                },
            }
        }
    }

    async fn take_idle(&self) -> Option<Http1Conn> {
        loop {
            let idle = self.lock().idle.pop_back()?;
            let mut conn = idle.conn;
            // Ready means the previous exchange is over and the server has
            // not closed the connection meanwhile.
            if conn.reusable(Instant::now()) && conn.sender.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    fn put(self: &Arc<Self>, mut conn: Http1Conn) {
        let now = Instant::now();
        if !conn.reusable(now) {
            return;
        }
        let mut inner = self.lock();
        while let Some(waiter) = inner.waiters.pop_front() {
            match waiter.send(conn) {
                Ok(()) => return,
                Err(back) => conn = back,
            }
        }
        let timeout = conn.settings.idle_timeout;
        inner.idle.push_back(Idle { conn, since: now });
        if let Some(timeout) = timeout {
            if !inner.reaper {
                inner.reaper = true;
                let pool = Arc::downgrade(self);
                tokio::spawn(reap(pool, timeout));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Close idle connections once they have been idle for `timeout`; ends
/// when none is left (the next idle connection starts another).
async fn reap(pool: std::sync::Weak<Http1Pool>, timeout: std::time::Duration) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else { return };
            let mut inner = pool.lock();
            let now = Instant::now();
            inner
                .idle
                .retain(|idle| now.saturating_duration_since(idle.since) < timeout);
            match inner.idle.iter().map(|i| i.since).min() {
                Some(oldest) => oldest + timeout,
                None => {
                    inner.reaper = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next).await;
    }
}

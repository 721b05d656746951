//! The upstream connection pool: HTTP/1.1 and HTTP/2 connections to each
//! endpoint of each cluster, over hyper's `client::conn`, so the circuit
//! breakers are exact.
//!
//! - A request holds a `max_requests` slot from admission until its
//!   response body ends (or is dropped).
//! - HTTP/1.1 ([`super::http1`]): one request per connection at a time,
//!   connections reused (keep-alive); with no idle connection and no
//!   `max_connections` slot left the request waits in a FIFO queue of at
//!   most `max_pending_requests`.
//! - HTTP/2 ([`super::http2`]): streams multiplexed on a connection up to
//!   `max_concurrent_streams`, then a new connection within
//!   `max_connections`, else the pending queue.
//! - A request carrying `Upgrade` (WebSocket) gets a connection of its own
//!   that never returns to the pool; after a 101 the router takes it with
//!   `hyper::upgrade::on`, and it keeps its connection slot until closed.
//! - The request's version says which protocol to speak: the router sets
//!   it from [`Cluster::upstream_http2`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::connect::{dial, UpstreamStream};
use super::http1::{Http1Conn, Http1Pool};
use super::http2::{Http2Pool, StreamGuard};
use crate::cluster::{Limit, Permit, Picked};
use crate::error::ProxyError;
use crate::model::{Cluster, Discovery, Snapshot};

pub use super::RequestBody;

/// Past this many endpoint pools in one cluster, pools with no connection
/// are forgotten before another is made: ORIGINAL_DST and DNS clusters get
/// a pool per destination, and snapshots, which prune the rest, may not
/// change for a long time.
const MAX_IDLE_POOLS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HostKey {
    address: SocketAddr,
    http2: bool,
    /// The SNI of `auto_sni` clusters (connections are per host name then).
    sni: Option<String>,
}

/// The endpoint pools of one cluster, and the cluster model they were made
/// under: its address when the first request made them (the data path
/// always passes the snapshot's own model), then, from the next snapshot
/// on, the model itself (held, so that its address cannot be reused).
#[derive(Debug)]
struct ClusterPools {
    made_under: usize,
    config: Option<Arc<Cluster>>,
    hosts: HashMap<HostKey, HostPool>,
}

impl ClusterPools {
    fn new(cluster: &Cluster) -> Self {
        ClusterPools {
            // Only ever compared, never dereferenced.
            made_under: std::ptr::from_ref(cluster) as usize,
            config: None,
            hosts: HashMap::new(),
        }
    }

    /// Whether `cluster` is the model these pools were made under.
    fn same_model(&self, cluster: &Arc<Cluster>) -> bool {
        match &self.config {
            Some(config) => Arc::ptr_eq(config, cluster),
            None => self.made_under == Arc::as_ptr(cluster) as usize,
        }
    }
}

#[derive(Debug, Clone)]
enum HostPool {
    Http1(Arc<Http1Pool>),
    Http2(Arc<Http2Pool>),
}

impl HostPool {
    fn is_empty(&self) -> bool {
        match self {
            HostPool::Http1(p) => p.is_empty(),
            HostPool::Http2(p) => p.is_empty(),
        }
    }
}

/// All upstream HTTP connection pools of the data plane, by cluster name
/// and endpoint.
#[derive(Debug, Default)]
pub struct UpstreamPool {
    clusters: Mutex<HashMap<String, ClusterPools>>,
}

impl UpstreamPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send `request` to the endpoint `picked` of `cluster`, on a pooled
    /// connection when one is free (module doc). Errors: `Overflow` (a
    /// circuit breaker), `UpstreamConnect`, `UpstreamReset`.
    pub async fn send(
        &self,
        picked: &Picked,
        cluster: &Cluster,
        mut request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let request_slot = picked.admit(cluster, Limit::Requests)?;
        let http2 = request.version() == Version::HTTP_2;
        let sni = cluster
            .tls
            .as_ref()
            .filter(|t| t.auto_sni)
            .and_then(|_| request.uri().host().map(str::to_owned));
        if !http2 {
            // HTTP/1.1 wants the origin form; Host carries the authority.
            if let Some(path) = request.uri().path_and_query().cloned() {
                *request.uri_mut() = path.into();
            }
        }
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        if upgrade && !http2 {
            let stream = acquire_dedicated(picked, cluster, sni.as_deref()).await?;
            let mut conn = Http1Conn::handshake(stream, picked.address).await?;
            let response = conn.send(request).await?;
            // Never pooled: after a 101 the connection is the tunnel's.
            return Ok(wrap(response, request_slot, Finish::Nothing));
        }
        let key = HostKey {
            address: picked.address,
            http2,
            sni,
        };
        match self.host(cluster, key) {
            HostPool::Http1(pool) => {
                let mut request = request;
                loop {
                    let mut conn = pool.checkout(picked, cluster).await?;
                    let reused = conn.reused();
                    match conn.try_send(request).await {
                        Ok(response) => {
                            let finish = Finish::Http1(conn.finish(pool));
                            return Ok(wrap(response, request_slot, finish));
                        }
                        // A kept-alive connection the server closed just as
                        // it was taken: the request never left, so it goes
                        // on another connection (each try uses one up).
                        Err((_, Some(unsent))) if reused => request = unsent,
                        Err((error, _)) => return Err(error),
                    }
                }
            }
            HostPool::Http2(pool) => {
                let (sender, guard) = pool.checkout(picked, cluster).await?;
                let response = super::http2::send(sender, request, picked.address).await?;
                Ok(wrap(response, request_slot, Finish::Http2(guard)))
            }
        }
    }

    /// A raw connection for `tcp_proxy` to the endpoint `picked` of
    /// `cluster`: its `max_connections` slot (else `Overflow` naming
    /// `maxConnections`), then the same dial as HTTP (connect timeout,
    /// bind, keepalive, TLS).
    pub async fn connect_tcp(
        &self,
        picked: &Picked,
        cluster: &Cluster,
    ) -> Result<UpstreamStream, ProxyError> {
        let slot = picked.admit(cluster, Limit::Connections)?;
        dial(cluster, picked.address, None, slot).await
    }

    /// Close the pools of clusters the snapshot no longer has or has
    /// changed (as Envoy replaces a changed cluster and its pools: no
    /// connection made under the old limits and settings is reused), and of
    /// endpoints EDS or STATIC no longer list. Requests in flight finish
    /// first: each holds its own connection.
    pub fn retain(&self, snapshot: &Snapshot) {
        let mut clusters = self.lock();
        clusters.retain(|name, pools| {
            let Some(cluster) = snapshot.clusters.get(name) else {
                return false;
            };
            if !pools.same_model(cluster) {
                pools.hosts.clear();
            }
            pools.config = Some(cluster.clone());
            let hosts = &mut pools.hosts;
            let listed = match &cluster.discovery {
                Discovery::Eds { service_name } => snapshot.endpoints.get(service_name).cloned(),
                Discovery::Static(assignment) => Some(assignment.clone()),
                // Addresses come and go per lookup or connection: keep the
                // pools that have connections.
                Discovery::StrictDns(_) | Discovery::LogicalDns(_) | Discovery::OriginalDst => {
                    hosts.retain(|_, pool| !pool.is_empty());
                    return true;
                }
            };
            match listed {
                Some(a) => {
                    hosts.retain(|key, _| a.endpoints.iter().any(|e| e.address == key.address))
                }
                None => hosts.clear(),
            }
            true
        });
    }

    /// Endpoint pools of `cluster` now (tests).
    pub fn pools(&self, cluster: &str) -> usize {
        self.lock().get(cluster).map_or(0, |p| p.hosts.len())
    }

    fn host(&self, model: &Cluster, key: HostKey) -> HostPool {
        let cluster = model.name.as_str();
        let mut clusters = self.lock();
        if !clusters.contains_key(cluster) {
            clusters.insert(cluster.to_owned(), ClusterPools::new(model));
        }
        let make = |key: &HostKey| {
            if key.http2 {
                HostPool::Http2(Arc::new(Http2Pool::new(key.address, key.sni.clone())))
            } else {
                HostPool::Http1(Arc::new(Http1Pool::new(key.address, key.sni.clone())))
            }
        };
        // Inserted just above; a pool of its own would do if it were not.
        let Some(hosts) = clusters.get_mut(cluster).map(|p| &mut p.hosts) else {
            return make(&key);
        };
        if let Some(pool) = hosts.get(&key) {
            return pool.clone();
        }
        if hosts.len() >= MAX_IDLE_POOLS {
            hosts.retain(|_, pool| !pool.is_empty());
        }
        let pool = make(&key);
        hosts.insert(key, pool.clone());
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClusterPools>> {
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection of its own (an upgrade): a connection slot, waiting in the
/// pending queue for one when the cluster is at `max_connections`.
async fn acquire_dedicated(
    picked: &Picked,
    cluster: &Cluster,
    sni: Option<&str>,
) -> Result<UpstreamStream, ProxyError> {
    let resources = picked.resources().clone();
    let mut pending: Option<Permit> = None;
    loop {
        let freed = resources.freed();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if let Some(slot) =
            resources.try_acquire(Limit::Connections, cluster.circuit_breakers.max_connections)
        {
            return dial(cluster, picked.address, sni, slot).await;
        }
        if pending.is_none() {
            pending = Some(resources.admit(cluster, Limit::PendingRequests)?);
        }
        freed.await;
    }
}

fn wrap(response: Response<Incoming>, slot: Permit, finish: Finish) -> Response<UpstreamBody> {
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        UpstreamBody {
            inner: body,
            _request_slot: Some(slot),
            finish,
        },
    )
}

/// What happens to the connection when the response body ends.
enum Finish {
    Nothing,
    /// The HTTP/1.1 connection goes back to its pool (or to a waiting
    /// request) at the end of the body; dropped early, it closes.
    Http1(super::http1::Returning),
    /// The HTTP/2 stream slot is given back when the body ends or drops.
    Http2(StreamGuard),
}

/// A response body from upstream: hyper's, plus the request's circuit
/// breaker slot and its connection's return to the pool, both let go when
/// the body ends or is dropped.
pub struct UpstreamBody {
    inner: Incoming,
    _request_slot: Option<Permit>,
    finish: Finish,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").finish_non_exhaustive()
    }
}

impl UpstreamBody {
    fn end(&mut self) {
        match std::mem::replace(&mut self.finish, Finish::Nothing) {
            Finish::Nothing => {}
            Finish::Http1(returning) => returning.give_back(),
            Finish::Http2(guard) => drop(guard),
        }
        self._request_slot = None;
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body with nothing more to read (empty, or read to its end
        // without a final poll) leaves a reusable connection; any other
        // drop closes it, since hyper cannot reuse a half-read response.
        if self.inner.is_end_stream() {
            self.end();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.end(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.end(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

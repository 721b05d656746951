//! Pooled HTTP/1.1 and HTTP/2 connections to upstream endpoints.
//!
//! One hyper-util legacy [`Client`] per `(endpoint, protocol, connect
//! timeout, source address)`, each with a connector that always dials that endpoint's
//! address. The request URI keeps the original authority, so an HTTP/1.1
//! upstream gets it in `Host` and an HTTP/2 upstream in `:authority`, exactly
//! as the client sent it, while connections are still pooled per endpoint.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::cluster::Picked;
use crate::error::ProxyError;
use crate::model::Cluster;

/// The body type requests are sent upstream with: the downstream body,
/// streamed, never buffered whole.
pub type RequestBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Idle pooled connections are closed after this long (Envoy's default
/// idle timeout is 1h; a sidecar wants fewer idle sockets than that).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Past this many pools, [`UpstreamPool`] forgets the ones idle for longer
/// than [`IDLE_TIMEOUT`] before it makes another. ORIGINAL_DST and DNS
/// clusters get a pool per destination, and snapshots, which prune the
/// rest, may not change for a long time.
const MAX_IDLE_POOLS: usize = 1024;

type HttpClient = Client<EndpointConnector, RequestBody>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PoolKey {
    address: SocketAddr,
    http2: bool,
    connect_timeout: Duration,
    bind: Option<IpAddr>,
}

/// All upstream HTTP connection pools of the data plane.
#[derive(Default)]
pub struct UpstreamPool {
    clients: Mutex<HashMap<PoolKey, Pooled>>,
}

/// One endpoint's client and when a request last took it.
struct Pooled {
    client: HttpClient,
    used: Instant,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("endpoints", &self.lock().len())
            .finish()
    }
}

impl UpstreamPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send `request` to the endpoint `picked` of `cluster`, reusing a
    /// pooled connection when there is one. The request's version must
    /// already match the cluster's protocol.
    pub async fn send(
        &self,
        picked: &Picked,
        cluster: &Cluster,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let address = picked.address;
        let client = self.client(PoolKey {
            address,
            http2: cluster.http2,
            connect_timeout: cluster.connect_timeout,
            bind: cluster.upstream_bind,
        });
        client.request(request).await.map_err(|error| {
            if error.is_connect() {
                ProxyError::UpstreamConnect {
                    addr: address,
                    source: Box::new(error),
                }
            } else {
                ProxyError::UpstreamReset {
                    addr: address,
                    source: Box::new(error),
                }
            }
        })
    }

    /// Close the pools of endpoints for which `keep` is false (called when a
    /// snapshot drops endpoints). Connections in use finish first: each
    /// request holds its own handle on the client.
    pub fn retain(&self, keep: &HashSet<SocketAddr>) {
        self.lock().retain(|key, _| keep.contains(&key.address));
    }

    fn client(&self, key: PoolKey) -> HttpClient {
        self.client_at(key, Instant::now())
    }

    fn client_at(&self, key: PoolKey, now: Instant) -> HttpClient {
        let mut clients = self.lock();
        if let Some(pooled) = clients.get_mut(&key) {
            pooled.used = now;
            return pooled.client.clone();
        }
        if clients.len() >= MAX_IDLE_POOLS {
            // Unused for longer than the idle timeout: no connection is left
            // in it, so forgetting it costs nothing.
            clients.retain(|_, pooled| now.saturating_duration_since(pooled.used) < IDLE_TIMEOUT);
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(key.http2)
            .build(EndpointConnector {
                address: key.address,
                connect_timeout: key.connect_timeout,
                bind: key.bind,
            });
        clients.insert(
            key,
            Pooled {
                client: client.clone(),
                used: now,
            },
        );
        client
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Pooled>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connector that ignores the request URI and dials one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct EndpointConnector {
    address: SocketAddr,
    connect_timeout: Duration,
    bind: Option<IpAddr>,
}

impl tower_service::Service<Uri> for EndpointConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _authority: Uri) -> Self::Future {
        let EndpointConnector {
            address,
            connect_timeout,
            bind,
        } = *self;
        Box::pin(async move {
            super::connect(address, connect_timeout, bind)
                .await
                .map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> PoolKey {
        PoolKey {
            address: SocketAddr::from(([198, 19, 0, 1], port)),
            http2: false,
            connect_timeout: Duration::from_secs(1),
            bind: None,
        }
    }

    #[tokio::test]
    async fn pools_of_destinations_gone_idle_are_forgotten() {
        // Passthrough traffic to ever new destinations, with no snapshot
        // change to prune the pools in between.
        let pool = UpstreamPool::new();
        let start = Instant::now();
        for port in 0..MAX_IDLE_POOLS as u16 {
            pool.client_at(key(port), start);
        }
        let later = start + IDLE_TIMEOUT;
        pool.client_at(key(0), later); // still in use
        pool.client_at(key(u16::MAX), later);
        assert_eq!(pool.lock().len(), 2);
        assert!(pool.lock().contains_key(&key(0)));
    }
}

//! The ADS gRPC service: one task per stream. The task reads requests,
//! follows the push context (a `watch`), takes this proxy's resources from
//! the push's cache on every push (shared families built once per push,
//! its own built here) and lets [`Connection`] decide what to send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::Stream;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::cache::PushCaches;
use super::connection::{Connection, SyncStatus};
use super::node;
use crate::error::ServeError;
use crate::push::PushContext;

/// How many disconnected streams `/debug/syncz` keeps showing.
const KEEP_DISCONNECTED: usize = 64;
/// Responses buffered per stream before the stream task waits.
const STREAM_BUFFER: usize = 8;

/// Sync state of every stream, by stream id, for `/debug/syncz`.
#[derive(Debug, Clone, Default)]
pub struct SyncTable {
    inner: Arc<Mutex<BTreeMap<u64, SyncStatus>>>,
}

impl SyncTable {
    /// All streams, oldest first.
    pub fn list(&self) -> Vec<SyncStatus> {
        self.lock().values().cloned().collect()
    }

    fn put(&self, id: u64, status: SyncStatus) {
        self.lock().insert(id, status);
    }

    /// A new stream for `node_id` replaces the ended streams of that node.
    fn connect(&self, id: u64, status: SyncStatus) {
        let mut t = self.lock();
        t.retain(|_, s| s.connected || s.node_id != status.node_id);
        t.insert(id, status);
    }

    fn disconnect(&self, id: u64) {
        let mut t = self.lock();
        if let Some(s) = t.get_mut(&id) {
            s.connected = false;
        }
        let ended: Vec<u64> = t
            .iter()
            .filter(|(_, s)| !s.connected)
            .map(|(k, _)| *k)
            .collect();
        for k in ended
            .iter()
            .take(ended.len().saturating_sub(KEEP_DISCONNECTED))
        {
            t.remove(k);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SyncStatus>> {
        // A poisoned table is still a valid table: every write is one insert.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The ADS service.
#[derive(Debug, Clone)]
pub struct AdsServer {
    push: watch::Receiver<Arc<PushContext>>,
    caches: PushCaches,
    sync: SyncTable,
    shutdown: watch::Receiver<bool>,
    next_id: Arc<AtomicU64>,
}

impl AdsServer {
    /// A service following `push`, recording into `sync`, ending its
    /// streams when `shutdown` turns true.
    pub fn new(
        push: watch::Receiver<Arc<PushContext>>,
        sync: SyncTable,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        AdsServer {
            caches: PushCaches::new(push.clone()),
            push,
            sync,
            shutdown,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The per-push caches of shared resources the streams use (for
    /// `/debug/pushz`).
    pub fn caches(&self) -> PushCaches {
        self.caches.clone()
    }

    /// Serve on an already bound listener until `shutdown` turns true.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), ServeError> {
        let mut shutdown = self.shutdown.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(AggregatedDiscoveryServiceServer::new(self))
            .serve_with_incoming_shutdown(incoming, async move {
                crate::drained(&mut shutdown).await;
            })
            .await?;
        Ok(())
    }

    /// Bind `addr` and serve.
    pub async fn bind_and_serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        tracing::info!(%addr, "ADS server listening");
        self.serve(listener).await
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request.remote_addr();
        let requests = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stream = AdsStream {
            id,
            push: self.push.clone(),
            caches: self.caches.clone(),
            sync: self.sync.clone(),
            shutdown: self.shutdown.clone(),
            tx,
        };
        let span = tracing::info_span!("ads", id, peer = ?peer);
        tokio::spawn(stream.run(requests).instrument(span));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type DeltaAggregatedResourcesStream = ResponseStream;

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "delta xDS is not served yet; use state of the world",
        ))
    }
}

/// What woke a stream's task.
enum Event {
    Request(Box<DiscoveryRequest>),
    Push,
    Closed,
}

/// One ADS stream's task.
struct AdsStream {
    id: u64,
    push: watch::Receiver<Arc<PushContext>>,
    caches: PushCaches,
    sync: SyncTable,
    shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
}

impl AdsStream {
    async fn run(mut self, mut requests: Streaming<DiscoveryRequest>) {
        let first = match requests.message().await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "stream ended before its first request");
                return;
            }
        };
        let proxy = match node::to_proxy(first.node.as_ref()) {
            Ok(proxy) => proxy,
            Err(e) => {
                tracing::warn!(error = %e, "rejecting stream");
                let _ = self
                    .tx
                    .send(Err(Status::invalid_argument(e.to_string())))
                    .await;
                return;
            }
        };
        tracing::info!(node = %proxy.id, "proxy connected");
        let ctx = self.push.borrow_and_update().clone();
        let resources = Arc::new(self.caches.for_push(&ctx).resources(&proxy));
        let mut conn = Connection::new(proxy.id.clone(), resources, ctx.version());
        self.sync.connect(self.id, conn.status(true));
        let mut next = Some(first);
        loop {
            let event = match next.take() {
                Some(req) => Event::Request(Box::new(req)),
                None => tokio::select! {
                    msg = requests.message() => match msg {
                        Ok(Some(req)) => Event::Request(Box::new(req)),
                        Ok(None) => Event::Closed,
                        Err(status) => {
                            tracing::debug!(%status, "stream error");
                            Event::Closed
                        }
                    },
                    changed = self.push.changed() => match changed {
                        Ok(()) => Event::Push,
                        Err(_) => Event::Closed,
                    },
                    _ = crate::drained(&mut self.shutdown) => Event::Closed,
                },
            };
            let replies = match event {
                Event::Request(req) => conn.on_request(&req).into_iter().collect(),
                Event::Push => {
                    let ctx = self.push.borrow_and_update().clone();
                    let resources = Arc::new(self.caches.for_push(&ctx).resources(&proxy));
                    conn.on_push(resources, ctx.version())
                }
                Event::Closed => break,
            };
            self.sync.put(self.id, conn.status(true));
            let mut open = true;
            for resp in replies {
                open = open && self.send(resp).await;
            }
            if !open {
                break;
            }
        }
        tracing::info!(node = %proxy.id, "proxy disconnected");
        self.sync.disconnect(self.id);
    }

    /// False when the client has gone.
    async fn send(&self, resp: DiscoveryResponse) -> bool {
        tracing::debug!(type_url = %resp.type_url, version = %resp.version_info,
            nonce = %resp.nonce, resources = resp.resources.len(), "send");
        self.tx.send(Ok(resp)).await.is_ok()
    }
}

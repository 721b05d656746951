//! The ADS server: one task per stream, state of the world or delta. The
//! task reads requests, follows the push context (a `watch`), takes this
//! proxy's resources from the push's cache on every push (shared families
//! built once per push, its own built here) and lets the protocol state
//! ([`Connection`] or [`DeltaConnection`]) decide what to send.
//! [`AdsService`] routes the two ADS methods to their stream tasks, with
//! `wire.rs` reading requests and writing responses.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use envoy_types::pb::envoy::config::core::v3::Node as EnvoyNode;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tonic::server::NamedService;
use tonic::Status;
use tracing::Instrument;

use super::cache::PushCaches;
use super::connection::{Connection, Outgoing, SyncStatus};
use super::delta::{DeltaConnection, DeltaOutgoing};
use super::node;
use super::wire::{Framed, Requests, WireBody};
use super::Resources;
use crate::error::ServeError;
use crate::push::PushContext;

/// ADS streams one peer address may hold open at once by default
/// (`--max-streams-per-peer`): a sidecar holds one, so only a node's many
/// pods behind one address, or a load test, come near it. Until proxies
/// authenticate (the security issue) this is what stops one client from
/// opening streams without end.
pub const DEFAULT_MAX_STREAMS_PER_PEER: usize = 4096;

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
    peers: PeerStreams,
}

/// Open streams by peer address, and the cap.
#[derive(Debug, Clone)]
struct PeerStreams {
    open: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    max: usize,
}

/// One stream's place in its peer's count, given back when dropped.
struct PeerSlot {
    peers: PeerStreams,
    ip: std::net::IpAddr,
}

impl PeerStreams {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a stream from `ip`, or `None` at the cap.
    fn take(&self, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
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
            peers: PeerStreams {
                open: Arc::default(),
                max: DEFAULT_MAX_STREAMS_PER_PEER,
            },
        }
    }

    /// At most `max` streams open at once from one peer address.
    pub fn with_max_streams_per_peer(mut self, max: usize) -> Self {
        self.peers.max = max.max(1);
        self
    }

    /// The per-push caches of shared resources the streams use (for
    /// `/debug/pushz`).
    pub fn caches(&self) -> PushCaches {
        self.caches.clone()
    }

    /// Serve on an already bound listener until `shutdown` turns true.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), ServeError> {
        let mut shutdown = self.shutdown.clone();
        // Each response goes out at once rather than waiting for the
        // proxy's delayed ACK of the previous one (Nagle): ~40 ms per
        // push otherwise.
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
            conn.inspect(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY not set");
                }
            })
        });
        tonic::transport::Server::builder()
            .add_service(AdsService::new(self))
            .serve_with_incoming_shutdown(incoming, async move {
                crate::drained(&mut shutdown).await;
            })
            .await?;
        Ok(())
    }

    /// Bind `addr` and serve.
    pub async fn bind_and_serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        let listener = listen(addr).map_err(|source| ServeError::Bind { addr, source })?;
        tracing::info!(%addr, "ADS server listening");
        self.serve(listener).await
    }
}

/// Connections a restarted pilot may be asked for at once: every proxy
/// of a large mesh reconnects within moments (the kernel caps this at
/// `net.core.somaxconn`).
const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `addr` with room for a reconnect storm.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// The state-of-the-world method's path.
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
/// The incremental method's path.
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// The ADS service of an [`AdsServer`] (tonic routes by its name): both
/// methods on `wire.rs`'s frame reader and writer; any other path is
/// UNIMPLEMENTED.
#[derive(Clone)]
pub struct AdsService {
    server: AdsServer,
}

impl AdsService {
    /// The service of `server`.
    pub fn new(server: AdsServer) -> AdsService {
        AdsService { server }
    }

    /// Start a stream task of protocol `P` for `req`; its body.
    fn serve<P>(
        &self,
        req: http::Request<tonic::body::Body>,
        kind: &'static str,
    ) -> Result<WireBody<P::Out>, Status>
    where
        P: Protocol,
        P::Out: Framed,
    {
        let peer = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|i| i.remote_addr());
        let slot = match peer {
            Some(peer) => match self.server.peers.take(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(%peer, limit = self.server.peers.max, "refusing stream: too many streams from this address");
                    return Err(Status::resource_exhausted(format!(
                        "more than {} ADS streams from {}",
                        self.server.peers.max,
                        peer.ip()
                    )));
                }
            },
            None => None,
        };
        let requests = Requests::new(req.into_body());
        let (stream, rx) = self.server.stream::<P>();
        let span = tracing::info_span!("ads", kind, id = stream.id, peer = ?peer);
        tokio::spawn(
            async move {
                stream.run(requests).await;
                drop(slot);
            }
            .instrument(span),
        );
        Ok(WireBody::new(rx))
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for AdsService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let served = match req.uri().path() {
            SOTW_PATH => self
                .serve::<Connection>(req, "sotw")
                .map(tonic::body::Body::new),
            DELTA_PATH => self
                .serve::<DeltaConnection>(req, "delta")
                .map(tonic::body::Body::new),
            other => {
                let status = Status::unimplemented(format!("no method {other}"));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let body = match served {
            Ok(body) => body,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(body)
            .unwrap_or_else(|_| http::Response::new(tonic::body::Body::empty()));
        Box::pin(async move { Ok(response) })
    }
}

impl AdsServer {
    /// A stream task of protocol `P` and the receiving end of its
    /// responses.
    pub(super) fn stream<P: Protocol>(
        &self,
    ) -> (AdsStream<P>, mpsc::Receiver<Result<P::Out, Status>>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let stream = AdsStream {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            push: self.push.clone(),
            caches: self.caches.clone(),
            sync: self.sync.clone(),
            shutdown: self.shutdown.clone(),
            tx,
        };
        (stream, rx)
    }
}

/// What the stream task needs of a protocol variant: state of the world
/// (`connection.rs`) or incremental (`delta.rs`).
pub(super) trait Protocol: Send + Sized + 'static {
    /// A request from the proxy.
    type Req: prost::Message + Default + Send + 'static;
    /// A response decided, not yet encoded.
    type Out: Send + 'static;
    fn node(req: &Self::Req) -> Option<&EnvoyNode>;
    fn new(node_id: String, resources: Arc<Resources>, version: String) -> Self;
    fn on_request(&mut self, req: &Self::Req) -> Option<Self::Out>;
    fn on_push(&mut self, resources: Arc<Resources>, version: String) -> Vec<Self::Out>;
    fn status(&self, connected: bool) -> SyncStatus;
}

impl Protocol for Connection {
    type Req = DiscoveryRequest;
    type Out = Outgoing;
    fn node(req: &DiscoveryRequest) -> Option<&EnvoyNode> {
        req.node.as_ref()
    }
    fn new(node_id: String, resources: Arc<Resources>, version: String) -> Self {
        Connection::new(node_id, resources, version)
    }
    fn on_request(&mut self, req: &DiscoveryRequest) -> Option<Outgoing> {
        Connection::on_request(self, req)
    }
    fn on_push(&mut self, resources: Arc<Resources>, version: String) -> Vec<Outgoing> {
        Connection::on_push(self, resources, version)
    }
    fn status(&self, connected: bool) -> SyncStatus {
        Connection::status(self, connected)
    }
}

impl Protocol for DeltaConnection {
    type Req = DeltaDiscoveryRequest;
    type Out = DeltaOutgoing;
    fn node(req: &DeltaDiscoveryRequest) -> Option<&EnvoyNode> {
        req.node.as_ref()
    }
    fn new(node_id: String, resources: Arc<Resources>, version: String) -> Self {
        DeltaConnection::new(node_id, resources, version)
    }
    fn on_request(&mut self, req: &DeltaDiscoveryRequest) -> Option<DeltaOutgoing> {
        DeltaConnection::on_request(self, req)
    }
    fn on_push(&mut self, resources: Arc<Resources>, version: String) -> Vec<DeltaOutgoing> {
        DeltaConnection::on_push(self, resources, version)
    }
    fn status(&self, connected: bool) -> SyncStatus {
        DeltaConnection::status(self, connected)
    }
}

/// What woke a stream's task.
enum Event<R> {
    Request(Box<R>),
    Push,
    Closed,
    /// A request could not be read: the stream ends with this status.
    Failed(tonic::Status),
}

/// One ADS stream's task.
pub(super) struct AdsStream<P: Protocol> {
    pub(super) id: u64,
    push: watch::Receiver<Arc<PushContext>>,
    caches: PushCaches,
    sync: SyncTable,
    shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<P::Out, Status>>,
}

impl<P: Protocol> AdsStream<P> {
    pub(super) async fn run(mut self, mut requests: Requests<P::Req>) {
        let first = match requests.next().await {
            Some(Ok(first)) => first,
            None => return,
            Some(Err(status)) => {
                // Oversized, compressed or undecodable: the proxy gets the
                // gRPC status, the log says why (without the message).
                tracing::warn!(code = ?status.code(), reason = status.message(), "refusing stream: bad first request");
                let _ = self.tx.send(Err(status)).await;
                return;
            }
        };
        let proxy = match node::to_proxy(P::node(&first)) {
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
        let mut conn = P::new(proxy.id.clone(), resources, ctx.version());
        self.sync.connect(self.id, conn.status(true));
        let mut next = Some(first);
        loop {
            let event = match next.take() {
                Some(req) => Event::Request(Box::new(req)),
                None => tokio::select! {
                    msg = requests.next() => match msg {
                        Some(Ok(req)) => Event::Request(Box::new(req)),
                        None => Event::Closed,
                        Some(Err(status)) => Event::Failed(status),
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
                Event::Failed(status) => {
                    tracing::warn!(node = %proxy.id, code = ?status.code(), reason = status.message(), "ending stream: bad request");
                    let _ = self.tx.send(Err(status)).await;
                    break;
                }
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
    async fn send(&self, resp: P::Out) -> bool {
        self.tx.send(Ok(resp)).await.is_ok()
    }
}

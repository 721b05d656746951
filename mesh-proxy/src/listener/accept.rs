//! One bound listener: its accept loop and, per connection, the original
//! destination, dispatch to the listener owning it, protocol detection, the
//! filter chain choice, the chain's TLS termination (if any) and a plain
//! `match` on the chain's network filter (ztunnel style).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::detect::{self, Detected};
use super::select::ConnectionAddresses;
use super::{select, tls, CaptureOptions};
use crate::data_plane::{DataPlane, Downstream};
use crate::hcm::{self, HttpConnection};
use crate::model::{ListenerFilter, NetworkFilter, Snapshot};
use crate::tcp_proxy;

/// A listener socket bound for one snapshot listener, by name.
pub(super) struct BoundListener {
    pub(super) name: String,
    pub(super) socket: TcpListener,
    pub(super) data_plane: Arc<DataPlane>,
    /// Where original destinations come from; how long detection waits.
    pub(super) capture: CaptureOptions,
    /// Stops accepting (and drains this listener's connections) when cancelled.
    pub(super) drain: CancellationToken,
    /// The token new connections drain on (a child of `drain`).
    pub(super) generation: watch::Receiver<CancellationToken>,
    pub(super) connections: TaskTracker,
}

impl BoundListener {
    /// Accept until drained; each connection gets its own task and span.
    pub(super) async fn run(self) {
        loop {
            let accepted = tokio::select! {
                () = self.drain.cancelled() => break,
                accepted = self.socket.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE or a connection reset before accept;
                    // back off a little rather than spin.
                    tracing::warn!(listener = %self.name, %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = self
                .data_plane
                .downstream_connections
                .clone()
                .try_acquire_owned()
            else {
                // Envoy's global_downstream_max_connections: refuse at accept.
                let before = self
                    .data_plane
                    .downstream_overflow
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if before.is_power_of_two() || before == 0 {
                    tracing::warn!(
                        listener = %self.name,
                        %peer,
                        limit = self.data_plane.max_downstream_connections,
                        refused = before + 1,
                        "downstream connection limit reached; closing new connections"
                    );
                }
                drop(stream);
                continue;
            };
            // Small writes (HTTP/2 frames, gRPC messages) go out at once
            // instead of waiting ~40 ms for the peer's delayed ACK, as on
            // the upstream side (`upstream/mod.rs`).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
            let local = match stream.local_addr() {
                Ok(local) => local,
                Err(error) => {
                    tracing::debug!(%error, "connection gone before it was served");
                    continue;
                }
            };
            let downstream = Downstream {
                peer,
                local,
                original_dst: local,
                tls: None,
            };
            let span = tracing::debug_span!("connection", listener = %self.name, %peer);
            let serve = serve_connection(
                self.data_plane.clone(),
                self.capture,
                self.name.clone(),
                stream,
                downstream,
                self.generation.borrow().clone(),
            );
            self.connections.spawn(
                async move {
                    serve.await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        tracing::debug!(listener = %self.name, "stopped accepting");
    }
}

/// Serve one connection with the config of the snapshot current now:
/// original destination, dispatch, detection, chain, filter.
async fn serve_connection(
    data_plane: Arc<DataPlane>,
    capture: CaptureOptions,
    listener_name: String,
    stream: TcpStream,
    mut downstream: Downstream,
    drain: CancellationToken,
) {
    let snapshot = data_plane.store.load();
    let Some(accepting) = snapshot.listeners.get(&listener_name) else {
        tracing::debug!("listener no longer configured; closing");
        return;
    };
    // As in Envoy: the original_dst listener filter restores the original
    // destination (for chain matching and ORIGINAL_DST clusters);
    // `use_original_dst` additionally hands the connection to the listener
    // owning that destination (select::dispatch).
    if accepting.use_original_dst
        || accepting
            .listener_filters
            .contains(&ListenerFilter::OriginalDst)
    {
        downstream.original_dst = capture.original_dst.lookup(&stream, downstream.local);
    }
    let listener = select::dispatch(
        &snapshot,
        accepting,
        downstream.original_dst,
        downstream.local,
    );
    if listener.name != accepting.name {
        tracing::debug!(original_dst = %downstream.original_dst, to = %listener.name, "dispatched");
    }
    let detected = if select::needs_detection(listener, downstream.original_dst) {
        let timeout = capture.detection_timeout;
        let detected = tokio::select! {
            detected = detect::detect(&stream, timeout) => detected,
            () = drain.cancelled() => {
                tracing::debug!("draining during protocol detection; closing");
                return;
            }
        };
        tracing::trace!(?detected, "detected");
        detected
    } else {
        Detected::raw()
    };
    let addresses = ConnectionAddresses {
        destination: downstream.original_dst,
        source: downstream.peer,
        local: downstream.local,
    };
    let Some(chain) = select::select_chain(listener, &addresses, &detected) else {
        tracing::debug!(listener = %listener.name, "no filter chain matches; closing");
        return;
    };
    let filter = chain.filter.clone();
    let Some(server_tls) = chain.tls.clone() else {
        run_filter(data_plane, snapshot, filter, stream, downstream, drain).await;
        return;
    };
    let handshake = tokio::select! {
        handshake = tls::accept(&server_tls, stream) => handshake,
        () = drain.cancelled() => {
            tracing::debug!("draining during the TLS handshake; closing");
            return;
        }
    };
    match handshake {
        Ok((tls_stream, negotiated)) => {
            tracing::debug!(sni = ?negotiated.server_name, alpn = ?negotiated.alpn, "TLS terminated");
            downstream.tls = Some(negotiated);
            run_filter(data_plane, snapshot, filter, tls_stream, downstream, drain).await;
        }
        Err(error) => tracing::debug!(%error, "TLS handshake failed; closing"),
    }
}

/// Hand the connection (plaintext or decrypted) to the chain's network
/// filter: a plain `match`, ztunnel style.
async fn run_filter<S>(
    data_plane: Arc<DataPlane>,
    snapshot: Arc<Snapshot>,
    filter: NetworkFilter,
    stream: S,
    downstream: Downstream,
    drain: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match filter {
        NetworkFilter::Http(hcm) => {
            let conn = HttpConnection {
                data_plane: data_plane.clone(),
                hcm,
                downstream,
            };
            drop(snapshot);
            hcm::serve(stream, conn, drain).await;
        }
        NetworkFilter::Tcp(tcp_proxy) => {
            // The cluster comes from the same snapshot as the chain naming it.
            tcp_proxy::relay(&data_plane, snapshot, &tcp_proxy, stream, downstream, drain).await;
        }
    }
}

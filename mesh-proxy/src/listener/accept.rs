//! One bound listener: its accept loop and, per connection, the filter chain
//! choice and a plain `match` on the chain's network filter (ztunnel style).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{tcp, DataPlane, Downstream};
use crate::http::{self, HttpConnection};
use crate::model::{FilterChain, Listener, NetworkFilter};

/// A listener socket bound for one snapshot listener, by name.
pub(super) struct BoundListener {
    pub(super) name: String,
    pub(super) socket: TcpListener,
    pub(super) data_plane: Arc<DataPlane>,
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
            };
            let span = tracing::debug_span!("connection", listener = %self.name, %peer);
            self.connections.spawn(
                serve_connection(
                    self.data_plane.clone(),
                    self.name.clone(),
                    stream,
                    downstream,
                    self.generation.borrow().clone(),
                )
                .instrument(span),
            );
        }
        tracing::debug!(listener = %self.name, "stopped accepting");
    }
}

/// Serve one connection with the config of the snapshot current now.
async fn serve_connection(
    data_plane: Arc<DataPlane>,
    listener_name: String,
    stream: TcpStream,
    downstream: Downstream,
    drain: CancellationToken,
) {
    let snapshot = data_plane.store.load();
    let Some(listener) = snapshot.listeners.get(&listener_name) else {
        tracing::debug!("listener no longer configured; closing");
        return;
    };
    let Some(chain) = select_filter_chain(listener, downstream.original_dst) else {
        tracing::debug!("no filter chain matches; closing");
        return;
    };
    match &chain.filter {
        NetworkFilter::Http(hcm) => {
            let conn = HttpConnection {
                data_plane: data_plane.clone(),
                hcm: hcm.clone(),
                downstream,
            };
            drop(snapshot);
            http::serve(stream, conn, drain).await;
        }
        NetworkFilter::Tcp(tcp_proxy) => {
            let tcp_proxy = tcp_proxy.clone();
            drop(snapshot);
            tcp::relay(&data_plane, &tcp_proxy, stream, downstream, drain).await;
        }
    }
}

/// The first filter chain whose match holds for a plaintext connection to
/// `destination`, else the default chain.
///
/// Without TLS inspection or protocol sniffing, a chain that wants SNI names
/// or TLS never matches, and `application_protocols` are not checked (both
/// HTTP versions are served by one chain anyway).
pub fn select_filter_chain(listener: &Listener, destination: SocketAddr) -> Option<&FilterChain> {
    listener
        .filter_chains
        .iter()
        .find(|chain| {
            let m = &chain.matcher;
            m.destination_port
                .is_none_or(|port| port == destination.port())
                && m.server_names.is_empty()
                && m.transport_protocol
                    .as_deref()
                    .is_none_or(|t| t == "raw_buffer")
        })
        .or(listener.default_filter_chain.as_ref())
}

//! The `tcp_proxy` network filter (listener ─► **tcp_proxy** ─► cluster ─►
//! endpoint): pick a cluster (weighted targets too) and an endpoint, dial
//! it, and relay bytes both ways until either side closes.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{DataPlane, Downstream};
use crate::cluster::{choose_cluster, Picked};
use crate::error::ProxyError;
use crate::model::TcpProxy;

/// How long a relay may go on after its listener started draining. TCP has
/// no way to ask a peer to finish, so after this the connection is closed.
pub const TCP_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Relay one downstream connection to an endpoint of the filter's cluster.
pub async fn relay(
    data_plane: &DataPlane,
    filter: &TcpProxy,
    mut downstream_stream: TcpStream,
    downstream: Downstream,
    drain: CancellationToken,
) {
    // The endpoint counts as busy (least-request) for the relay's lifetime.
    let (mut upstream, _endpoint) = match connect(data_plane, filter, downstream).await {
        Ok(connected) => connected,
        Err(error) => {
            // Closing the downstream is all TCP can say about it.
            tracing::debug!(%error, side = ?error.source_side(), "tcp_proxy: no upstream");
            return;
        }
    };
    let draining = async {
        drain.cancelled().await;
        tokio::time::sleep(TCP_DRAIN_GRACE).await;
    };
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut downstream_stream, &mut upstream) => {
            match result {
                Ok((sent, received)) => tracing::debug!(sent, received, "tcp_proxy: closed"),
                Err(error) => tracing::debug!(%error, "tcp_proxy: relay ended"),
            }
        }
        () = draining => tracing::debug!("tcp_proxy: drained"),
    }
}

async fn connect(
    data_plane: &DataPlane,
    filter: &TcpProxy,
    downstream: Downstream,
) -> Result<(TcpStream, Picked), ProxyError> {
    let snapshot = data_plane.store.load();
    let cluster_name = choose_cluster(&filter.destination);
    let cluster = snapshot
        .clusters
        .get(cluster_name)
        .ok_or_else(|| ProxyError::ClusterNotFound(cluster_name.to_owned()))?;
    let endpoint = data_plane
        .clusters
        .pick(
            &snapshot,
            cluster,
            downstream.original_dst,
            downstream.local,
        )
        .await?;
    let stream = crate::upstream::connect(
        endpoint.address,
        cluster.connect_timeout,
        cluster.upstream_bind,
    )
    .await
    .map_err(|error| ProxyError::UpstreamConnect {
        addr: endpoint.address,
        source: Box::new(error),
    })?;
    Ok((stream, endpoint))
}

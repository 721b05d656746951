//! The `tcp_proxy` network filter, beside the HCM at the end of a filter
//! chain (listener ─► HCM | **tcp_proxy** ─► cluster ─► upstream): pick a
//! cluster (weighted targets too) and an endpoint, dial it, and relay bytes
//! both ways until either side closes.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::cluster::{choose_cluster, PickContext, Picked};
use crate::data_plane::{DataPlane, Downstream};
use crate::error::ProxyError;
use crate::model::{Snapshot, TcpProxy};

/// How long a relay may go on after its listener started draining. TCP has
/// no way to ask a peer to finish, so after this the connection is closed.
pub const TCP_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Relay one downstream connection to an endpoint of the filter's cluster.
///
/// `snapshot` is the one the connection's filter chain came from: the
/// cluster is looked up in it too, and it is let go once connected.
pub async fn relay<D>(
    data_plane: &DataPlane,
    snapshot: Arc<Snapshot>,
    filter: &TcpProxy,
    mut downstream_stream: D,
    downstream: Downstream,
    drain: CancellationToken,
) where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let connected = connect(data_plane, &snapshot, filter, downstream).await;
    drop(snapshot);
    // The endpoint counts as busy (least-request) for the relay's lifetime.
    let (mut upstream, _endpoint) = match connected {
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
    snapshot: &Snapshot,
    filter: &TcpProxy,
    downstream: Downstream,
) -> Result<(TcpStream, Picked), ProxyError> {
    let cluster_name = choose_cluster(&filter.destination);
    let cluster = snapshot
        .clusters
        .get(cluster_name)
        .ok_or_else(|| ProxyError::ClusterNotFound(cluster_name.to_owned()))?;
    let endpoint = data_plane
        .clusters
        .pick(
            snapshot,
            cluster,
            &PickContext::new(downstream.original_dst, downstream.local),
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::model::{Cluster, ClusterTarget, Discovery, Endpoint, LbPolicy, SnapshotStore};

    #[tokio::test]
    async fn relays_with_the_snapshot_of_its_chain_not_a_newer_one() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut snapshot = Snapshot::default();
        let cluster = Cluster {
            name: "c".into(),
            discovery: Discovery::Static(vec![Endpoint {
                address: upstream.local_addr().unwrap(),
                weight: 1,
            }]),
            lb_policy: LbPolicy::RoundRobin,
            connect_timeout: Duration::from_secs(5),
            http2: false,
            upstream_bind: None,
        };
        snapshot.clusters.insert("c".into(), Arc::new(cluster));
        // The store has moved on (here: to an empty snapshot) since the
        // connection's chain was chosen.
        let data_plane = DataPlane::new(Arc::new(SnapshotStore::new()));
        let filter = TcpProxy {
            stat_prefix: "c".into(),
            destination: ClusterTarget::Cluster("c".into()),
        };
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, peer) = front.accept().await.unwrap();
        let local = accepted.local_addr().unwrap();
        let downstream = Downstream {
            peer,
            local,
            original_dst: local,
            tls: None,
        };
        let relay = tokio::spawn(async move {
            let snapshot = Arc::new(snapshot);
            relay(
                &data_plane,
                snapshot,
                &filter,
                accepted,
                downstream,
                CancellationToken::new(),
            )
            .await;
        });
        let (mut server, _) = tokio::time::timeout(Duration::from_secs(5), upstream.accept())
            .await
            .expect("the relay dials the cluster of its own snapshot")
            .unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        drop((client, server));
        relay.await.unwrap();
    }
}

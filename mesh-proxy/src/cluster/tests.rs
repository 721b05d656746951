//! Tests of the cluster manager: discovery, swaps, original destination.

use super::*;
use crate::model::{Endpoint, WeightedCluster};

fn cluster(name: &str, discovery: Discovery) -> Cluster {
    Cluster::new(name, discovery)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn weighted_choice_follows_weights() {
    let target = ClusterTarget::Weighted(vec![
        WeightedCluster {
            name: "a".into(),
            weight: 80,
        },
        WeightedCluster {
            name: "b".into(),
            weight: 20,
        },
        WeightedCluster {
            name: "never".into(),
            weight: 0,
        },
    ]);
    let a = (0..10_000)
        .filter(|_| choose_cluster(&target) == "a")
        .count();
    assert!((7_700..8_300).contains(&a), "{a}");
    assert_eq!(choose_cluster(&ClusterTarget::Weighted(vec![])), "");
}

#[tokio::test]
async fn eds_endpoints_come_from_the_snapshot_and_state_survives_swaps() {
    let manager = ClusterManager::new();
    let eds = cluster(
        "c",
        Discovery::Eds {
            service_name: "c".into(),
        },
    );
    let mut snapshot = Snapshot::default();
    snapshot.clusters.insert("c".into(), Arc::new(eds.clone()));
    let listener = addr(15001);
    let picked = manager
        .pick(&snapshot, &eds, &PickContext::new(listener, listener))
        .await;
    assert!(matches!(picked, Err(ProxyError::NoHealthyUpstream(_))));

    let assignment = LoadAssignment::new(
        "c",
        vec![Endpoint::new(addr(1), 1), Endpoint::new(addr(2), 1)],
    );
    snapshot.endpoints.insert("c".into(), Arc::new(assignment));
    let first = manager
        .pick(&snapshot, &eds, &PickContext::new(listener, listener))
        .await
        .unwrap();
    // A new snapshot with the same content: round robin continues.
    let swapped = snapshot.clone();
    let second = manager
        .pick(&swapped, &eds, &PickContext::new(listener, listener))
        .await
        .unwrap();
    assert_ne!(first.address, second.address);
}

#[tokio::test]
async fn original_dst_refuses_to_loop() {
    let manager = ClusterManager::new();
    let passthrough = cluster("PassthroughCluster", Discovery::OriginalDst);
    let snapshot = Snapshot::default();
    let looped = manager
        .pick(
            &snapshot,
            &passthrough,
            &PickContext::new(addr(80), addr(80)),
        )
        .await;
    assert!(matches!(looped, Err(ProxyError::OriginalDstLoop(_))));
    let real = manager
        .pick(
            &snapshot,
            &passthrough,
            &PickContext::new(addr(9), addr(80)),
        )
        .await;
    assert_eq!(real.unwrap().address, addr(9));
}

#[tokio::test]
async fn original_dst_refuses_only_our_own_listener_sockets() {
    use crate::model::Listener;
    let manager = ClusterManager::new();
    let passthrough = cluster("PassthroughCluster", Discovery::OriginalDst);
    let mut snapshot = Snapshot::default();
    let listener = |name: &str, address: &str, bind_to_port: bool| Listener {
        name: name.into(),
        address: address.parse().unwrap(),
        bind_to_port,
        use_original_dst: false,
        listener_filters: vec![],
        traffic_direction: None,
        filter_chains: vec![],
        default_filter_chain: None,
    };
    for l in [
        listener("virtualOutbound", "0.0.0.0:15001", true),
        listener("admin-ish", "127.0.0.1:15080", true),
        listener("0.0.0.0_9080", "0.0.0.0:9080", false),
    ] {
        snapshot.listeners.insert(l.name.clone(), Arc::new(l));
    }
    let local: SocketAddr = "127.0.0.1:15001".parse().unwrap();
    let pick = |dst: &str| {
        let dst: SocketAddr = dst.parse().unwrap();
        let (manager, snapshot, passthrough) = (&manager, &snapshot, &passthrough);
        async move {
            manager
                .pick(snapshot, passthrough, &PickContext::new(dst, local))
                .await
        }
    };
    for own in ["127.0.0.1:15001", "127.0.0.2:15001", "127.0.0.1:15080"] {
        let looped = pick(own).await;
        assert!(
            matches!(looped, Err(ProxyError::OriginalDstLoop(_))),
            "{own}"
        );
    }
    // A remote port that a wildcard listener of ours happens to use, and
    // a port only a bind_to_port=false listener dispatches for.
    for remote in ["198.19.0.3:15001", "198.19.0.3:9080", "127.0.0.1:9080"] {
        let picked = pick(remote).await.unwrap();
        assert_eq!(picked.address.to_string(), remote);
    }
}

//! The cluster stage of the data path (router / tcp_proxy ─► **cluster** ─►
//! upstream pool): pick one cluster of a weighted target, find its endpoints
//! (EDS, static, DNS or the original destination) and load-balance to one.
//!
//! [`ClusterManager`] is owned by the data plane, not by the snapshot: its
//! per-cluster [`lb::LoadBalancer`]s are keyed by cluster name and outlive
//! snapshot swaps.

pub mod dns;
pub mod lb;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::error::ProxyError;
use crate::model::{Cluster, ClusterTarget, Discovery, Endpoint, Snapshot};

pub use lb::{LoadBalancer, Outcome, Picked};

/// What the cluster stage needs to know of the request or connection it
/// picks an endpoint for.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// Where the client meant to connect (ORIGINAL_DST clusters dial it).
    pub original_dst: SocketAddr,
    /// The local address the downstream connection was accepted on.
    pub listener: SocketAddr,
    /// The request's consistent-hash key (the route's `hash_policy`), for
    /// RING_HASH and MAGLEV clusters.
    pub hash: Option<u64>,
    /// Endpoints already tried by earlier attempts of this request, to
    /// avoid when another one is available (`previous_hosts`).
    pub avoid: &'a [SocketAddr],
}

impl PickContext<'_> {
    /// The context of a connection with no hash key and nothing to avoid.
    pub fn new(original_dst: SocketAddr, listener: SocketAddr) -> PickContext<'static> {
        PickContext {
            original_dst,
            listener,
            hash: None,
            avoid: &[],
        }
    }
}

/// Admission of one retry against the cluster's `max_retries` circuit
/// breaker; the retry counts as active until it is dropped.
#[derive(Debug)]
pub struct RetryGuard {
    _private: (),
}

/// Choose the cluster name of a target: the cluster itself, or one arm of a
/// weighted choice with probability weight / total. An empty choice yields
/// `""`, which no cluster is named, so the caller answers "cluster not found".
pub fn choose_cluster(target: &ClusterTarget) -> &str {
    match target {
        ClusterTarget::Cluster(name) => name,
        ClusterTarget::Weighted(arms) => {
            let total: u64 = arms.iter().map(|arm| u64::from(arm.weight)).sum();
            if total == 0 {
                return arms.first().map_or("", |arm| arm.name.as_str());
            }
            let mut point = rand::rng().random_range(0..total);
            for arm in arms {
                let weight = u64::from(arm.weight);
                if point < weight {
                    return &arm.name;
                }
                point -= weight;
            }
            arms.last().map_or("", |arm| arm.name.as_str())
        }
    }
}

/// Endpoint discovery and load balancing for all clusters.
#[derive(Debug, Default)]
pub struct ClusterManager {
    balancers: Mutex<HashMap<String, Arc<LoadBalancer>>>,
    dns: dns::DnsCache,
}

impl ClusterManager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pick the endpoint for one request or connection to `cluster`.
    pub async fn pick(
        &self,
        snapshot: &Snapshot,
        cluster: &Cluster,
        ctx: &PickContext<'_>,
    ) -> Result<Picked, ProxyError> {
        let endpoints = self
            .endpoints(snapshot, cluster, ctx.original_dst, ctx.listener)
            .await?;
        self.balancer(&cluster.name)
            .pick(cluster.lb_policy, &endpoints)
            .ok_or_else(|| ProxyError::NoHealthyUpstream(cluster.name.clone()))
    }

    /// The endpoints of `cluster` right now.
    async fn endpoints<'a>(
        &self,
        snapshot: &'a Snapshot,
        cluster: &'a Cluster,
        original_dst: SocketAddr,
        listener_addr: SocketAddr,
    ) -> Result<Cow<'a, [Endpoint]>, ProxyError> {
        Ok(match &cluster.discovery {
            Discovery::Eds { service_name } => match snapshot.endpoints.get(service_name) {
                Some(assignment) => Cow::Borrowed(assignment.endpoints.as_slice()),
                None => Cow::Borrowed(&[]),
            },
            Discovery::Static(endpoints) => Cow::Borrowed(endpoints.as_slice()),
            Discovery::StrictDns(hosts) => Cow::Owned(self.dns.resolve(hosts).await),
            Discovery::OriginalDst => {
                // Without capture the original destination is the listener
                // itself; dialling one of our own sockets would loop
                // through us without end.
                if is_own_socket(snapshot, original_dst, listener_addr) {
                    return Err(ProxyError::OriginalDstLoop(original_dst));
                }
                Cow::Owned(vec![Endpoint {
                    address: original_dst,
                    weight: 1,
                }])
            }
        })
    }

    /// Admit one retry of a request to `cluster` (its `max_retries` circuit
    /// breaker).
    pub fn begin_retry(&self, _cluster: &Cluster) -> Result<RetryGuard, ProxyError> {
        Ok(RetryGuard { _private: () })
    }

    /// The balancer of a cluster name, made on first use.
    pub fn balancer(&self, cluster: &str) -> Arc<LoadBalancer> {
        let mut balancers = self.lock();
        if let Some(lb) = balancers.get(cluster) {
            return lb.clone();
        }
        let lb = Arc::new(LoadBalancer::default());
        balancers.insert(cluster.to_owned(), lb.clone());
        lb
    }

    /// Forget balancers of clusters that the snapshot no longer has.
    pub fn retain(&self, snapshot: &Snapshot) {
        self.lock()
            .retain(|name, _| snapshot.clusters.contains_key(name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadBalancer>>> {
        self.balancers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `destination` is a socket this proxy listens on: the one the
/// connection came in on, or a bound listener of the snapshot (a wildcard
/// listener counts for loopback and for the local address).
pub fn is_own_socket(snapshot: &Snapshot, destination: SocketAddr, local: SocketAddr) -> bool {
    destination == local
        || snapshot
            .listeners
            .values()
            .filter(|l| l.bind_to_port)
            .any(|l| {
                l.address == destination
                    || (l.address.ip().is_unspecified()
                        && l.address.port() == destination.port()
                        && (destination.ip().is_loopback() || destination.ip() == local.ip()))
            })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{LbPolicy, LoadAssignment, WeightedCluster};

    fn cluster(name: &str, discovery: Discovery) -> Cluster {
        Cluster {
            name: name.into(),
            discovery,
            lb_policy: LbPolicy::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            http2: false,
            upstream_bind: None,
        }
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

        let assignment = LoadAssignment {
            cluster_name: "c".into(),
            endpoints: vec![
                Endpoint {
                    address: addr(1),
                    weight: 1,
                },
                Endpoint {
                    address: addr(2),
                    weight: 1,
                },
            ],
        };
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
}

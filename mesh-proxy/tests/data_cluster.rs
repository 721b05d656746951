//! The cluster stage on loopback: outlier ejection and return, priority
//! failover and panic, locality weights, consistent hashing, slow start,
//! DNS discovery (LOGICAL_DNS, timeouts, last good answer) and what state
//! survives a snapshot swap.

mod data_common;
mod upstream_support;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use data_common::*;
use mesh_proxy::cluster::dns::{Answer, Lookup, Resolver};
use mesh_proxy::cluster::{ClusterManager, PickContext};
use mesh_proxy::data_plane::DataPlane;
use mesh_proxy::error::ProxyError;
use mesh_proxy::model::*;
use mesh_proxy::upstream::UpstreamPool;
use upstream_support::*;

fn any() -> SocketAddr {
    ([127, 0, 0, 1], 1).into()
}

fn outlier() -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: 3,
        interval: Duration::from_secs(10),
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
        ..OutlierDetection::default()
    }
}

fn snapshot_of(cluster: Cluster, assignment: LoadAssignment) -> (Snapshot, Cluster) {
    let mut snapshot = Snapshot::default();
    snapshot
        .clusters
        .insert(cluster.name.clone(), Arc::new(cluster.clone()));
    snapshot
        .endpoints
        .insert(cluster.name.clone(), Arc::new(assignment));
    (snapshot, cluster)
}

#[tokio::test(start_paused = true)]
async fn a_5xx_endpoint_is_ejected_and_returns_after_base_ejection_time() {
    let (good, _) = http_server("good", [127, 0, 0, 1]).await;
    let (bad, bad_stats) = http_server("bad", [127, 0, 0, 1]).await;
    let cluster = Cluster {
        outlier_detection: Some(outlier()),
        ..eds_cluster("c")
    };
    let (snapshot, cluster) =
        snapshot_of(cluster, LoadAssignment::new("c", endpoints(&[good, bad])));
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    // "bad" answers 503 to /status/503 paths; "good" answers them too, so
    // send per-server paths: good always 200.
    let path = |name: &str| if name == "bad" { "/status/503" } else { "/" };
    let mut seen_bad = 0;
    for _ in 0..6 {
        // Round robin alternates; bad fails each time it is picked.
        let picked = manager
            .pick(&snapshot, &cluster, &PickContext::new(any(), any()))
            .await
            .unwrap();
        let name = if picked.address == bad { "bad" } else { "good" };
        let response = pool
            .send(&picked, &cluster, request_to(path(name), false))
            .await
            .unwrap();
        picked.report(mesh_proxy::cluster::Outcome::Status(
            response.status().as_u16(),
        ));
        if name == "bad" {
            seen_bad += 1;
        }
    }
    assert_eq!(seen_bad, 3, "three 503s in a row eject it");
    let before = bad_stats.get(&bad_stats.requests);
    for _ in 0..10 {
        let (status, name) = attempt(&manager, &pool, &snapshot, &cluster, "/")
            .await
            .unwrap();
        assert_eq!((status, name.as_str()), (200, "good"));
    }
    assert_eq!(
        bad_stats.get(&bad_stats.requests),
        before,
        "ejected: no traffic"
    );
    // Ejected at ~0 s for 30 s; the sweep at 30 s lets it back.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let names: Vec<String> = futures::future::join_all(
        (0..4).map(|_| attempt(&manager, &pool, &snapshot, &cluster, "/")),
    )
    .await
    .into_iter()
    .map(|r| r.unwrap().1)
    .collect();
    assert!(
        names.iter().any(|n| n == "bad"),
        "back in rotation: {names:?}"
    );
}

#[tokio::test]
async fn all_endpoints_ejected_is_no_healthy_upstream_naming_the_rule() {
    let (a, _) = http_server("a", [127, 0, 0, 1]).await;
    let (b, _) = http_server("b", [127, 0, 0, 1]).await;
    let mut cluster = Cluster {
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx: 1,
            ..outlier()
        }),
        ..eds_cluster("outbound|9080||reviews.default.svc.cluster.local")
    };
    // Istio disables panic mode (minHealthPercent 0) with outlier detection.
    cluster.lb.healthy_panic_threshold = 0.0;
    cluster.metadata.config =
        Some("/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews".into());
    let name = cluster.name.clone();
    let (snapshot, cluster) = snapshot_of(
        cluster,
        LoadAssignment::new(name.clone(), endpoints(&[a, b])),
    );
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    for _ in 0..2 {
        let (status, _) = attempt(&manager, &pool, &snapshot, &cluster, "/status/500")
            .await
            .unwrap();
        assert_eq!(status, 500);
    }
    let error = attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::EjectedUpstream { .. }));
    assert_eq!(
        error.reason(),
        format!(
            "UH no healthy upstream: {name} (2 of 2 endpoints ejected by outlier detection: \
             DestinationRule default/reviews)"
        )
    );
    assert_eq!(error.body(), "no healthy upstream");
}

#[tokio::test]
async fn priority_failover_and_panic_threshold() {
    let (p0a, _) = http_server("p0a", [127, 0, 0, 1]).await;
    let (p0b, _) = http_server("p0b", [127, 0, 0, 1]).await;
    let (p1, _) = http_server("p1", [127, 0, 0, 1]).await;
    let assignment = |p0_healthy: bool| {
        let mut a = LoadAssignment::new(
            "c",
            vec![
                Endpoint::new(p0a, 1),
                Endpoint::new(p0b, 1),
                Endpoint {
                    priority: 1,
                    ..Endpoint::new(p1, 1)
                },
            ],
        );
        a.endpoints[0].healthy = p0_healthy;
        a.endpoints[1].healthy = p0_healthy;
        a
    };
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    let count = |names: Vec<String>, name: &str| names.iter().filter(|n| *n == name).count();
    let run = |snapshot: Snapshot, cluster: Cluster| {
        let (manager, pool) = (&manager, &pool);
        async move {
            let mut names = Vec::new();
            for _ in 0..40 {
                names.push(
                    attempt(manager, pool, &snapshot, &cluster, "/")
                        .await
                        .unwrap()
                        .1,
                );
            }
            names
        }
    };
    // Priority 0 healthy: it takes everything.
    let (snapshot, cluster) = snapshot_of(eds_cluster("c"), assignment(true));
    let names = run(snapshot, cluster).await;
    assert_eq!(count(names, "p1"), 0);
    // Priority 0 all unhealthy: everything fails over to priority 1.
    let (snapshot, cluster) = snapshot_of(eds_cluster("c"), assignment(false));
    let names = run(snapshot, cluster).await;
    assert_eq!(count(names, "p1"), 40);
    // Only priority 1 left and it is unhealthy too: below the panic
    // threshold every host of priority 0 is tried, healthy or not.
    let mut all_down = assignment(false);
    all_down.endpoints[2].healthy = false;
    let (snapshot, cluster) = snapshot_of(eds_cluster("c"), all_down.clone());
    let names = run(snapshot, cluster).await;
    assert_eq!(
        count(names.clone(), "p0a") + count(names, "p0b"),
        40,
        "panic"
    );
    // With panic disabled there is nothing to send to.
    let mut no_panic = eds_cluster("c");
    no_panic.lb.healthy_panic_threshold = 0.0;
    let (snapshot, cluster) = snapshot_of(no_panic, all_down);
    let error = attempt(&manager, &pool, &snapshot, &cluster, "/")
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::NoHealthyUpstream(_)), "{error}");
}

#[tokio::test]
async fn locality_weights_share_traffic() {
    let (a, _) = http_server("zone-a", [127, 0, 0, 1]).await;
    let (b, _) = http_server("zone-b", [127, 0, 0, 1]).await;
    let mut assignment = LoadAssignment::new(
        "c",
        vec![
            Endpoint::new(a, 1),
            Endpoint {
                locality: 1,
                ..Endpoint::new(b, 1)
            },
        ],
    );
    assignment.localities = vec![
        LocalityLb {
            zone: "a".into(),
            weight: 4,
            ..LocalityLb::default()
        },
        LocalityLb {
            zone: "b".into(),
            weight: 1,
            ..LocalityLb::default()
        },
    ];
    let mut cluster = eds_cluster("c");
    cluster.lb.locality_weighted = true;
    let (snapshot, cluster) = snapshot_of(cluster, assignment);
    let manager = ClusterManager::new();
    let pool = UpstreamPool::new();
    let mut zone_a = 0;
    for _ in 0..50 {
        if attempt(&manager, &pool, &snapshot, &cluster, "/")
            .await
            .unwrap()
            .1
            == "zone-a"
        {
            zone_a += 1;
        }
    }
    assert_eq!(zone_a, 40, "4:1");
}

#[tokio::test]
async fn ring_hash_and_maglev_stick_to_a_key_and_spread_keys() {
    let servers: Vec<SocketAddr> =
        futures::future::join_all((0..4).map(|_| http_server("s", [127, 0, 0, 1])))
            .await
            .into_iter()
            .map(|(a, _)| a)
            .collect();
    for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
        let cluster = Cluster {
            lb_policy: policy,
            ..eds_cluster("c")
        };
        let (snapshot, cluster) =
            snapshot_of(cluster, LoadAssignment::new("c", endpoints(&servers)));
        let manager = ClusterManager::new();
        let pick = |hash: u64| {
            let ctx = PickContext {
                hash: Some(hash),
                ..PickContext::new(any(), any())
            };
            let (manager, snapshot, cluster) = (&manager, &snapshot, &cluster);
            async move { manager.pick(snapshot, cluster, &ctx).await.unwrap().address }
        };
        let mut spread: HashMap<SocketAddr, usize> = HashMap::new();
        for key in 0..400u64 {
            let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let first = pick(hash).await;
            assert_eq!(pick(hash).await, first, "{policy:?}: same key, same host");
            *spread.entry(first).or_default() += 1;
        }
        assert_eq!(spread.len(), 4, "{policy:?}: {spread:?}");
        assert!(spread.values().all(|n| *n >= 40), "{policy:?}: {spread:?}");
        // Avoiding the host a key maps to moves the retry elsewhere.
        let hash = 42u64;
        let first = pick(hash).await;
        let ctx = PickContext {
            hash: Some(hash),
            avoid: &[first],
            ..PickContext::new(any(), any())
        };
        let retry = manager.pick(&snapshot, &cluster, &ctx).await.unwrap();
        assert_ne!(retry.address, first, "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_start_ramps_a_new_endpoint_over_its_window() {
    let old: SocketAddr = "127.0.0.1:9001".parse().unwrap();
    let new: SocketAddr = "127.0.0.1:9002".parse().unwrap();
    let mut cluster = eds_cluster("c");
    cluster.lb.slow_start = Some(SlowStart {
        window: Duration::from_secs(60),
        aggression: 1.0,
        min_weight: 0.1,
    });
    let manager = ClusterManager::new();
    let share_of_new = |snapshot: Snapshot, cluster: Cluster| {
        let manager = &manager;
        async move {
            let mut n = 0;
            for _ in 0..1000 {
                let ctx = PickContext::new(any(), any());
                if manager
                    .pick(&snapshot, &cluster, &ctx)
                    .await
                    .unwrap()
                    .address
                    == new
                {
                    n += 1;
                }
            }
            n as f64 / 1000.0
        }
    };
    // The first list: no slow start for its hosts.
    let (snapshot, cluster) = snapshot_of(cluster, LoadAssignment::new("c", endpoints(&[old])));
    manager
        .pick(&snapshot, &cluster, &PickContext::new(any(), any()))
        .await
        .unwrap();
    // A host joins: it starts at min_weight (0.1 of 1.1) ...
    let (snapshot, cluster) =
        snapshot_of(cluster, LoadAssignment::new("c", endpoints(&[old, new])));
    let start = share_of_new(snapshot.clone(), cluster.clone()).await;
    assert!((0.07..0.12).contains(&start), "{start}");
    // ... is at half weight halfway ...
    tokio::time::advance(Duration::from_secs(30)).await;
    let half = share_of_new(snapshot.clone(), cluster.clone()).await;
    assert!((0.30..0.37).contains(&half), "{half}");
    // ... and at full weight after the window.
    tokio::time::advance(Duration::from_secs(31)).await;
    let full = share_of_new(snapshot, cluster).await;
    assert!((0.48..0.52).contains(&full), "{full}");
}

/// A resolver answering from a table the test changes; hosts missing from
/// it never answer.
#[derive(Debug, Default)]
struct FakeResolver {
    answers: Mutex<HashMap<String, io::Result<Vec<IpAddr>>>>,
    lookups: std::sync::atomic::AtomicUsize,
}

impl FakeResolver {
    fn set(&self, host: &str, answer: io::Result<Vec<&str>>) {
        let answer = answer.map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect());
        self.answers.lock().unwrap().insert(host.into(), answer);
    }
}

impl Resolver for FakeResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = match self.answers.lock().unwrap().get(host) {
            Some(Ok(ips)) => Some(Ok(ips.clone())),
            Some(Err(e)) => Some(Err(io::Error::new(e.kind(), e.to_string()))),
            None => None,
        };
        Box::pin(async move {
            match answer {
                Some(result) => result.map(|addresses| Answer {
                    addresses,
                    ttl: None,
                }),
                None => std::future::pending().await,
            }
        })
    }
}

fn dns_cluster(name: &str, logical: bool, host: &str, port: u16) -> Cluster {
    let dns = DnsDiscovery {
        hosts: vec![DnsHost {
            host: host.into(),
            port,
            weight: 1,
            priority: 0,
            locality: 0,
        }],
        localities: vec![LocalityLb::default()],
        refresh_rate: Duration::from_secs(5),
        respect_ttl: false,
        family: DnsLookupFamily::V4Only,
        timeout: Duration::from_secs(5),
    };
    let discovery = if logical {
        Discovery::LogicalDns(dns)
    } else {
        Discovery::StrictDns(dns)
    };
    Cluster::new(name, discovery)
}

#[tokio::test]
async fn logical_dns_uses_the_first_address_of_the_latest_answer() {
    let (first, _) = http_server("first", [127, 0, 0, 2]).await;
    let resolver = Arc::new(FakeResolver::default());
    resolver.set("db.example", Ok(vec!["127.0.0.2", "127.0.0.3", "::1"]));
    let manager = ClusterManager::with_resolver(resolver.clone());
    let pool = UpstreamPool::new();
    let snapshot = Snapshot::default();
    let logical = dns_cluster("logical", true, "db.example", first.port());
    let strict = dns_cluster("strict", false, "db.example", first.port());
    let mut picked = std::collections::HashSet::new();
    for _ in 0..10 {
        let p = manager
            .pick(&snapshot, &logical, &PickContext::new(any(), any()))
            .await
            .unwrap();
        picked.insert(p.address);
    }
    assert_eq!(picked, [first].into(), "only the first address");
    let (status, name) = attempt(&manager, &pool, &snapshot, &logical, "/")
        .await
        .unwrap();
    assert_eq!((status, name.as_str()), (200, "first"));
    let mut strict_picks = std::collections::HashSet::new();
    for _ in 0..10 {
        let p = manager
            .pick(&snapshot, &strict, &PickContext::new(any(), any()))
            .await
            .unwrap();
        strict_picks.insert(p.address.ip().to_string());
    }
    assert_eq!(
        strict_picks,
        ["127.0.0.2".to_owned(), "127.0.0.3".to_owned()].into(),
        "STRICT_DNS: every IPv4 address (V4_ONLY)"
    );
}

#[tokio::test(start_paused = true)]
async fn dns_lookups_time_out_and_failures_keep_the_last_answer() {
    let resolver = Arc::new(FakeResolver::default());
    let manager = ClusterManager::with_resolver(resolver.clone());
    let snapshot = Snapshot::default();
    // Never answers: the pick fails after the 5 s lookup timeout instead of
    // hanging the request.
    let silent = dns_cluster("silent", false, "silent.example", 80);
    let started = tokio::time::Instant::now();
    let error = manager
        .pick(&snapshot, &silent, &PickContext::new(any(), any()))
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::NoHealthyUpstream(_)), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));

    resolver.set("api.example", Ok(vec!["127.0.0.7"]));
    let api = dns_cluster("api", false, "api.example", 80);
    let pick = || async {
        manager
            .pick(&snapshot, &api, &PickContext::new(any(), any()))
            .await
            .map(|p| p.address.to_string())
    };
    assert_eq!(pick().await.unwrap(), "127.0.0.7:80");
    // The lookup starts failing: after the refresh interval the refresh
    // fails, and the last good answer stays.
    resolver.set("api.example", Err(io::Error::other("SERVFAIL")));
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(pick().await.unwrap(), "127.0.0.7:80");
    tokio::time::sleep(Duration::from_millis(10)).await; // the refresh runs
    assert_eq!(pick().await.unwrap(), "127.0.0.7:80");
    // A new answer is taken at the next refresh, in the background.
    resolver.set("api.example", Ok(vec!["127.0.0.8"]));
    tokio::time::advance(Duration::from_secs(6)).await;
    let _ = pick().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(pick().await.unwrap(), "127.0.0.8:80");
}

#[tokio::test]
async fn state_survives_swaps_and_goes_with_its_cluster() {
    let (a, _) = http_server("a", [127, 0, 0, 1]).await;
    let mut cluster = eds_cluster("c");
    cluster.circuit_breakers.max_retries = 1;
    let (snapshot, _) = snapshot_of(cluster, LoadAssignment::new("c", endpoints(&[a])));
    // The data path passes the snapshot's own model.
    let cluster = snapshot.clusters["c"].clone();
    let data_plane = DataPlane::new(Arc::new(SnapshotStore::new()));
    let _retry = data_plane.clusters.begin_retry(&cluster).unwrap();
    attempt(
        &data_plane.clusters,
        &data_plane.pool,
        &snapshot,
        &cluster,
        "/",
    )
    .await
    .unwrap();
    assert_eq!(data_plane.pool.pools("c"), 1);
    // The same cluster in a new snapshot: its breaker count is still there.
    data_plane.forget_unused(&snapshot.clone());
    assert!(data_plane.clusters.begin_retry(&cluster).is_err());
    assert_eq!(data_plane.pool.pools("c"), 1);
    // The endpoint leaves EDS: its pool goes, the cluster's state stays.
    let mut moved = snapshot.clone();
    moved
        .endpoints
        .insert("c".into(), Arc::new(LoadAssignment::new("c", vec![])));
    data_plane.forget_unused(&moved);
    assert_eq!(data_plane.pool.pools("c"), 0);
    assert!(data_plane.clusters.begin_retry(&cluster).is_err());
    // The cluster goes: its state goes with it.
    data_plane.forget_unused(&Snapshot::default());
    assert!(data_plane.clusters.begin_retry(&cluster).is_ok());
}

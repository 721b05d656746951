//! Load balancing cost on the request path (router ─► **cluster** ─►
//! upstream pool): one endpoint picked from a cluster's endpoints by each
//! policy mesh-proxy implements, for a small and a large cluster, through
//! the cluster state the router uses (cached host set, priority choice,
//! policy); with some endpoints ejected by outlier detection; and the whole
//! EDS pick through the data plane's `ClusterManager`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mesh_proxy::cluster::{ClusterManager, ClusterState, Outcome, PickContext};
use mesh_proxy::model::{
    Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment, OutlierDetection, Snapshot,
};

const POLICIES: [(LbPolicy, &str); 5] = [
    (LbPolicy::RoundRobin, "round robin"),
    (LbPolicy::Random, "random"),
    (LbPolicy::LeastRequest, "least request"),
    (LbPolicy::RingHash, "ring hash"),
    (LbPolicy::Maglev, "maglev"),
];

/// `n` endpoints of weight `weight(i)`, as pilot's EDS sends a
/// Deployment's pods (addresses from the benchmark range).
fn endpoints(n: usize, weight: impl Fn(usize) -> u32) -> Vec<Endpoint> {
    (0..n)
        .map(|i| {
            let address = SocketAddr::from(([198, 18, (i / 250) as u8, (i % 250) as u8 + 1], 9080));
            Endpoint::new(address, weight(i))
        })
        .collect()
}

fn eds(name: &str, policy: LbPolicy) -> Cluster {
    Cluster {
        lb_policy: policy,
        ..Cluster::new(
            name,
            Discovery::Eds {
                service_name: name.into(),
            },
        )
    }
}

fn lb(c: &mut Criterion) {
    let mut group = c.benchmark_group("lb_pick");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in [3, 100] {
        let assignment = Arc::new(LoadAssignment::new("c", endpoints(n, |_| 1)));
        for (policy, label) in POLICIES {
            let cluster = eds("c", policy);
            let state = Arc::new(ClusterState::default());
            // A third as many requests in flight as there are endpoints, so
            // least request compares real counts and every policy works on
            // a balancer in use rather than a fresh one.
            let _in_flight: Vec<_> = (0..n.div_ceil(3))
                .filter_map(|i| state.pick(&cluster, &assignment, Some(i as u64), &[]).ok())
                .collect();
            let mut key = 0u64;
            group.bench_function(format!("{label}/{n} endpoints"), |b| {
                // The pick is dropped inside the loop, as a request's is when
                // its response headers arrive.
                b.iter(|| {
                    key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    state.pick(black_box(&cluster), black_box(&assignment), Some(key), &[])
                })
            });
        }
    }
    // Weighted round robin (smooth, O(endpoints)).
    let weighted = Arc::new(LoadAssignment::new(
        "w",
        endpoints(100, |i| 1 + (i % 3) as u32),
    ));
    let cluster = eds("w", LbPolicy::RoundRobin);
    let state = Arc::new(ClusterState::default());
    group.bench_function("round robin weighted/100 endpoints", |b| {
        b.iter(|| state.pick(black_box(&cluster), black_box(&weighted), None, &[]))
    });
    // Outlier detection on, 10 of 100 endpoints ejected.
    let assignment = Arc::new(LoadAssignment::new("o", endpoints(100, |_| 1)));
    let cluster = Cluster {
        outlier_detection: Some(OutlierDetection {
            consecutive_5xx: 1,
            max_ejection_percent: 100,
            interval: Duration::from_secs(3600),
            base_ejection_time: Duration::from_secs(3600),
            ..OutlierDetection::default()
        }),
        ..eds("o", LbPolicy::RoundRobin)
    };
    let state = Arc::new(ClusterState::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    for _ in 0..100 {
        if let Ok(picked) = state.pick(&cluster, &assignment, None, &[]) {
            if assignment.endpoints[..10]
                .iter()
                .any(|e| e.address == picked.address)
            {
                picked.report(Outcome::Status(503));
            }
        }
    }
    group.bench_function(
        "round robin outlier-filtered/100 endpoints (10 ejected)",
        |b| b.iter(|| state.pick(black_box(&cluster), black_box(&assignment), None, &[])),
    );
    group.finish();
}

/// The router's call: state looked up by cluster name among many clusters,
/// EDS endpoints taken from the snapshot, then round robin.
fn cluster_manager(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster_manager_pick");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let manager = ClusterManager::new();
    let mut snapshot = Snapshot::default();
    for i in 0..100 {
        let name = format!("outbound|9080||svc{i}.default.svc.cluster.local");
        let cluster = Cluster {
            connect_timeout: Duration::from_secs(10),
            ..eds(&name, LbPolicy::RoundRobin)
        };
        snapshot.clusters.insert(name.clone(), Arc::new(cluster));
        let assignment = LoadAssignment::new(name.clone(), endpoints(10, |_| 1));
        snapshot
            .endpoints
            .insert(name.clone(), Arc::new(assignment));
        manager.state(&name);
    }
    let cluster = snapshot.clusters["outbound|9080||svc77.default.svc.cluster.local"].clone();
    let dst = SocketAddr::from(([198, 19, 0, 77], 9080));
    let listener = SocketAddr::from(([0, 0, 0, 0], 15001));
    // Nothing in an EDS pick awaits, so polling it once on this thread
    // measures the pick and not a runtime.
    group.bench_function("eds/100 clusters/10 endpoints", |b| {
        b.iter(|| {
            futures::executor::block_on(manager.pick(
                black_box(&snapshot),
                black_box(&cluster),
                &PickContext::new(dst, listener),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, lb, cluster_manager);
criterion_main!(benches);

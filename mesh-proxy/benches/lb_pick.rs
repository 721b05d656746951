//! Load balancing cost on the request path (router ─► **cluster** ─►
//! upstream pool): one endpoint picked from a cluster's endpoint list by
//! each policy mesh-proxy implements, for a small and a large cluster, and
//! the whole EDS pick through the data plane's `ClusterManager`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mesh_proxy::cluster::{ClusterManager, LoadBalancer, PickContext};
use mesh_proxy::model::{Cluster, Discovery, Endpoint, LbPolicy, LoadAssignment, Snapshot};

const POLICIES: [(LbPolicy, &str); 3] = [
    (LbPolicy::RoundRobin, "round robin"),
    (LbPolicy::Random, "random"),
    (LbPolicy::LeastRequest, "least request"),
];

/// `n` endpoints of weight 1, as pilot's EDS sends a Deployment's pods.
fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint {
            address: SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 9080)),
            weight: 1,
        })
        .collect()
}

fn lb(c: &mut Criterion) {
    let mut group = c.benchmark_group("lb_pick");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in [3, 100] {
        let endpoints = endpoints(n);
        for (policy, label) in POLICIES {
            let lb = LoadBalancer::default();
            // A third as many requests in flight as there are endpoints, so
            // least request compares real counts and every policy works on
            // a balancer in use rather than a fresh one.
            let _in_flight: Vec<_> = (0..n.div_ceil(3))
                .filter_map(|_| lb.pick(policy, &endpoints))
                .collect();
            group.bench_function(format!("{label}/{n} endpoints"), |b| {
                // The pick is dropped inside the loop, as a request's is when
                // its response headers arrive.
                b.iter(|| lb.pick(black_box(policy), black_box(&endpoints)))
            });
        }
    }
    group.finish();
}

/// The router's call: balancer looked up by cluster name among many
/// clusters, EDS endpoints taken from the snapshot, then round robin.
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
            name: name.clone(),
            discovery: Discovery::Eds {
                service_name: name.clone(),
            },
            lb_policy: LbPolicy::RoundRobin,
            connect_timeout: Duration::from_secs(10),
            http2: false,
            upstream_bind: None,
        };
        snapshot.clusters.insert(name.clone(), Arc::new(cluster));
        let assignment = LoadAssignment {
            cluster_name: name.clone(),
            endpoints: endpoints(10),
        };
        snapshot
            .endpoints
            .insert(name.clone(), Arc::new(assignment));
        manager.balancer(&name);
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

//! The cost of one push for N proxies (STYLE.md rule 13): every sidecar's
//! resources from the push's cache (shared families built and packed once
//! per scope key, the rest per proxy), beside the same views translated and
//! packed proxy by proxy, as every stream did before issue 6.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mesh_pilot::proxy::{NodeMetadata, Proxy};
use mesh_pilot::push::PushContext;
use mesh_pilot::source::snapshot_from_str;
use mesh_pilot::translate;
use mesh_pilot::xds::cache::PushCache;
use mesh_pilot::xds::Resources;

const NAMESPACES: [&str; 2] = ["default", "shop"];

/// `services` HTTP services over the namespaces, two workloads each, with
/// v1/v2 subsets and a route to v1.
fn config(services: usize) -> String {
    let mut yaml = String::new();
    for i in 0..services {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        write!(
            yaml,
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  hosts: [svc{i}.{ns}.svc.cluster.local]\n  resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  workloadSelector: {{labels: {{app: svc{i}}}}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  host: svc{i}\n  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec:\n  hosts: [svc{i}]\n  http: [{{route: [{{destination: {{host: svc{i}, subset: v1}}}}]}}]\n"
        )
        .unwrap();
        for v in ["v1", "v2"] {
            let host = 2 * (i % 100) + usize::from(v == "v2");
            write!(
                yaml,
                "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: svc{i}-{v}, namespace: {ns}}}\nspec: {{address: 198.18.{}.{}, labels: {{app: svc{i}, version: {v}}}}}\n",
                i / 100,
                host + 1
            )
            .unwrap();
        }
    }
    yaml
}

/// The sidecars of the first `n` workloads.
fn proxies(n: usize) -> Vec<Proxy> {
    (0..n)
        .map(|i| {
            let (svc, host) = (i / 2, i + 1);
            let ns = NAMESPACES[svc % NAMESPACES.len()];
            let id = format!(
                "sidecar~198.18.{}.{}~svc{svc}-{i}.{ns}~{ns}.svc.cluster.local",
                i / 200,
                (host - 1) % 200 + 1
            );
            let mut meta = NodeMetadata::default();
            meta.labels.insert("app".into(), format!("svc{svc}"));
            Proxy::parse(&id, &meta).expect("valid node")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let snapshot = snapshot_from_str("bench.yaml", &config(100)).expect("valid config");
    let ctx = Arc::new(PushContext::new(Arc::new(snapshot)));
    let proxies = proxies(100);
    let mut group = c.benchmark_group("push/100 services/100 sidecars");
    group.sample_size(10);
    group.bench_function("shared (PushCache)", |b| {
        b.iter(|| {
            let cache = PushCache::new(ctx.clone());
            for p in &proxies {
                black_box(cache.resources(p));
            }
        })
    });
    group.bench_function("per proxy (translate + pack)", |b| {
        b.iter(|| {
            for p in &proxies {
                black_box(Resources::pack(&translate::generate_in(&ctx, p)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The per-push cache: shared families built once per scope key, and never
//! one proxy's view served to another (every proxy's resources equal its
//! unshared translation).

use super::*;
use crate::proxy::NodeMetadata;
use crate::source::snapshot_from_str;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use prost::Message;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: greeter}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews.prod.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 5432, name: db, protocol: TCP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-1, namespace: default}
spec: {address: 198.18.0.1, labels: {app: greeter, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-2, namespace: default}
spec: {address: 198.18.0.2, labels: {app: greeter, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-1, namespace: prod}
spec: {address: 198.18.0.3, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: prod}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews]
  gateways: [mesh, istio-system/gw]
  http:
  - match: [{sourceLabels: {version: v2}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"#;

fn push(version: u64) -> Arc<PushContext> {
    let mut config = snapshot_from_str("c.yaml", CONFIG).unwrap();
    config.version = version;
    Arc::new(PushContext::new(Arc::new(config)))
}

fn proxy(id: &str, labels: &[(&str, &str)], meta: &[(&str, &str)]) -> Proxy {
    let meta = NodeMetadata {
        values: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Proxy::parse(id, &meta).unwrap()
}

const NONE: &[(&str, &str)] = &[("INTERCEPTION_MODE", "NONE"), ("HTTP_PROXY_PORT", "15080")];

/// Proxies whose views differ in every way a view can.
fn proxies() -> Vec<Proxy> {
    let greeter = |ip: &str, version: &str, meta| {
        let id = format!("sidecar~{ip}~greeter-{version}.default~default.svc.cluster.local");
        proxy(&id, &[("app", "greeter"), ("version", version)], meta)
    };
    vec![
        greeter("198.18.0.1", "v1", NONE),
        greeter("198.18.0.2", "v2", NONE),
        greeter("198.18.0.1", "v1", &[]),
        greeter("198.18.0.2", "v2", &[]),
        proxy(
            "sidecar~198.18.0.3~reviews-1.prod~prod.svc.cluster.local",
            &[("app", "reviews"), ("version", "v1")],
            NONE,
        ),
        proxy(
            "router~198.18.0.9~gw-a.istio-system~istio-system.svc.cluster.local",
            &[("istio", "ingressgateway")],
            &[("MESH_GATEWAY_PORTS", "80=8080")],
        ),
        proxy(
            "router~198.18.0.10~gw-b.istio-system~istio-system.svc.cluster.local",
            &[("istio", "ingressgateway")],
            &[("MESH_GATEWAY_PORTS", "80=18080")],
        ),
    ]
}

#[test]
fn every_proxy_gets_exactly_its_unshared_view() {
    let ctx = push(1);
    let cache = PushCache::new(ctx.clone());
    // Twice round, so the second visit of each view is served from cache.
    for _ in 0..2 {
        for p in proxies() {
            let unshared = Resources::pack(&translate::generate_in(&ctx, &p));
            assert!(cache.resources(&p) == unshared, "{} differs", p.id);
        }
    }
    let stats = cache.stats();
    let shared = |f: &str| stats.shared[f];
    assert_eq!(shared(family::CLUSTERS).builds, 1);
    assert_eq!(shared(family::CLUSTERS).hits, 13);
    assert_eq!(shared(family::ENDPOINTS).builds, 1);
    // Outbound listeners by source: the capturing greeters v1 and v2 differ
    // in the sourceLabels selector they match.
    assert_eq!(shared(family::OUTBOUND_LISTENERS).builds, 2);
    // http_proxy: default v1, default v2 (the sourceLabels match), prod;
    // per-port: default v1, default v2; gateways: two bound ports.
    assert_eq!(shared(family::ROUTES).scopes, 7);
    assert_eq!(shared(family::ROUTES).builds, 7);
    assert_eq!(stats.own_builds, 14);
}

fn http_proxy_domains(r: &Resources) -> Vec<String> {
    let packed = r.get(ROUTE_TYPE, "http_proxy").unwrap();
    let rc = RouteConfiguration::decode(packed.any.value.as_slice()).unwrap();
    rc.virtual_hosts
        .iter()
        .flat_map(|vh| vh.domains.iter().cloned())
        .collect()
}

#[test]
fn proxies_of_two_namespaces_do_not_share_route_configs() {
    let cache = PushCache::new(push(1));
    let all = proxies();
    let (default, prod) = (&all[0], &all[4]);
    let in_default = http_proxy_domains(&cache.resources(default));
    let in_prod = http_proxy_domains(&cache.resources(prod));
    // The bare short name is only for the service's own namespace.
    assert!(in_default.contains(&"greeter".to_string()));
    assert!(!in_prod.contains(&"greeter".to_string()));
    assert!(in_prod.contains(&"reviews".to_string()));
    assert!(!in_default.contains(&"reviews".to_string()));
    let routes = cache.stats().shared[family::ROUTES];
    assert_eq!((routes.builds, routes.scopes), (2, 2));
}

#[test]
fn sidecars_of_one_scope_share_the_same_packed_resources() {
    let cache = PushCache::new(push(1));
    let a = proxy(
        "sidecar~198.18.0.1~a.default~default.svc.cluster.local",
        &[("app", "greeter")],
        NONE,
    );
    let b = proxy(
        "sidecar~198.18.0.2~b.default~default.svc.cluster.local",
        &[("app", "other")],
        NONE,
    );
    let (ra, rb) = (cache.resources(&a), cache.resources(&b));
    let same =
        |t: &str, name: &str| Arc::ptr_eq(ra.get(t, name).unwrap(), rb.get(t, name).unwrap());
    assert!(same(ROUTE_TYPE, "http_proxy"), "one packed route config");
    assert!(same(
        CLUSTER_TYPE,
        "outbound|9080||greeter.default.svc.cluster.local"
    ));
    // Their own listeners are their own.
    assert!(ra.get(LISTENER_TYPE, "198.18.0.1_15080").is_some());
    assert!(rb.get(LISTENER_TYPE, "198.18.0.1_15080").is_none());
    let stats = cache.stats();
    assert_eq!(stats.shared[family::ROUTES].builds, 1);
    assert_eq!(stats.shared[family::ROUTES].hits, 1);
}

#[test]
fn one_cache_per_push_and_laggards_do_not_replace_it() {
    let (tx, rx) = watch::channel(push(1));
    let caches = PushCaches::new(rx);
    let first = caches.latest();
    assert!(Arc::ptr_eq(&first, &caches.latest()));
    let v1 = first.context().clone();
    tx.send_replace(push(2));
    let second = caches.latest();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.stats().version, "2");
    // A stream still on push 1 gets a cache of push 1, not the current one,
    // and the current one stays.
    let behind = caches.for_push(&v1);
    assert_eq!(behind.stats().version, "1");
    assert!(Arc::ptr_eq(&second, &caches.latest()));
}

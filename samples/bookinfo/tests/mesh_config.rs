//! The sample's mesh config says what the README promises: subsets, the
//! gateway's routes and the four example route changes, all as Istio
//! `networking.istio.io/v1` objects. local.yaml names only workloads that
//! exist, and the Kubernetes manifest has what the original's has.
//!
//! These checks read the YAML with serde_yaml only, so that the sample does
//! not build against mesh-api; `meshctl analyze -f samples/bookinfo/mesh`
//! is the mesh's own validation of the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

/// One YAML document, as JSON for easy indexing.
type Loaded = Value;

/// `Kind/namespace/name` of a Kubernetes-style object.
fn key_of(object: &Value) -> String {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    format!(
        "{}/{namespace}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Every document of the YAML file at `path`.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let value = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The Istio objects of one file, keyed `Kind/namespace/name`.
fn load_file(path: &Path) -> BTreeMap<String, Loaded> {
    let mut objects = BTreeMap::new();
    for doc in documents(path) {
        assert_eq!(
            doc["apiVersion"],
            "networking.istio.io/v1",
            "{}",
            path.display()
        );
        assert!(doc["spec"].is_object(), "{}: no spec", path.display());
        let key = key_of(&doc);
        assert!(
            objects.insert(key.clone(), doc).is_none(),
            "{key} twice in {}",
            path.display()
        );
    }
    objects
}

fn sample_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every object in `rel`'s `*.yaml` files (not subdirectories), keyed
/// `Kind/namespace/name`.
fn load(rel: &str) -> BTreeMap<String, Loaded> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(sample_dir(rel))
        .expect("list the directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no YAML in {rel}");
    let mut objects = BTreeMap::new();
    for path in paths {
        for (key, object) in load_file(&path) {
            assert!(
                objects.insert(key.clone(), object).is_none(),
                "{key} twice in {rel}"
            );
        }
    }
    objects
}

fn spec(objects: &BTreeMap<String, Loaded>, key: &str) -> Value {
    let keys: Vec<_> = objects.keys().collect();
    objects
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing; have {keys:?}"))["spec"]
        .clone()
}

fn subset_names(spec: &Value) -> Vec<String> {
    spec["subsets"]
        .as_array()
        .expect("subsets")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn destination_rules_have_the_version_subsets() {
    let mesh = load("mesh");
    let expect = [
        ("reviews", vec!["v1", "v2", "v3"]),
        ("ratings", vec!["v1"]),
        ("details", vec!["v1"]),
        ("productpage", vec!["v1"]),
    ];
    for (host, subsets) in expect {
        let spec = spec(&mesh, &format!("DestinationRule/default/{host}"));
        assert_eq!(spec["host"], host);
        assert_eq!(subset_names(&spec), subsets, "{host}");
    }
}

#[test]
fn the_gateway_routes_productpage_paths() {
    let mesh = load("mesh");
    let gateway = spec(&mesh, "Gateway/default/bookinfo-gateway");
    assert_eq!(gateway["selector"], json!({"istio": "ingressgateway"}));
    assert_eq!(gateway["servers"][0]["port"]["number"], 80);
    assert_eq!(gateway["servers"][0]["hosts"], json!(["*"]));

    let vs = spec(&mesh, "VirtualService/default/bookinfo");
    assert_eq!(vs["gateways"], json!(["bookinfo-gateway"]));
    let uris: Vec<_> = vs["http"][0]["match"]
        .as_array()
        .expect("match list")
        .iter()
        .map(|m| m["uri"].clone())
        .collect();
    assert_eq!(
        uris,
        [
            json!({"exact": "/productpage"}),
            json!({"prefix": "/static"}),
            json!({"exact": "/login"}),
            json!({"exact": "/logout"}),
            json!({"prefix": "/api/v1/products"}),
        ]
    );
    let dest = &vs["http"][0]["route"][0]["destination"];
    assert_eq!(dest["host"], "productpage");
    assert_eq!(dest["port"]["number"], 9080);
}

#[test]
fn every_workload_has_a_service_and_a_subset() {
    let mesh = load("mesh");
    for (key, loaded) in &mesh {
        if !key.starts_with("WorkloadEntry/") {
            continue;
        }
        let spec = &loaded["spec"];
        let app = spec["labels"]["app"].as_str().expect("app label");
        let version = spec["labels"]["version"].as_str().expect("version label");
        assert!(
            spec["address"]
                .as_str()
                .expect("address")
                .starts_with("127.0.20."),
            "{key}"
        );
        let se = self::spec(&mesh, &format!("ServiceEntry/default/{app}"));
        assert_eq!(se["workloadSelector"]["labels"]["app"], app);
        let dr = self::spec(&mesh, &format!("DestinationRule/default/{app}"));
        assert!(subset_names(&dr).iter().any(|s| s == version), "{key}");
    }
}

/// The objects of one route file, keyed `Kind/namespace/name`. Route files
/// are alternatives (each redefines `reviews`), so they load one by one.
fn load_route(file: &str) -> BTreeMap<String, Loaded> {
    load_file(&sample_dir("mesh/routes").join(file))
}

fn subset_of(route: &Value) -> &Value {
    &route["destination"]["subset"]
}

#[test]
fn all_v1_pins_every_service_to_v1() {
    let routes = load_route("all-v1.yaml");
    assert_eq!(routes.len(), 4);
    for host in ["productpage", "reviews", "ratings", "details"] {
        let vs = spec(&routes, &format!("VirtualService/default/{host}"));
        assert_eq!(vs["hosts"], json!([host]));
        assert_eq!(subset_of(&vs["http"][0]["route"][0]), "v1", "{host}");
    }
}

#[test]
fn jason_sees_reviews_v2_and_everyone_else_v1() {
    let routes = load_route("reviews-jason-v2.yaml");
    let http = &spec(&routes, "VirtualService/default/reviews")["http"];
    assert_eq!(
        http[0]["match"][0]["headers"]["end-user"],
        json!({"exact": "jason"})
    );
    assert_eq!(subset_of(&http[0]["route"][0]), "v2");
    assert!(http[1].get("match").is_none());
    assert_eq!(subset_of(&http[1]["route"][0]), "v1");
}

#[test]
fn reviews_split_half_v1_half_v3() {
    let routes = load_route("reviews-50-v3.yaml");
    let http = &spec(&routes, "VirtualService/default/reviews")["http"];
    let split: Vec<_> = http[0]["route"]
        .as_array()
        .expect("route")
        .iter()
        .map(|r| (subset_of(r).clone(), r["weight"].clone()))
        .collect();
    assert_eq!(split, [(json!("v1"), json!(50)), (json!("v3"), json!(50))]);
}

#[test]
fn reviews_v3_sends_everything_to_v3() {
    let routes = load_route("reviews-v3.yaml");
    let http = &spec(&routes, "VirtualService/default/reviews")["http"];
    assert_eq!(http.as_array().map(Vec::len), Some(1));
    assert_eq!(subset_of(&http[0]["route"][0]), "v3");
}

#[test]
fn local_yaml_runs_every_workload_entry() {
    let mesh = load("mesh");
    let text = std::fs::read_to_string(sample_dir("local.yaml")).expect("local.yaml");
    let local: serde_yaml::Value = serde_yaml::from_str(&text).expect("local.yaml parses");
    let mut named: Vec<String> = local["workloads"]
        .as_sequence()
        .expect("workloads")
        .iter()
        .map(|w| {
            format!(
                "WorkloadEntry/default/{}",
                w["workloadEntry"].as_str().expect("name")
            )
        })
        .collect();
    named.sort();
    let entries: Vec<String> = mesh
        .keys()
        .filter(|k| k.starts_with("WorkloadEntry/"))
        .cloned()
        .collect();
    assert_eq!(named, entries);
    assert_eq!(
        local["ingress"]["labels"]["istio"].as_str(),
        Some("ingressgateway")
    );
}

#[test]
fn the_kubernetes_manifest_has_a_service_account_and_deployments_per_app() {
    let objects: BTreeMap<String, Value> = documents(&sample_dir("kube/bookinfo.yaml"))
        .into_iter()
        .map(|o| (key_of(&o), o))
        .collect();
    for app in ["productpage", "details", "reviews", "ratings"] {
        let service = &objects[&format!("Service/default/{app}")];
        assert_eq!(service["spec"]["selector"], json!({"app": app}));
        assert_eq!(
            service["spec"]["ports"][0],
            json!({"port": 9080, "name": "http"})
        );
        assert!(objects.contains_key(&format!("ServiceAccount/default/bookinfo-{app}")));
    }
    let deployments: Vec<_> = objects
        .keys()
        .filter(|k| k.starts_with("Deployment/"))
        .cloned()
        .collect();
    assert_eq!(
        deployments,
        [
            "Deployment/default/details-v1",
            "Deployment/default/productpage-v1",
            "Deployment/default/ratings-v1",
            "Deployment/default/reviews-v1",
            "Deployment/default/reviews-v2",
            "Deployment/default/reviews-v3",
        ]
    );
    for version in ["v1", "v2", "v3"] {
        let pod = &objects[&format!("Deployment/default/reviews-{version}")]["spec"]["template"];
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "reviews", "version": version})
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["command"], json!(["reviews"]));
        let env = container["env"].as_array().expect("env");
        assert!(env.contains(&json!({"name": "SERVICE_VERSION", "value": version})));
    }
    assert!(objects
        .values()
        .all(|o| o["apiVersion"] != "networking.istio.io/v1"));
}

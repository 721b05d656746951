//! Seed corpora for the xDS fuzz targets: pilot translates the configs of
//! its golden tests (`mesh-pilot/tests/golden/*.yaml`) for the proxies
//! those tests use, and the resources are written as the targets read
//! them (records of `kind(1) | length(2, LE) | protobuf`).
//!
//! - `corpus/xds_convert/`: each proxy's whole view (kinds 0 listener,
//!   1 route configuration, 2 cluster, 3 load assignment), and each
//!   resource alone.
//! - `corpus/http_router/`: each route configuration (kind 0), path
//!   options (kind 1) and a request for every route (kind 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use envoy_types::pb::envoy::config::route::v3::{route_match::PathSpecifier, RouteConfiguration};
use mesh_pilot::proxy::{NodeMetadata, Proxy};
use mesh_pilot::registry::Registry;
use mesh_pilot::source::snapshot_from_str;
use mesh_pilot::translate;
use prost::Message;

/// A golden case and the proxy to generate for (as in its test).
struct Case {
    name: &'static str,
    id: &'static str,
    labels: &'static [(&'static str, &'static str)],
    meta: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "traffic",
        id: "sidecar~198.18.0.50~productpage-v1.default~default.svc.cluster.local",
        labels: &[("app", "productpage"), ("version", "v1")],
        meta: &[("INTERCEPTION_MODE", "REDIRECT")],
    },
    Case {
        name: "gateway",
        id: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
        labels: &[("istio", "ingressgateway")],
        meta: &[
            ("INTERCEPTION_MODE", "NONE"),
            ("MESH_GATEWAY_PORTS", "80=8080"),
        ],
    },
    Case {
        name: "redirect-sidecar",
        id: "sidecar~127.0.20.1~greeter-v1.default~default.svc.cluster.local",
        labels: &[("app", "greeter"), ("version", "v1")],
        meta: &[("INTERCEPTION_MODE", "REDIRECT")],
    },
    Case {
        name: "gateway-servers",
        id: "router~198.18.0.70~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
        labels: &[("istio", "ingressgateway")],
        meta: &[(
            "MESH_GATEWAY_PORTS",
            "80=8080,443=8443,8443=9443,9443=10443",
        )],
    },
];

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let xds_dir = root.join("fuzz/corpus/xds_convert");
    let router_dir = root.join("fuzz/corpus/http_router");
    for dir in [&xds_dir, &router_dir] {
        std::fs::create_dir_all(dir).expect("create corpus directory");
    }
    for case in CASES {
        let input = root.join(format!("mesh-pilot/tests/golden/{}.yaml", case.name));
        let text = std::fs::read_to_string(&input).expect("read golden config");
        let config = snapshot_from_str(&format!("{}.yaml", case.name), &text)
            .unwrap_or_else(|errors| panic!("{}: {errors:?}", case.name));
        let registry = Registry::build(&config);
        let out = translate::generate(&config, &registry, &proxy(case));

        let mut view = Vec::new();
        let mut push = |kind: u8, what: &str, name: &str, bytes: Vec<u8>| {
            if view.len() < 16 {
                view.push((kind, bytes.clone()));
            }
            let file = format!("{}-{what}-{}", case.name, file_name(name));
            write(&xds_dir.join(file), &encode(&[(kind, bytes)]));
        };
        for l in &out.listeners {
            push(0, "listener", &l.name, l.encode_to_vec());
        }
        for r in &out.routes {
            push(1, "route", &r.name, r.encode_to_vec());
        }
        for c in &out.clusters {
            push(2, "cluster", &c.name, c.encode_to_vec());
        }
        for e in &out.endpoints {
            push(3, "endpoints", &e.cluster_name, e.encode_to_vec());
        }
        write(&xds_dir.join(format!("{}-view", case.name)), &encode(&view));

        for (i, rc) in out.routes.iter().enumerate() {
            let options = [0b0000_0011 | ((i as u8 % 4) << 2)];
            let mut parts = vec![(0, rc.encode_to_vec()), (1, options.to_vec())];
            parts.extend(requests(rc).into_iter().map(|r| (2, r.into_bytes())));
            let file = format!("{}-{}", case.name, file_name(&rc.name));
            write(&router_dir.join(file), &encode(&parts));
        }
    }
}

fn proxy(case: &Case) -> Proxy {
    let own = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let meta = NodeMetadata {
        values: own(case.meta),
        labels: own(case.labels),
    };
    Proxy::parse(case.id, &meta).expect("valid node")
}

/// A request for each route of `rc` (up to 8), addressed to its virtual
/// host's first domain.
fn requests(rc: &RouteConfiguration) -> Vec<String> {
    let mut out = Vec::new();
    for vh in &rc.virtual_hosts {
        let host = vh.domains.first().map_or("example.com", String::as_str);
        let host = host.replace('*', "x");
        for route in &vh.routes {
            let path = match route
                .r#match
                .as_ref()
                .and_then(|m| m.path_specifier.as_ref())
            {
                Some(PathSpecifier::Prefix(p)) => format!("{p}/a/../b//c?q=1"),
                Some(PathSpecifier::Path(p)) => p.clone(),
                Some(PathSpecifier::PathSeparatedPrefix(p)) => format!("{p}/x"),
                _ => "/%2Fescaped/./path".to_owned(),
            };
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            out.push(format!(
                "GET {path}\nhost: {host}\nx-user: jason\ncookie: a=b"
            ));
        }
    }
    out.truncate(8);
    out
}

fn encode(parts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, bytes) in parts {
        let len = u16::try_from(bytes.len()).expect("a record is at most 64 KiB");
        out.push(*kind);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A resource name as a file name (`outbound|9080||reviews` and the like).
fn file_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.chars().take(80).collect()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

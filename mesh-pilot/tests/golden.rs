//! Translator golden tests: YAML config in, xDS out. Each case loads
//! `tests/golden/CASE.yaml`, generates the resources of each of its proxies
//! and compares them with `tests/golden/CASE.golden` (rendered by
//! `render.rs`). `UPDATE_GOLDEN=1 cargo test -p mesh-pilot --test golden`
//! rewrites the expected files; review the diff before committing.

mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;

use mesh_pilot::proxy::{NodeMetadata, Proxy};
use mesh_pilot::registry::Registry;
use mesh_pilot::source::snapshot_from_str;
use mesh_pilot::translate;

struct Node {
    id: &'static str,
    labels: &'static [(&'static str, &'static str)],
    meta: &'static [(&'static str, &'static str)],
}

fn proxy(node: &Node) -> Proxy {
    let meta = NodeMetadata {
        values: node
            .meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: node
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    Proxy::parse(node.id, &meta).expect("valid node")
}

fn check(case: &str, nodes: &[Node]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let input = dir.join(format!("{case}.yaml"));
    let text = std::fs::read_to_string(&input).expect("read input");
    let config = snapshot_from_str(&format!("{case}.yaml"), &text)
        .unwrap_or_else(|errors| panic!("{case}.yaml is invalid: {errors:#?}"));
    let registry = Registry::build(&config);
    let mut got = String::new();
    for node in nodes {
        let out = translate::generate(&config, &registry, &proxy(node));
        got.push_str(&format!("# proxy {}\n", node.id));
        got.push_str(&render::output(&out));
        got.push('\n');
    }
    let golden = dir.join(format!("{case}.golden"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        let show = |s: &str| {
            s.lines()
                .skip(first.saturating_sub(3))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{case}: output differs from {} at line {}\n--- want\n{}\n--- got\n{}\n(UPDATE_GOLDEN=1 regenerates)",
            golden.display(),
            first + 1,
            show(&want),
            show(&got)
        );
    }
}

#[test]
fn postcard_sidecars_in_none_mode() {
    check(
        "postcard-sidecar",
        &[
            Node {
                id: "sidecar~127.0.10.1~greeter-v1.default~default.svc.cluster.local",
                labels: &[("app", "greeter"), ("version", "v1")],
                meta: &[
                    ("INTERCEPTION_MODE", "NONE"),
                    ("HTTP_PROXY_PORT", "15080"),
                    ("MESH_APP_IP", "127.1.10.1"),
                    ("SERVICE_ACCOUNT", "postcard-greeter"),
                ],
            },
            Node {
                id: "sidecar~127.0.10.2~messenger-v1.default~default.svc.cluster.local",
                labels: &[("app", "messenger"), ("version", "v1")],
                meta: &[
                    ("INTERCEPTION_MODE", "NONE"),
                    ("HTTP_PROXY_PORT", "15080"),
                    ("MESH_APP_IP", "127.1.10.2"),
                ],
            },
        ],
    );
}

#[test]
fn gateway_with_bound_virtual_services() {
    check(
        "gateway",
        &[Node {
            id: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
            labels: &[("istio", "ingressgateway")],
            meta: &[
                ("INTERCEPTION_MODE", "NONE"),
                ("MESH_GATEWAY_PORTS", "80=8080"),
            ],
        }],
    );
}

#[test]
fn sidecar_with_transparent_capture() {
    check(
        "redirect-sidecar",
        &[Node {
            id: "sidecar~127.0.20.1~greeter-v1.default~default.svc.cluster.local",
            labels: &[("app", "greeter"), ("version", "v1")],
            meta: &[("INTERCEPTION_MODE", "REDIRECT")],
        }],
    );
}

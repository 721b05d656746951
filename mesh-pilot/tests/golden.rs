//! Translator golden tests: YAML config in, xDS out. Each case (see
//! `cases/`) loads `tests/golden/CASE.yaml`, generates the resources of each
//! of its proxies and compares them with `tests/golden/CASE.golden`
//! (rendered by `render/`). `UPDATE_GOLDEN=1 cargo test -p mesh-pilot --test
//! golden` rewrites the expected files; review the diff before committing.

mod cases;
mod render;

use cases::Case;
use mesh_pilot::registry::Registry;
use mesh_pilot::translate;

fn check(case: &Case) {
    let config = case.config();
    let registry = Registry::build(&config);
    let mut got = String::new();
    for node in case.nodes {
        let out = translate::generate(&config, &registry, &node.proxy());
        got.push_str(&format!("# proxy {}\n", node.id));
        got.push_str(&render::output(&out));
        got.push('\n');
    }
    let golden = Case::dir().join(format!("{}.golden", case.name));
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
            "{}: output differs from {} at line {}\n--- want\n{}\n--- got\n{}\n(UPDATE_GOLDEN=1 regenerates)",
            case.name,
            golden.display(),
            first + 1,
            show(&want),
            show(&got)
        );
    }
}

#[test]
fn postcard_sidecars_in_none_mode() {
    check(&cases::POSTCARD_SIDECAR);
}

#[test]
fn gateway_with_bound_virtual_services() {
    check(&cases::GATEWAY);
}

#[test]
fn sidecar_with_transparent_capture() {
    check(&cases::REDIRECT_SIDECAR);
}

#[test]
fn traffic_management_routes_and_destination_rules() {
    check(&cases::TRAFFIC);
}

#[test]
fn gateway_with_http_https_passthrough_and_tcp_servers() {
    check(&cases::GATEWAY_SERVERS);
}

#[test]
fn egress_through_the_egress_gateway_and_to_a_cidr_range() {
    check(&cases::EGRESS);
}

#[test]
fn sidecar_resource_scopes_what_each_proxy_is_told() {
    check(&cases::SIDECAR_SCOPE);
}

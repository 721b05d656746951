//! The cross-resource check: routes to missing clusters where Envoy
//! refuses them (`validate_clusters`, by default inline only).

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;

use envoy_types::pb::google::protobuf::BoolValue;

use super::*;
use crate::model::{Cluster, Discovery, Listener, RouteConfig, Snapshot};
use crate::xds::convert::dangling_clusters;

fn model_cluster(name: &str) -> Arc<Cluster> {
    Arc::new(Cluster::new(name, Discovery::OriginalDst))
}

#[test]
fn finds_routes_to_missing_clusters() {
    let mut s = Snapshot::default();
    s.clusters.insert("a".into(), model_cluster("a"));
    let validated = |name: &str, routes| RouteConfiguration {
        validate_clusters: Some(BoolValue { value: true }),
        ..route_config(name, routes)
    };
    let rc = RouteConfig::try_from(&validated(
        "r",
        vec![prefix_route("/a", "a"), prefix_route("/b", "b")],
    ))
    .unwrap();
    s.route_configs.insert("r".into(), Arc::new(rc));
    // Over RDS without validate_clusters (Envoy's default): not checked.
    let rc = RouteConfig::try_from(&route_config("lax", vec![prefix_route("/", "x")])).unwrap();
    s.route_configs.insert("lax".into(), Arc::new(rc));
    let inline = hcm(RouteSpecifier::RouteConfig(route_config(
        "inline",
        vec![prefix_route("/", "c")],
    )));
    let l = Listener::try_from(&listener(
        "l",
        80,
        vec![chain("c0", vec![hcm_filter(inline)])],
    ))
    .unwrap();
    s.listeners.insert("l".into(), Arc::new(l));
    // Inline with validate_clusters false: not checked either.
    let lax_inline = hcm(RouteSpecifier::RouteConfig(RouteConfiguration {
        validate_clusters: Some(BoolValue { value: false }),
        ..route_config("lax-inline", vec![prefix_route("/", "y")])
    }));
    let l = Listener::try_from(&listener(
        "m",
        81,
        vec![chain("c0", vec![hcm_filter(lax_inline)])],
    ))
    .unwrap();
    s.listeners.insert("m".into(), Arc::new(l));

    let found: Vec<(String, String, String)> = dangling_clusters(&s)
        .into_iter()
        .map(|(kind, name, e)| (kind.to_owned(), name, e.to_string()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("RouteConfiguration", "r")
    );
    assert!(
        found[0].2.contains("unknown cluster \"b\"") && found[0].2.contains("route \"to-b\""),
        "{}",
        found[0].2
    );
    assert_eq!(
        (found[1].0.as_str(), found[1].1.as_str()),
        ("Listener", "l")
    );
    assert!(
        found[1].2.contains("unknown cluster \"c\""),
        "{}",
        found[1].2
    );

    s.clusters.insert("b".into(), model_cluster("b"));
    s.clusters.insert("c".into(), model_cluster("c"));
    assert!(dangling_clusters(&s).is_empty());
}

//! Delta ADS protocol state: wildcard and named subscriptions, pushes of
//! changes and removals only, ACK/NACK, reconnects with known versions.

use super::*;
use crate::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use envoy_types::pb::google::rpc::Status;

fn resources(pairs: &[(&'static str, &str, u8)]) -> Arc<Resources> {
    crate::xds::resources::test_view(pairs)
}

fn base() -> Arc<Resources> {
    resources(&[
        (CLUSTER_TYPE, "a", 1),
        (CLUSTER_TYPE, "b", 2),
        (ENDPOINT_TYPE, "a", 3),
        (ENDPOINT_TYPE, "b", 4),
        (LISTENER_TYPE, "l", 5),
        (ROUTE_TYPE, "r", 6),
    ])
}

fn req(
    type_url: &str,
    subscribe: &[&str],
    unsubscribe: &[&str],
    nonce: &str,
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|s| s.to_string()).collect(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    }
}

fn names(o: &DeltaOutgoing) -> Vec<&str> {
    o.resources.iter().map(|(n, _)| &**n).collect()
}

#[test]
fn wildcard_cds_and_named_eds() {
    let mut c = DeltaConnection::new("n".into(), base(), "1".into());
    let cds = c.on_request(&req(CLUSTER_TYPE, &[], &[], "")).unwrap();
    assert_eq!(names(&cds), ["a", "b"]);
    assert_eq!(cds.system_version_info, "1");
    // ACK: nothing to send, recorded.
    assert!(c
        .on_request(&req(CLUSTER_TYPE, &[], &[], &cds.nonce))
        .is_none());
    assert_eq!(c.status(true).acked[CLUSTER_TYPE], "1");
    let eds = c.on_request(&req(ENDPOINT_TYPE, &["a"], &[], "")).unwrap();
    assert_eq!(names(&eds), ["a"]);
    // Subscribing to one more name sends just that one.
    let more = c
        .on_request(&req(ENDPOINT_TYPE, &["b"], &[], &eds.nonce))
        .unwrap();
    assert_eq!(names(&more), ["b"]);
    // A name that does not exist gets nothing yet.
    assert!(c
        .on_request(&req(ENDPOINT_TYPE, &["zz"], &[], &more.nonce))
        .is_none());
    let wire = more.into_response();
    assert_eq!(wire.resources[0].name, "b");
    assert_eq!(wire.resources[0].version.len(), 16);
}

#[test]
fn pushes_send_changes_and_removals_of_subscribed_names_only() {
    let mut c = DeltaConnection::new("n".into(), base(), "1".into());
    c.on_request(&req(CLUSTER_TYPE, &[], &[], "")).unwrap();
    c.on_request(&req(ENDPOINT_TYPE, &["a", "b"], &[], ""))
        .unwrap();
    c.on_request(&req(LISTENER_TYPE, &[], &[], "")).unwrap();
    // Nothing changed: nothing sent.
    assert!(c.on_push(base(), "2".into()).is_empty());
    // Cluster b goes, c comes; endpoint a changes, b goes.
    let next = resources(&[
        (CLUSTER_TYPE, "a", 1),
        (CLUSTER_TYPE, "c", 7),
        (ENDPOINT_TYPE, "a", 30),
        (ENDPOINT_TYPE, "c", 8),
        (LISTENER_TYPE, "l", 5),
        (ROUTE_TYPE, "r", 60),
    ]);
    let out = c.on_push(next, "3".into());
    let seen: Vec<(&str, Vec<&str>, Vec<&str>)> = out
        .iter()
        .map(|o| {
            let removed = o.removed.iter().map(String::as_str).collect();
            (o.type_url.as_str(), names(o), removed)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (CLUSTER_TYPE, vec!["c"], vec!["b"]),
            // c is not subscribed; RDS was never subscribed.
            (ENDPOINT_TYPE, vec!["a"], vec!["b"]),
        ]
    );
    assert!(out.iter().all(|o| o.system_version_info == "3"));
}

#[test]
fn unsubscribed_names_are_not_pushed_and_nacks_are_recorded() {
    let mut c = DeltaConnection::new("n".into(), base(), "1".into());
    let eds = c
        .on_request(&req(ENDPOINT_TYPE, &["a", "b"], &[], ""))
        .unwrap();
    assert!(c
        .on_request(&req(ENDPOINT_TYPE, &[], &["b"], &eds.nonce))
        .is_none());
    let next = resources(&[(ENDPOINT_TYPE, "a", 3), (ENDPOINT_TYPE, "b", 40)]);
    assert!(c.on_push(next, "2".into()).is_empty());
    let again = resources(&[(ENDPOINT_TYPE, "a", 31), (ENDPOINT_TYPE, "b", 40)]);
    let out = c.on_push(again, "3".into());
    assert_eq!(names(&out[0]), ["a"]);
    let mut nack = req(ENDPOINT_TYPE, &[], &[], &out[0].nonce);
    nack.error_detail = Some(Status {
        code: 3,
        message: "bad endpoint".into(),
        details: vec![],
    });
    assert!(c.on_request(&nack).is_none());
    let n = c.status(true).last_nack.unwrap();
    assert_eq!(
        (n.version.as_str(), n.reason.as_str()),
        ("3", "bad endpoint")
    );
}

#[test]
fn a_reconnect_skips_what_the_proxy_already_has() {
    let mut c = DeltaConnection::new("n".into(), base(), "1".into());
    let first = c
        .on_request(&req(CLUSTER_TYPE, &[], &[], ""))
        .unwrap()
        .into_response();
    let mut again = DeltaConnection::new("n".into(), base(), "1".into());
    let mut r = req(CLUSTER_TYPE, &[], &[], "");
    r.initial_resource_versions = first
        .resources
        .iter()
        .filter(|res| res.name == "a")
        .map(|res| (res.name.clone(), res.version.clone()))
        .collect();
    let resent = again.on_request(&r).unwrap();
    assert_eq!(names(&resent), ["b"]);
}

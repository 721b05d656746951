//! ADS protocol state: subscribe, ACK, NACK, stale nonces, per-type pushes.

use super::*;
use crate::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE};
use envoy_types::pb::google::rpc::Status;

fn resources(pairs: &[(&'static str, &str, u8)]) -> Arc<Resources> {
    crate::xds::resources::test_view(pairs)
}

fn req(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.to_string(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    }
}

fn nack(type_url: &str, version: &str, nonce: &str, why: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        error_detail: Some(Status {
            code: 3,
            message: why.to_string(),
            details: vec![],
        }),
        ..req(type_url, &[], version, nonce)
    }
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

#[test]
fn subscribe_ack_and_stale_nonce() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    // Wildcard type: names are ignored, everything is sent.
    let r = c.on_request(&req(CLUSTER_TYPE, &["x"], "", "")).unwrap();
    assert_eq!(r.resources.len(), 2);
    assert_eq!(r.version_info, "1");
    // ACK: no response, recorded.
    assert!(c
        .on_request(&req(CLUSTER_TYPE, &[], "1", &r.nonce))
        .is_none());
    assert_eq!(c.status(true).acked[CLUSTER_TYPE], "1");
    // Stale nonce: ignored, even with an error.
    assert!(c
        .on_request(&nack(CLUSTER_TYPE, "0", "old", "bad"))
        .is_none());
    assert!(c.status(true).last_nack.is_none());
}

#[test]
fn eds_sends_what_was_requested_and_answers_name_changes() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    let r = c.on_request(&req(ENDPOINT_TYPE, &["a"], "", "")).unwrap();
    assert_eq!(r.resources.len(), 1);
    // ACK with the same names: nothing.
    assert!(c
        .on_request(&req(ENDPOINT_TYPE, &["a"], "1", &r.nonce))
        .is_none());
    // ACK with new names: respond with those.
    let r2 = c
        .on_request(&req(ENDPOINT_TYPE, &["a", "b"], "1", &r.nonce))
        .unwrap();
    assert_eq!(r2.resources.len(), 2);
    assert_ne!(r2.nonce, r.nonce);
    // Unsubscribing every name: nothing, not everything.
    let r3 = c
        .on_request(&req(ENDPOINT_TYPE, &[], "1", &r2.nonce))
        .unwrap();
    assert!(r3.resources.is_empty());
    // An empty first list is no wildcard either (EDS and RDS are not
    // wildcard types).
    let mut c = Connection::new("n".into(), base(), "1".into());
    let r = c.on_request(&req(ENDPOINT_TYPE, &[], "", "")).unwrap();
    assert!(r.resources.is_empty());
}

#[test]
fn nack_is_recorded_and_not_resent() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    let r = c.on_request(&req(LISTENER_TYPE, &[], "", "")).unwrap();
    c.on_request(&req(LISTENER_TYPE, &[], "1", &r.nonce));
    // Version 2 changes the listener; the proxy rejects it.
    let bad = resources(&[(LISTENER_TYPE, "l", 9), (ROUTE_TYPE, "r", 6)]);
    let pushed = c.on_push(bad.clone(), "2".into());
    assert_eq!(pushed.len(), 1);
    assert!(c
        .on_request(&nack(
            LISTENER_TYPE,
            "1",
            &pushed[0].nonce,
            "listener l: boom"
        ))
        .is_none());
    let st = c.status(true);
    assert_eq!(st.acked[LISTENER_TYPE], "1");
    assert_eq!(st.sent[LISTENER_TYPE], "2");
    let n = st.last_nack.unwrap();
    assert_eq!(
        (n.version.as_str(), n.reason.as_str()),
        ("2", "listener l: boom")
    );
    // The same content under a new version is not resent.
    assert!(c.on_push(bad, "3".into()).is_empty());
    // A fix is.
    let fixed = resources(&[(LISTENER_TYPE, "l", 10)]);
    assert_eq!(c.on_push(fixed, "4".into()).len(), 1);
}

#[test]
fn push_only_changed_types_in_order() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    for t in [ROUTE_TYPE, LISTENER_TYPE, ENDPOINT_TYPE, CLUSTER_TYPE] {
        c.on_request(&req(t, &[], "", "")).unwrap();
    }
    assert!(c.on_push(base(), "2".into()).is_empty());
    let changed = resources(&[
        (CLUSTER_TYPE, "a", 1),
        (CLUSTER_TYPE, "c", 2),
        (ENDPOINT_TYPE, "a", 3),
        (ENDPOINT_TYPE, "b", 4),
        (LISTENER_TYPE, "l", 5),
        (ROUTE_TYPE, "r", 7),
    ]);
    let types: Vec<String> = c
        .on_push(changed, "3".into())
        .into_iter()
        .map(|r| r.type_url)
        .collect();
    assert_eq!(
        types,
        vec![CLUSTER_TYPE.to_string(), ROUTE_TYPE.to_string()]
    );
}

#[test]
fn eds_push_ignores_changes_to_unrequested_names() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    c.on_request(&req(ENDPOINT_TYPE, &["a"], "", "")).unwrap();
    let other = resources(&[(ENDPOINT_TYPE, "a", 3), (ENDPOINT_TYPE, "b", 99)]);
    assert!(c.on_push(other, "2".into()).is_empty());
}

#[test]
fn unknown_types_are_ignored() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    let secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    assert!(c.on_request(&req(secret, &[], "", "")).is_none());
}

#[test]
fn a_nonce_from_an_earlier_stream_subscribes() {
    // Reconnected with the last nonce of its previous stream: nothing was
    // sent on this one yet, so it is a new subscription, not a stale ACK.
    let mut c = Connection::new("n".into(), base(), "1".into());
    let r = c.on_request(&req(CLUSTER_TYPE, &[], "7", "42")).unwrap();
    assert_eq!(r.resources.len(), 2);
    let r = c
        .on_request(&req(ENDPOINT_TYPE, &["a"], "7", "43"))
        .unwrap();
    assert_eq!(r.resources.len(), 1);
}

#[test]
fn reordered_names_are_not_a_new_subscription() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    let r = c
        .on_request(&req(ENDPOINT_TYPE, &["a", "b"], "", ""))
        .unwrap();
    assert!(c
        .on_request(&req(ENDPOINT_TYPE, &["b", "a"], "1", &r.nonce))
        .is_none());
}

#[test]
fn eds_and_rds_pushes_carry_only_what_changed() {
    let mut c = Connection::new("n".into(), base(), "1".into());
    for t in PUSH_ORDER {
        let r = c.on_request(&req(t, &[], "", "")).unwrap();
        c.on_request(&req(t, &[], "1", &r.nonce));
    }
    // Endpoint b moves and a cluster is added: CDS whole, EDS only b.
    let next = resources(&[
        (CLUSTER_TYPE, "a", 1),
        (CLUSTER_TYPE, "b", 2),
        (CLUSTER_TYPE, "c", 8),
        (ENDPOINT_TYPE, "a", 3),
        (ENDPOINT_TYPE, "b", 44),
        (ENDPOINT_TYPE, "c", 9),
        (LISTENER_TYPE, "l", 5),
        (ROUTE_TYPE, "r", 6),
    ]);
    let pushed = c.on_push(next.clone(), "2".into());
    let sent: Vec<(&str, Vec<u8>)> = pushed
        .iter()
        .flat_map(|r| {
            r.resources
                .iter()
                .map(|p| (r.type_url.as_str(), p.any.value.clone()))
        })
        .collect();
    assert_eq!(
        sent,
        [
            (CLUSTER_TYPE, vec![1]),
            (CLUSTER_TYPE, vec![2]),
            (CLUSTER_TYPE, vec![8]),
            (ENDPOINT_TYPE, vec![44]),
            (ENDPOINT_TYPE, vec![9]),
        ]
    );
    // The next push diffs against what was sent, not the first version.
    let again = resources(&[
        (CLUSTER_TYPE, "a", 1),
        (CLUSTER_TYPE, "b", 2),
        (CLUSTER_TYPE, "c", 8),
        (ENDPOINT_TYPE, "a", 33),
        (ENDPOINT_TYPE, "b", 44),
        (ENDPOINT_TYPE, "c", 9),
        (LISTENER_TYPE, "l", 5),
        (ROUTE_TYPE, "r", 6),
    ]);
    let pushed = c.on_push(again, "3".into());
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].resources.len(), 1);
    assert_eq!(pushed[0].resources[0].any.value, [33]);
    // A new subscription is answered whole.
    let r = c
        .on_request(&req(ENDPOINT_TYPE, &["a", "c"], "3", &pushed[0].nonce))
        .unwrap();
    assert_eq!(r.resources.len(), 2);
}

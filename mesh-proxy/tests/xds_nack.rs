//! The proxy against a fake pilot: valid config is ACKed and served; a
//! listener with an unknown filter, a route to a missing cluster and an
//! invalid regex are each NACKed with a reason naming the resource, while
//! the previous snapshot keeps serving and the proxy keeps running.

mod xds_support;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::protobuf::{value::Kind, Any, BoolValue};
use envoy_types::util::pack_any;
use xds_support::*;

const MESSENGER: &str = "outbound|9080||messenger.default.svc.cluster.local";
const LISTENER: &str = "127.0.10.1_15080";

fn nack_message(r: &DiscoveryRequest) -> &str {
    &r.error_detail
        .as_ref()
        .expect("expected a NACK, got an ACK")
        .message
}

fn assert_ack(r: &DiscoveryRequest, version: &str) {
    assert!(
        r.error_detail.is_none(),
        "expected an ACK, got NACK: {:?}",
        r.error_detail
    );
    assert_eq!(r.version_info, version);
}

/// Brings the proxy to a full, ACKed v1 config.
async fn apply_v1(stream: &mut PilotStream) {
    let cds = stream.recv().await;
    assert_eq!(
        (cds.type_url.as_str(), cds.resource_names.len()),
        (CDS, 0),
        "wildcard CDS first"
    );
    let node = cds.node.as_ref().expect("node on the first request");
    assert_eq!(node.id, NODE_ID);
    let metadata = &node.metadata.as_ref().unwrap().fields;
    assert!(matches!(&metadata["NAMESPACE"].kind, Some(Kind::StringValue(ns)) if ns == "default"));
    assert!(
        matches!(&metadata["LABELS"].kind, Some(Kind::StructValue(l)) if l.fields.contains_key("app"))
    );
    let lds = stream.recv().await;
    assert_eq!(
        (lds.type_url.as_str(), lds.resource_names.len()),
        (LDS, 0),
        "then wildcard LDS"
    );

    let clusters = vec![
        eds_cluster(MESSENGER),
        static_cluster("inbound|9080||", "127.1.10.1", 9080),
    ];
    assert_ack(&stream.push_and_answer(CDS, "1", clusters).await, "1");
    let eds = stream.recv().await;
    assert_eq!(
        (eds.type_url.as_str(), eds.resource_names.clone()),
        (EDS, vec![MESSENGER.to_owned()])
    );
    let cla = envoy_types::util::pack_any(endpoints(MESSENGER, "127.1.10.2", 9080));
    assert_ack(&stream.push_and_answer(EDS, "1", vec![cla]).await, "1");

    let listeners = vec![listener(
        LISTENER,
        15080,
        "http",
        vec![rds_hcm("http_proxy")],
    )];
    assert_ack(&stream.push_and_answer(LDS, "1", listeners).await, "1");
    let rds = stream.recv().await;
    assert_eq!(
        (rds.type_url.as_str(), rds.resource_names.clone()),
        (RDS, vec!["http_proxy".to_owned()])
    );
    let routes = vec![route_config(
        "http_proxy",
        vec![
            route(regex("/api/v[0-9]+"), MESSENGER),
            route(prefix("/"), MESSENGER),
        ],
    )];
    assert_ack(&stream.push_and_answer(RDS, "1", routes).await, "1");
}

#[tokio::test]
async fn valid_config_is_acked_and_bad_config_is_nacked_with_reasons() {
    let proxy = Harness::start().await;
    let mut stream = proxy.next_stream().await;
    let (code, _) = proxy.admin_get("/ready").await;
    assert_eq!(code, 503, "not ready before any config");

    apply_v1(&mut stream).await;
    let good = proxy.store.load();
    assert!(good.listeners.contains_key(LISTENER));
    assert!(good.route_configs.contains_key("http_proxy"));
    assert_eq!(
        good.endpoints[MESSENGER].endpoints[0].address.to_string(),
        "127.1.10.2:9080"
    );
    assert_eq!(proxy.admin_get("/ready").await, (200, "LIVE\n".to_owned()));
    let dump = proxy.config_dump().await;
    for type_url in [CDS, EDS, LDS, RDS] {
        assert_eq!(dump["acked"][type_url], "1", "{type_url} in {dump}");
    }
    assert!(
        dump["snapshot"]["listeners"][LISTENER].is_object(),
        "{dump}"
    );
    assert!(
        dump["snapshot"]["clusters"][MESSENGER].is_object(),
        "{dump}"
    );
    assert!(dump["last_nack"].is_null());

    // 1. A listener with a network filter the proxy does not implement.
    let mongo = network_filter(
        "envoy.filters.network.mongo_proxy",
        Any {
            type_url:
                "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"
                    .into(),
            value: vec![],
        },
    );
    let listeners = vec![
        listener(LISTENER, 15080, "http", vec![rds_hcm("http_proxy")]),
        listener("127.0.10.1_27017", 27017, "mongo-chain", vec![mongo]),
    ];
    let nack = stream.push_and_answer(LDS, "2", listeners).await;
    assert_eq!(
        nack.version_info, "1",
        "a NACK carries the last good version"
    );
    let msg = nack_message(&nack);
    assert!(msg.contains("Listener 127.0.10.1_27017"), "{msg}");
    assert!(
        msg.contains("unsupported filter envoy.filters.network.mongo_proxy"),
        "{msg}"
    );
    assert!(msg.contains("chain \"mongo-chain\""), "{msg}");
    assert!(
        !msg.contains(LISTENER),
        "the good listener is not blamed: {msg}"
    );

    // 2. A route to a cluster that is not in the snapshot, in a route
    // configuration that asks for the check (over RDS Envoy's default is
    // not to check: the route answers 503 NC until the cluster comes).
    let routes = vec![pack_any(RouteConfiguration {
        validate_clusters: Some(BoolValue { value: true }),
        ..route_config_proto(
            "http_proxy",
            vec![route(
                prefix("/"),
                "outbound|9080||nowhere.default.svc.cluster.local",
            )],
        )
    })];
    let nack = stream.push_and_answer(RDS, "2", routes).await;
    assert_eq!(nack.version_info, "1");
    assert_eq!(nack.resource_names, ["http_proxy"]);
    let msg = nack_message(&nack);
    assert!(msg.contains("RouteConfiguration http_proxy"), "{msg}");
    assert!(
        msg.contains("unknown cluster \"outbound|9080||nowhere.default.svc.cluster.local\""),
        "{msg}"
    );

    // 3. An invalid regex.
    let routes = vec![route_config(
        "http_proxy",
        vec![route(regex("/api/(v1"), MESSENGER)],
    )];
    let nack = stream.push_and_answer(RDS, "3", routes).await;
    assert_eq!(nack.version_info, "1");
    let msg = nack_message(&nack);
    assert!(msg.contains("RouteConfiguration http_proxy"), "{msg}");
    assert!(msg.contains("invalid regex \"/api/(v1\""), "{msg}");

    // The v1 snapshot kept serving through all of it.
    assert!(
        std::sync::Arc::ptr_eq(&good, &proxy.store.load()),
        "a NACK must not publish"
    );
    assert_eq!(proxy.admin_get("/ready").await.0, 200);
    let dump = proxy.config_dump().await;
    assert_eq!(dump["acked"][LDS], "1");
    assert_eq!(dump["acked"][RDS], "1");
    assert_eq!(dump["last_nack"]["type_url"], RDS);
    assert_eq!(dump["last_nack"]["version"], "3");
    assert!(dump["last_nack"]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid regex"));
    assert!(dump["nacks"][LDS]["reason"]
        .as_str()
        .unwrap()
        .contains("mongo_proxy"));
    assert!(
        !proxy.client.is_finished(),
        "the xDS client is still running"
    );

    // A good update after the NACKs is applied.
    let routes = vec![route_config(
        "http_proxy",
        vec![route(prefix("/v2"), MESSENGER)],
    )];
    assert_ack(&stream.push_and_answer(RDS, "4", routes).await, "4");
    assert!(!std::sync::Arc::ptr_eq(&good, &proxy.store.load()));
    let (_, listeners) = proxy.admin_get("/listeners").await;
    assert_eq!(listeners, format!("{LISTENER}::127.0.10.1:15080\n"));
    let (_, clusters) = proxy.admin_get("/clusters").await;
    assert!(
        clusters.contains(&format!("{MESSENGER}::127.1.10.2:9080::weight::1")),
        "{clusters}"
    );

    proxy.stop().await;
}

#[tokio::test]
async fn garbage_resources_are_nacked_not_fatal() {
    let proxy = Harness::start().await;
    let mut stream = proxy.next_stream().await;
    apply_v1(&mut stream).await;
    let garbage = Any {
        type_url: CDS.into(),
        value: vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    };
    let wrong_type = listener("x", 1, "c", vec![rds_hcm("r")]);
    let nack = stream
        .push_and_answer(CDS, "2", vec![garbage, wrong_type])
        .await;
    let msg = nack_message(&nack);
    assert!(msg.contains("Cluster #0: cannot decode"), "{msg}");
    assert!(msg.contains("Cluster #1: invalid type_url"), "{msg}");
    assert_eq!(nack.version_info, "1");
    assert!(proxy.store.load().clusters.contains_key(MESSENGER));
    proxy.stop().await;
}

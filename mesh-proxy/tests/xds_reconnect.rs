//! The proxy keeps its snapshot when pilot goes away, reconnects by itself,
//! and resumes with the versions and subscriptions it had.

mod xds_support;

use std::time::{Duration, Instant};

use xds_support::*;

const MESSENGER: &str = "outbound|9080||messenger.default.svc.cluster.local";

#[tokio::test]
async fn reconnects_and_resumes_with_last_versions() {
    let proxy = Harness::start().await;
    let mut stream = proxy.next_stream().await;
    stream.recv().await; // CDS
    stream.recv().await; // LDS
    stream
        .push_and_answer(CDS, "c7", vec![eds_cluster(MESSENGER)])
        .await;
    stream.recv().await; // EDS subscription
    let cla = envoy_types::util::pack_any(endpoints(MESSENGER, "127.1.10.2", 9080));
    stream.push_and_answer(EDS, "e3", vec![cla]).await;
    stream
        .push_and_answer(
            LDS,
            "l2",
            vec![listener("l", 15080, "c", vec![rds_hcm("http_proxy")])],
        )
        .await;
    stream.recv().await; // RDS subscription
    assert_eq!(
        proxy.admin_get("/ready").await.0,
        503,
        "not ready while the listener warms"
    );
    let routes = vec![route_config(
        "http_proxy",
        vec![route(prefix("/"), MESSENGER)],
    )];
    stream.push_and_answer(RDS, "r4", routes).await;
    assert_eq!(proxy.admin_get("/ready").await.0, 200);
    let before = proxy.store.load();

    let dropped = Instant::now();
    stream.fail().await;
    let mut again = proxy.next_stream().await;
    assert!(
        dropped.elapsed() < Duration::from_secs(5),
        "reconnect is prompt"
    );
    let mut first = Vec::new();
    for _ in 0..4 {
        let r = again.recv().await;
        assert!(r.response_nonce.is_empty(), "no nonce on a new stream");
        assert!(r.error_detail.is_none());
        first.push((r.type_url, r.version_info, r.resource_names));
    }
    assert_eq!(
        first,
        [
            (CDS.to_owned(), "c7".to_owned(), vec![]),
            (EDS.to_owned(), "e3".to_owned(), vec![MESSENGER.to_owned()]),
            (LDS.to_owned(), "l2".to_owned(), vec![]),
            (
                RDS.to_owned(),
                "r4".to_owned(),
                vec!["http_proxy".to_owned()]
            ),
        ]
    );
    assert!(
        std::sync::Arc::ptr_eq(&before, &proxy.store.load()),
        "the snapshot kept serving"
    );
    assert_eq!(proxy.admin_get("/ready").await.0, 200);
    // `connected` flips when the response headers arrive, just after the requests.
    let deadline = Instant::now() + STEP;
    while proxy.config_dump().await["connected"] != true {
        assert!(
            Instant::now() < deadline,
            "config_dump never showed connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The new stream works: a push is ACKed.
    let r = again
        .push_and_answer(CDS, "c8", vec![eds_cluster(MESSENGER)])
        .await;
    assert!(r.error_detail.is_none() && r.version_info == "c8");
    proxy.stop().await;
}

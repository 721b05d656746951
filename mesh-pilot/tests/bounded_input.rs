//! A real pilot process fed what a careless operator or a rogue client
//! sends (the hardening issue): a 50 MB config file, a 1 MB string
//! aliased 200 times, 20 ADS streams with 3 MB node ids, and more streams
//! from one address than it allows. Each is refused with a clear error and
//! the process's resident memory (VmRSS) grows by less than the limit the
//! issue sets; the config it served before stays served. A big valid file
//! served and then removed gives its memory back (pilot runs on jemalloc
//! with background purging: within seconds, so the test waits for it).

mod fake_proxy;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use fake_proxy::node;
use mesh_api::names::CLUSTER_TYPE;
use serde_json::Value;
use support::{bin, eventually, free_port, Procs};

const SERVICES: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
";

const MB: u64 = 1024 * 1024;

/// A memory figure of `pid` from `/proc/PID/status`, in bytes: `VmRSS`
/// (resident now) or `VmHWM` (the peak of resident memory so far).
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {status}"));
    kb * 1024
}

fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

fn peak(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM")
}

/// Waits (up to 30 s) until resident memory is less than `limit` above
/// `base`: pilot's allocator hands freed pages back in the background,
/// within seconds. The growth when it got there; fails with the last
/// growth if it never does.
async fn rss_settles_below(pid: u32, base: u64, limit: u64, what: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let grown = rss(pid).saturating_sub(base);
        if grown < limit {
            return grown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "RSS stayed {} MB above {} MB {what} (limit {} MB)",
            grown / MB,
            base / MB,
            limit / MB
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn configz(client: &reqwest::Client, debug: u16) -> Option<Value> {
    let resp = client
        .get(format!("http://127.0.0.1:{debug}/debug/configz"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// Wait until configz reports a TooLarge error for `file`; its message.
async fn too_large_error(client: &reqwest::Client, debug: u16, file: &str) -> String {
    eventually(
        &format!("the size error of {file}"),
        Duration::from_secs(30),
        || async {
            let doc = configz(client, debug).await?;
            doc["errors"].as_array()?.iter().find_map(|e| {
                let ours = e["file"].as_str()?.ends_with(file) && e["kind"] == "TooLarge";
                ours.then(|| e["message"].as_str().unwrap_or_default().to_string())
            })
        },
    )
    .await
}

fn write(dir: &Path, name: &str, text: &str) {
    // Written beside, then renamed in: the watcher sees one whole file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

#[tokio::test]
async fn oversized_config_and_rogue_streams_are_refused_with_bounded_memory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("config");
    std::fs::create_dir(&config).expect("config dir");
    std::fs::write(config.join("services.yaml"), SERVICES).expect("services");
    let (xds, debug) = (free_port(), free_port());
    let mut procs = Procs::new(&tmp.path().join("logs"));
    let mut cmd = Command::new(bin("mesh-pilot"));
    cmd.arg("--config-dir")
        .arg(&config)
        .args(["--xds-address", &format!("127.0.0.1:{xds}")])
        .args(["--debug-address", &format!("127.0.0.1:{debug}")])
        .args(["--max-streams-per-peer", "24"])
        .env("RUST_LOG", "info");
    procs.spawn("pilot", cmd);
    let pid = procs.pid("pilot");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    eventually("pilot serving configz", Duration::from_secs(30), || async {
        let doc = configz(&client, debug).await?;
        (doc["objects"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let before = rss(pid);

    // A 50 MB file of real config: refused by its size, never parsed.
    let doc = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs-NAME}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n---\n";
    let mut big = String::with_capacity(51 * MB as usize);
    let mut i = 0;
    while (big.len() as u64) < 50 * MB {
        big.push_str(&doc.replace("NAME", &i.to_string()));
        i += 1;
    }
    write(&config, "big.yaml", &big);
    drop(big);
    let message = too_large_error(&client, debug, "big.yaml").await;
    assert!(message.contains("limit of 8 MiB"), "{message}");
    // Never read into memory: even the peak stays low.
    let top = peak(pid).saturating_sub(before);
    assert!(
        top < 100 * MB,
        "RSS peaked {} MB up for the 50 MB file",
        top / MB
    );
    let grown = rss_settles_below(pid, before, 100 * MB, "after the 50 MB file").await;
    eprintln!(
        "RSS {} MB at start, +{} KB after the 50 MB file (peak +{} KB)",
        before / MB,
        grown / 1024,
        top / 1024
    );

    // A 1 MB string aliased 200 times: refused by the bytes it expands to.
    let mut aliased = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: aliased}}\nspec:\n  hosts: [&big {}]\n  gateways:\n",
        "x".repeat(MB as usize)
    );
    for _ in 0..200 {
        aliased.push_str("  - *big\n");
    }
    write(&config, "aliased.yaml", &aliased);
    let message = too_large_error(&client, debug, "aliased.yaml").await;
    assert!(message.contains("aliases expand"), "{message}");
    let top = peak(pid).saturating_sub(before);
    assert!(
        top < 100 * MB,
        "RSS peaked {} MB up for the alias file",
        top / MB
    );
    let grown = rss_settles_below(pid, before, 100 * MB, "after the alias file").await;
    eprintln!(
        "RSS +{} KB after the alias file (peak +{} KB)",
        grown / 1024,
        top / 1024
    );
    // The first config is still what is served.
    let doc = configz(&client, debug).await.expect("configz");
    assert_eq!(doc["objects"].as_array().map(Vec::len), Some(1), "{doc}");

    // A big valid file (2,000 VirtualServices) is served, then
    // removed: the memory it took goes back.
    let before = rss(pid);
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs-NAME}\nspec:\n  hosts: [hNAME.example.com]\n  http:\n  - route:\n    - destination: {host: reviews}\n---\n";
    let mut many = String::new();
    let count = 2_000;
    for i in 0..count {
        many.push_str(&vs.replace("NAME", &i.to_string()));
    }
    assert!((many.len() as u64) < mesh_api::MAX_FILE_BYTES);
    write(&config, "many.yaml", &many);
    eventually("the big file served", Duration::from_secs(120), || async {
        let doc = configz(&client, debug).await?;
        (doc["objects"].as_array()?.len() == 1 + count).then_some(())
    })
    .await;
    let served = rss(pid);
    std::fs::remove_file(config.join("many.yaml")).expect("remove");
    eventually("the big file gone", Duration::from_secs(60), || async {
        let doc = configz(&client, debug).await?;
        (doc["objects"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let kept = rss_settles_below(
        pid,
        before,
        10 * MB,
        "once the 2,000 VirtualServices were removed",
    )
    .await;
    eprintln!(
        "RSS {} MB before the {} KB file, {} MB while served, +{} KB after it was removed",
        before / MB,
        many.len() / 1024,
        served / MB,
        kept / 1024
    );

    // 20 streams whose node id is 3 MB each: each refused, none kept.
    let before = rss(pid);
    let huge_id = format!(
        "sidecar~127.0.0.1~{}.default~default.svc.cluster.local",
        "p".repeat(3 * MB as usize)
    );
    let mut refused = 0;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let huge_id = huge_id.clone();
        streams.push(tokio::spawn(async move {
            let mut ads =
                AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{xds}"))
                    .await
                    .expect("connect")
                    .max_decoding_message_size(64 * MB as usize);
            let request = DiscoveryRequest {
                node: Some(node(&huge_id, &[], &[])),
                type_url: CLUSTER_TYPE.into(),
                ..Default::default()
            };
            let outbound = tokio_stream::iter(vec![request]);
            match ads.stream_aggregated_resources(outbound).await {
                Err(status) => Some(status),
                Ok(resp) => {
                    let mut rx = resp.into_inner();
                    match tokio::time::timeout(Duration::from_secs(10), rx.message()).await {
                        Ok(Err(status)) => Some(status),
                        _ => None,
                    }
                }
            }
        }));
    }
    for stream in streams {
        let status = stream.await.expect("task").expect("the stream is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("over the limit"),
            "{}",
            status.message()
        );
        refused += 1;
    }
    assert_eq!(refused, 20);
    let grown = rss_settles_below(pid, before, 20 * MB, "after 20 huge node ids").await;
    eprintln!(
        "RSS +{} KB after 20 streams with 3 MB node ids",
        grown / 1024
    );
    // Nothing of them is kept for syncz.
    let syncz = client
        .get(format!("http://127.0.0.1:{debug}/debug/syncz"))
        .send()
        .await
        .expect("syncz")
        .text()
        .await
        .expect("body");
    assert!(syncz.len() < 64 * 1024, "syncz is {} bytes", syncz.len());

    // More streams from one address than --max-streams-per-peer: the
    // stream past the cap gets RESOURCE_EXHAUSTED, the others stay open.
    let mut open = Vec::new();
    for i in 0..24 {
        let id = format!("sidecar~127.0.0.1~p{i}.default~default.svc.cluster.local");
        let p = fake_proxy::FakeProxy::connect(
            format!("127.0.0.1:{xds}").parse().expect("addr"),
            node(&id, &[], &[]),
        )
        .await;
        p.send(CLUSTER_TYPE, &[], "", "").await;
        open.push(p);
    }
    for p in &mut open {
        let first = tokio::time::timeout(Duration::from_secs(10), p.rx.message())
            .await
            .expect("answer in time");
        assert!(matches!(first, Ok(Some(_))), "{first:?}");
    }
    let mut ads = AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{xds}"))
        .await
        .expect("connect");
    let outbound = tokio_stream::iter(vec![DiscoveryRequest {
        node: Some(node(
            "sidecar~127.0.0.1~extra.default~default.svc.cluster.local",
            &[],
            &[],
        )),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    }]);
    let status = match ads.stream_aggregated_resources(outbound).await {
        Err(status) => status,
        Ok(resp) => resp
            .into_inner()
            .message()
            .await
            .expect_err("refused past the cap"),
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    drop(open);
    procs.assert_running();
    // The log says why, briefly: no 3 MB lines.
    let log = std::fs::read_to_string(tmp.path().join("logs/pilot.log")).expect("log");
    assert!(
        log.len() < 4 * MB as usize,
        "pilot log is {} bytes",
        log.len()
    );
    assert!(log.contains("too many streams from this address"), "{log}");
}

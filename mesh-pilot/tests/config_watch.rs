//! The config directory watch feeding the push queue, end to end in
//! process: edits made the way editors and `meshctl apply` make them (write
//! a temp file, rename it over), new files, bad edits and deletions all
//! reach the push context, debounced.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use mesh_pilot::push::{self, PushContext};
use mesh_pilot::source::{dir::DirSource, watch as dir_watch, ConfigSnapshot};

const SE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: messenger, namespace: default}
spec:
  hosts: [messenger.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: messenger}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: messenger, namespace: default}
spec:
  host: messenger
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

fn vs(subset: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: messenger, namespace: default}}\nspec:\n  hosts: [messenger]\n  http: [{{route: [{{destination: {{host: messenger, subset: {subset}}}}}]}}]\n"
    )
}

fn subset(ctx: &PushContext) -> Option<String> {
    ctx.config.virtual_services().next().and_then(|v| {
        v.spec.http[0].route[0]
            .destination
            .as_ref()
            .and_then(|d| d.subset.clone())
    })
}

/// Write through a hidden temp file and rename it over, as editors do.
fn replace(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Wait (bounded) for a push context satisfying `want`.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<PushContext>>,
    what: &str,
    want: impl Fn(&PushContext) -> bool,
) -> Arc<PushContext> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ctx = rx.borrow_and_update().clone();
        if want(&ctx) {
            return ctx;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_reach_the_push_context() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("services.yaml"), SE).unwrap();
    std::fs::write(dir.join("route.yaml"), vs("v1")).unwrap();

    let mut source = DirSource::new(dir);
    let first: Arc<ConfigSnapshot> = Arc::new(source.reload().unwrap().unwrap());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (config_tx, config_rx) = watch::channel(first.clone());
    let (push_tx, mut push_rx) = watch::channel(Arc::new(PushContext::new(first)));
    let _watch = dir_watch::spawn(source, config_tx, stop_rx.clone()).unwrap();
    tokio::spawn(push::debounce(
        config_rx.clone(),
        push_tx,
        Duration::from_millis(50),
        stop_rx,
    ));
    assert_eq!(subset(&push_rx.borrow_and_update()).as_deref(), Some("v1"));

    // Temp file renamed over the route.
    replace(dir, "route.yaml", &vs("v2"));
    wait_for(&mut push_rx, "v2 after rename", |c| {
        subset(c).as_deref() == Some("v2")
    })
    .await;

    // A bad edit: reported, the last good route stays.
    replace(dir, "route.yaml", &vs("v2").replace("hosts:", "hostz:"));
    let ctx = wait_for(&mut push_rx, "the error", |c| !c.config.errors.is_empty()).await;
    assert_eq!(subset(&ctx).as_deref(), Some("v2"));
    assert_eq!(
        (
            ctx.config.errors[0].file.as_path(),
            ctx.config.errors[0].line
        ),
        (dir.join("route.yaml").as_path(), Some(5)),
        "{:?}",
        ctx.config.errors
    );

    // Fixed in place (plain write), then deleted.
    std::fs::write(dir.join("route.yaml"), vs("v1")).unwrap();
    wait_for(&mut push_rx, "v1 after the fix", |c| {
        c.config.errors.is_empty() && subset(c).as_deref() == Some("v1")
    })
    .await;
    std::fs::remove_file(dir.join("route.yaml")).unwrap();
    wait_for(&mut push_rx, "the route gone", |c| subset(c).is_none()).await;

    // The registry follows the config in the same push.
    assert!(push_rx
        .borrow()
        .registry
        .service("messenger.default.svc.cluster.local")
        .is_some());
    stop_tx.send_replace(true);
}

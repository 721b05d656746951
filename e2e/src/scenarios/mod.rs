//! Scenarios written once against [`Cluster`], run by each driver's test.
//! Each returns an error naming what it expected and what it saw, with the
//! pods' logs, so a failure on CI explains itself.

use crate::cluster::{Cluster, Sidecar, Workload};
use crate::E2eError;

/// The postcard sample's image on kind (built from samples/postcard/Dockerfile).
pub const POSTCARD_IMAGE: &str = "postcard:e2e";

/// A client pod that only sits there so tests can run commands in it:
/// locally `mesh-e2e-tool` (which also fetches), on kind a curl image.
pub fn client(cluster: &dyn Cluster, sidecar: Sidecar) -> Workload {
    let w = match cluster.driver() {
        "kind" => Workload::new("client", "client", &["sleep", "infinity"])
            .image("curlimages/curl:8.10.1"),
        _ => Workload::new(
            "client",
            "client",
            &["mesh-e2e-tool", "serve-http", "--listen", "0.0.0.0:8000"],
        )
        .port("http", 8000, "HTTP"),
    };
    w.sidecar(sidecar)
}

/// Postcard: greeter calls messenger by its service name (no proxy settings
/// in the app), through capture; a client in the mesh loads greeter's page
/// and sees messenger's text on it.
pub fn postcard(cluster: &mut dyn Cluster, greeter_sidecar: Sidecar) -> Result<(), E2eError> {
    let text = "Hello from messenger v1";
    let messenger = Workload::new("messenger-v1", "messenger", &["messenger"])
        .label("version", "v1")
        .service_account("postcard-messenger")
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .env("MESSAGE_TEXT", text)
        .image(POSTCARD_IMAGE);
    let greeter = Workload::new("greeter-v1", "greeter", &["greeter"])
        .label("version", "v1")
        .service_account("postcard-greeter")
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .image(POSTCARD_IMAGE)
        .sidecar(greeter_sidecar);
    cluster.deploy(&messenger)?;
    cluster.deploy(&greeter)?;
    let client = client(cluster, Sidecar::MeshProxy);
    cluster.deploy(&client)?;
    let url = format!("{}/", cluster.service_url("greeter", "default", 9080));
    let page = cluster.http_get("client", &url)?;
    if page.status == 200 && page.body.contains(text) {
        return Ok(());
    }
    let logs: Vec<String> = ["greeter-v1", "messenger-v1", "client"]
        .iter()
        .map(|p| format!("== {p} ==\n{}", cluster.logs(p).unwrap_or_default()))
        .collect();
    Err(E2eError::Invalid(format!(
        "GET {url} from client: status {}, expected 200 with {text:?}; body:\n{}\n{}",
        page.status,
        page.body,
        logs.join("\n")
    )))
}

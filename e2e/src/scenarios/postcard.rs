//! Postcard through capture: greeter calls `http://messenger:9080/message`
//! by name (no proxy settings), its sidecar intercepts the call; a mesh
//! client and the ingress gateway both see messenger v1's text by default
//! and v2's once the sample's `routes/all-v2.yaml` is applied.

use std::time::Duration;

use super::{client, get_from, settle, with_logs};
use crate::cluster::{Cluster, Sidecar, Workload};
use crate::{http, E2eError};

/// The postcard sample's image on kind (built from samples/postcard/Dockerfile).
pub const POSTCARD_IMAGE: &str = "postcard:e2e";

const V1_TEXT: &str = "Hello from messenger v1";
const V2_TEXT: &str = "Hello from messenger v2";

const DESTINATION_RULES: &str =
    include_str!("../../../samples/postcard/mesh/destination-rules.yaml");
const ROUTE_V1: &str = include_str!("../../../samples/postcard/mesh/messenger-route.yaml");
const ROUTE_ALL_V2: &str = include_str!("../../../samples/postcard/mesh/routes/all-v2.yaml");
const GATEWAY: &str = include_str!("../../../samples/postcard/mesh/gateway.yaml");

const PODS: [&str; 5] = [
    "greeter-v1",
    "messenger-v1",
    "messenger-v2",
    "client",
    "istio-ingressgateway",
];

fn messenger(version: &str, text: &str) -> Workload {
    Workload::new(&format!("messenger-{version}"), "messenger", &["messenger"])
        .label("version", version)
        .service_account("postcard-messenger")
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .env("MESSAGE_TEXT", text)
        .image(POSTCARD_IMAGE)
}

/// Runs the scenario with `greeter_sidecar` beside greeter (mesh-proxy or
/// Envoy); every other pod has mesh-proxy.
pub fn postcard(cluster: &mut dyn Cluster, greeter_sidecar: Sidecar) -> Result<(), E2eError> {
    let greeter = Workload::new("greeter-v1", "greeter", &["greeter"])
        .label("version", "v1")
        .service_account("postcard-greeter")
        .port("http", 9080, "HTTP")
        .env("LISTEN", "0.0.0.0:9080")
        .image(POSTCARD_IMAGE)
        .sidecar(greeter_sidecar);
    cluster.deploy(&messenger("v1", V1_TEXT))?;
    cluster.deploy(&messenger("v2", V2_TEXT))?;
    cluster.deploy(&greeter)?;
    let client = client(cluster, Sidecar::MeshProxy);
    cluster.deploy(&client)?;
    cluster.deploy_ingress()?;
    for yaml in [DESTINATION_RULES, ROUTE_V1, GATEWAY] {
        cluster.apply(yaml)?;
    }
    check(cluster).map_err(|e| with_logs(cluster, &PODS, e))
}

fn check(cluster: &mut dyn Cluster) -> Result<(), E2eError> {
    // The app was given no proxy: greeter logs the proxy it uses at start.
    let greeter_logs = cluster.logs("greeter-v1")?;
    if !greeter_logs.contains("proxy=None") {
        return Err(E2eError::Invalid(
            "greeter should have started without any proxy setting (`proxy=None` in its log)"
                .into(),
        ));
    }
    let page = format!("{}/", cluster.service_url("greeter", "default", 9080));
    let ingress = format!("{}/", cluster.ingress_url()?);
    for (text, other) in [(V1_TEXT, V2_TEXT), (V2_TEXT, V1_TEXT)] {
        if text == V2_TEXT {
            cluster.apply(ROUTE_ALL_V2)?;
        }
        let from_client = || get_from(cluster, "client", &page);
        let from_outside =
            || http::get(&ingress, Duration::from_secs(5)).map_err(|e| e.to_string());
        for (via, get) in [
            ("client → greeter (capture)", &from_client as &dyn Fn() -> _),
            ("test → ingress gateway → greeter", &from_outside),
        ] {
            settle(&format!("{via} shows {text:?}"), || {
                let r = get()?;
                let (has, has_other) = (r.body.contains(text), r.body.contains(other));
                if r.status == 200 && has && !has_other {
                    Ok(())
                } else {
                    Err(format!(
                        "{via}: status {}, {text:?} {}, {other:?} {}",
                        r.status,
                        if has { "present" } else { "absent" },
                        if has_other { "present" } else { "absent" },
                    ))
                }
            })?;
        }
    }
    Ok(())
}

//! The [`Cluster`] driver trait the scenarios are written against, and what
//! they hand it: a [`Workload`] (one pod of a Kubernetes Deployment, with
//! the Service it backs; defined by the local runtime, `mesh-local`), mesh
//! config YAML, and commands to run in pods.
//!
//! Blocking on purpose: scenarios are sequences of slow steps, and a driver
//! is made of external tools (`ip`, `kubectl`), so async would add nothing.

pub use mesh_local::{is_dns_label, Port, Sidecar, Workload};

use crate::E2eError;

/// What a command run in a pod printed, and how it exited.
pub type ExecOutput = mesh_local::cmd::Finished;

/// An HTTP response as seen from inside a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body, lossily decoded.
    pub body: String,
}

/// A place to run scenarios: builds pods, feeds mesh config, runs commands
/// inside pods and tears everything down. Implemented by
/// [`crate::LocalCluster`] (network namespaces) and [`crate::KindCluster`].
pub trait Cluster {
    /// `local` or `kind`, for messages.
    fn driver(&self) -> &'static str;

    /// Starts a pod (app plus sidecar) and its Service, and returns once the
    /// app accepts connections and the sidecar is ready.
    fn deploy(&mut self, workload: &Workload) -> Result<(), E2eError>;

    /// Starts the ingress gateway (`istio-ingressgateway` in `istio-system`,
    /// labels `istio: ingressgateway`), reachable at [`Cluster::ingress_url`].
    fn deploy_ingress(&mut self) -> Result<(), E2eError>;

    /// Applies mesh config (Istio YAML, one or more documents).
    fn apply(&mut self, yaml: &str) -> Result<(), E2eError>;

    /// Deletes mesh config applied earlier with the same YAML.
    fn delete(&mut self, yaml: &str) -> Result<(), E2eError>;

    /// The URL an app inside the mesh uses for a service: by name only.
    fn service_url(&self, service: &str, namespace: &str, port: u16) -> String {
        format!("http://{service}.{namespace}:{port}")
    }

    /// Sets the mesh config (Istio `MeshConfig` YAML, e.g.
    /// `outboundTrafficPolicy: {mode: REGISTRY_ONLY}`) and restarts the
    /// control plane with it if it runs; proxies reconnect and get the new
    /// config shortly after (callers poll for the effect).
    fn set_mesh_config(&mut self, yaml: &str) -> Result<(), E2eError>;

    /// The IP address of `pod`.
    fn pod_address(&self, pod: &str) -> Result<String, E2eError>;

    /// How to run `mesh-e2e-tool` inside a pod (a path locally; the name in
    /// the tool's image on kind).
    fn tool(&self) -> Result<String, E2eError>;

    /// A URL of the ingress gateway that the test process itself can reach.
    fn ingress_url(&self) -> Result<String, E2eError>;

    /// Runs `argv` inside `pod`'s app container (or network namespace) and
    /// returns its output whatever the exit code.
    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError>;

    /// A plain HTTP GET made from inside `pod`, as its app would make it.
    fn http_get(&self, pod: &str, url: &str) -> Result<HttpResponse, E2eError>;

    /// Everything `pod`'s processes logged so far (app and sidecar).
    fn logs(&self, pod: &str) -> Result<String, E2eError>;

    /// Removes everything the cluster created. Also done on drop.
    fn teardown(&mut self) -> Result<(), E2eError>;
}

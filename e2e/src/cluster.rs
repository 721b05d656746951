//! The [`Cluster`] driver trait the scenarios are written against, and what
//! they hand it: a [`Workload`] (one pod of a Kubernetes Deployment, with
//! the Service it backs; defined by the local runtime, `mesh-local`), mesh
//! config YAML, and commands to run in pods.
//!
//! Blocking on purpose: scenarios are sequences of slow steps, and a driver
//! is made of external tools (`ip`, `kubectl`), so async would add nothing.

pub use mesh_local::{is_dns_label, Port, Sidecar, Workload};

pub use crate::http::HttpResponse;
use crate::http::Request;
use crate::E2eError;

/// What a command run in a pod printed, and how it exited.
pub type ExecOutput = mesh_local::cmd::Finished;

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
    /// labels `istio: ingressgateway`), its Gateway server ports 80, 443,
    /// 15443 and 31400 reachable at [`Cluster::ingress_address`].
    fn deploy_ingress(&mut self) -> Result<(), E2eError>;

    /// Starts the egress gateway (`istio-egressgateway` in `istio-system`,
    /// labels `istio: egressgateway`), a Service with `ports` that sidecars
    /// can route to, each Gateway server port bound as itself.
    fn deploy_egress(&mut self, ports: &[Port]) -> Result<(), E2eError>;

    /// Starts a real PostgreSQL (port 5432, user `postgres`, no password)
    /// in pod `name` of namespace `namespace`, outside the mesh: no sidecar
    /// and no Service; reach it by [`Cluster::pod_address`]. It logs each
    /// connection with the peer's address (`connection received: host=IP`).
    fn deploy_postgres(&mut self, name: &str, namespace: &str) -> Result<(), E2eError>;

    /// Puts a file where every pod and gateway can read it (certificates,
    /// keys) and returns its path as they see it.
    fn put_file(&mut self, name: &str, contents: &str) -> Result<String, E2eError>;

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
    /// config shortly after (callers poll for the effect). Set before the
    /// first pod, it costs no restart.
    fn set_mesh_config(&mut self, yaml: &str) -> Result<(), E2eError>;

    /// The IP address of `pod`.
    fn pod_address(&self, pod: &str) -> Result<String, E2eError>;

    /// How to run `mesh-e2e-tool` inside a pod (a path locally; the name in
    /// the tool's image on kind).
    fn tool(&self) -> Result<String, E2eError>;

    /// A URL of the ingress gateway's port 80 that the test process itself
    /// can reach.
    fn ingress_url(&self) -> Result<String, E2eError>;

    /// `IP:PORT` where the test process reaches the ingress gateway's
    /// Gateway server port `port` (80, 443, 15443, 31400).
    fn ingress_address(&self, port: u16) -> Result<String, E2eError>;

    /// Runs `argv` inside `pod`'s app container (or network namespace) and
    /// returns its output whatever the exit code.
    fn exec(&self, pod: &str, argv: &[&str]) -> Result<ExecOutput, E2eError>;

    /// An HTTP request made from inside `pod`, as its app would make it
    /// (no redirect followed).
    fn request(&self, pod: &str, req: &Request) -> Result<HttpResponse, E2eError>;

    /// A plain HTTP GET made from inside `pod`, as its app would make it.
    fn http_get(&self, pod: &str, url: &str) -> Result<HttpResponse, E2eError> {
        self.request(pod, &Request::get(url))
    }

    /// Everything `pod`'s processes logged so far (app and sidecar).
    fn logs(&self, pod: &str) -> Result<String, E2eError>;

    /// What `pod`'s proxy (sidecar or gateway) printed so far, its access
    /// log lines included (read them with [`crate::access_log::parse`]).
    fn proxy_log(&self, pod: &str) -> Result<String, E2eError>;

    /// Removes everything the cluster created. Also done on drop.
    fn teardown(&mut self) -> Result<(), E2eError>;
}

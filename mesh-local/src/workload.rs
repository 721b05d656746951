//! What a local pod runs: a [`Workload`] (one pod of a Kubernetes
//! Deployment, with the Service it backs) and the [`Sidecar`] beside it.
//! The e2e suites' `Cluster` drivers take the same type, so a scenario's
//! pods mean the same on network namespaces and on kind.

use std::collections::BTreeMap;

use crate::LocalError;

/// Which proxy runs beside the app in a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// Our `mesh-proxy`, after `mesh-proxy init` set up capture.
    MeshProxy,
    /// A real Envoy with a bootstrap pointing at pilot, same capture.
    Envoy,
    /// No sidecar and no capture: the pod is outside the mesh.
    None,
}

/// A service port of a workload (container port = service port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Port name, which is also its protocol hint in Istio (`http`, `tcp-db`).
    pub name: String,
    /// The port number.
    pub number: u16,
    /// Istio protocol: `HTTP`, `HTTP2`, `GRPC`, `TCP`, `TLS`, `MONGO`, ...
    pub protocol: String,
}

/// One pod running an unmodified app, and the Service (selector `app`) it
/// belongs to. Pod names are unique within a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Pod (Deployment) name, e.g. `messenger-v1`.
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Name of the Service it backs; its pods carry `app: SERVICE`.
    pub service: String,
    /// Pod labels; `app` is always the service name.
    pub labels: BTreeMap<String, String>,
    /// Service account (the SPIFFE identity's `sa`).
    pub service_account: String,
    /// Ports the app listens on.
    pub ports: Vec<Port>,
    /// The app's command line. Locally a bare name is looked up in the
    /// runtime's binary directory first, then on PATH.
    pub command: Vec<String>,
    /// The app's environment (only these; it is given no proxy settings).
    pub env: BTreeMap<String, String>,
    /// Container image, for drivers that run containers (kind), e.g.
    /// `postcard:e2e`; the local runtime ignores it.
    pub image: String,
    /// The proxy beside it.
    pub sidecar: Sidecar,
    /// False for a pod that backs no Service: nothing in the mesh's
    /// registry points at it (an "unknown destination").
    pub with_service: bool,
    /// Run the app as this UID (a Kubernetes `runAsUser`), e.g. a database
    /// that refuses to run as root; root when `None`.
    pub run_as: Option<u32>,
}

impl Workload {
    /// A pod `name` in namespace `default` backing `service`, labelled
    /// `app: SERVICE`, service account `SERVICE`, with a mesh-proxy sidecar.
    pub fn new(name: &str, service: &str, command: &[&str]) -> Workload {
        Workload {
            name: name.to_string(),
            namespace: "default".to_string(),
            service: service.to_string(),
            labels: BTreeMap::from([("app".to_string(), service.to_string())]),
            service_account: service.to_string(),
            ports: Vec::new(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            image: String::new(),
            sidecar: Sidecar::MeshProxy,
            with_service: true,
            run_as: None,
        }
    }

    /// Runs the app as `uid`.
    pub fn run_as(mut self, uid: u32) -> Workload {
        self.run_as = Some(uid);
        self
    }

    /// Makes it a pod without a Service (and, locally, without a
    /// WorkloadEntry): the mesh does not know its address.
    pub fn without_service(mut self) -> Workload {
        self.with_service = false;
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: &str) -> Workload {
        self.namespace = namespace.to_string();
        self
    }

    /// Adds a label (`app` cannot be changed: it selects the service).
    pub fn label(mut self, key: &str, value: &str) -> Workload {
        if key != "app" {
            self.labels.insert(key.to_string(), value.to_string());
        }
        self
    }

    /// Sets the service account.
    pub fn service_account(mut self, sa: &str) -> Workload {
        self.service_account = sa.to_string();
        self
    }

    /// Adds a port.
    pub fn port(mut self, name: &str, number: u16, protocol: &str) -> Workload {
        self.ports.push(Port {
            name: name.to_string(),
            number,
            protocol: protocol.to_string(),
        });
        self
    }

    /// Sets an environment variable of the app.
    pub fn env(mut self, key: &str, value: &str) -> Workload {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the container image (kind).
    pub fn image(mut self, image: &str) -> Workload {
        self.image = image.to_string();
        self
    }

    /// Sets the sidecar.
    pub fn sidecar(mut self, sidecar: Sidecar) -> Workload {
        self.sidecar = sidecar;
        self
    }

    /// Rejects names that are not DNS labels (they become file, interface and
    /// Kubernetes names) and workloads without a command.
    pub fn validate(&self) -> Result<(), LocalError> {
        for (what, value) in [
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("service", &self.service),
            ("service account", &self.service_account),
        ] {
            if !is_dns_label(value) {
                return Err(LocalError::Invalid(format!(
                    "workload {what} {value:?} is not a DNS label ([a-z0-9-], at most 40 chars)"
                )));
            }
        }
        if self.command.is_empty() {
            return Err(LocalError::Invalid(format!(
                "workload {} has no command",
                self.name
            )));
        }
        Ok(())
    }
}

/// Lowercase letters, digits and inner dashes; kept short so that derived
/// names stay within the kernel's limits.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

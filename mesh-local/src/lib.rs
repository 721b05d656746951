//! mesh-local: the one-machine runtime (DESIGN.md, "Platforms", local). What
//! `meshctl local up` and the e2e suite's local driver both run on; the
//! product never depends on the test harness, and the harness reuses this.
//!
//! ```text
//!  process::Supervisor   spawn (own process group, log file, run tag), watch, stop (nix signals)
//!  lock::RunLock         flock(2) on a run's state directory
//!  net                   bridge, network namespaces, veths (198.18.N.0/24, VIPs 198.19.N.0/24)
//!  LocalMesh (mesh/)     pilot + pods (mesh/pod.rs): init (capture), sidecar as UID 1337, app; readiness via probe;
//!                        gateways (mesh/gateway.rs: ingress, egress); PostgreSQL outside the mesh (mesh/database.rs)
//!  registry              hosts files, ServiceEntry/WorkloadEntry config, Envoy bootstraps
//!  stale                 leftovers of killed runs, by name prefix and process tag
//! ```
//!
//! Root is needed for pods (network namespaces, iptables); the supervisor
//! and the lock work for any user.

pub mod cmd;
mod error;
pub mod lock;
mod mesh;
pub mod net;
pub mod ports;
pub mod probe;
pub mod process;
pub mod registry;
mod stale;
mod workload;

pub use cmd::is_root;
pub use error::LocalError;
pub use lock::RunLock;
pub use mesh::{
    postgres_missing, LocalMesh, Options, DEBUG_PORT, EGRESS_GATEWAY, INGRESS_GATEWAY,
    INGRESS_HTTP_PORT, INGRESS_PORTS, POSTGRES_PORT, PROXY_UID, XDS_PORT,
};
pub use process::{Spawn, Supervisor, RUN_ENV};
pub use stale::{cleanup_run, cleanup_stale};
pub use workload::{is_dns_label, Port, Sidecar, Workload};

/// Where runs keep their config and logs unless the caller gives a directory.
pub const RUN_ROOT: &str = "/tmp/mesh-local";

/// Where `ip netns exec` finds per-namespace files such as `hosts`.
pub const ETC_NETNS: &str = "/etc/netns";

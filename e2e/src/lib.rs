//! End-to-end suites of the mesh (DESIGN.md, "Testing"): scenarios written
//! once against the [`Cluster`] trait, and two drivers that build real pods:
//!
//! - [`LocalCluster`]: each pod a Linux network namespace on a bridge, the
//!   app unmodified inside, `mesh-proxy init` capture, the sidecar as UID
//!   1337, pilot in the root namespace; the pods are the product's own
//!   one-machine runtime (`mesh-local`), this crate adds the test tool.
//!   Root only; runs in CI.
//! - [`KindCluster`]: the same on kind, where docker and kind exist; where
//!   they do not, it says what is missing and the scenarios skip.
//!
//! `mesh-e2e-tool` (this crate's binary) is what tests run inside pods:
//! test servers (HTTP with versions, failures, delays and counters; TCP;
//! WebSocket; gRPC health; TLS), clients (fetch, load, WebSocket, gRPC)
//! that resolve names through the pod's hosts file, and readiness waits.
//! What it prints, scenarios read with the same types ([`load`], [`tool`]).
//! A proxy's access log is read with [`access_log`]; certificates for TLS
//! at the edge come from [`certs`]. See `e2e/README.md` to run the suites.

pub mod access_log;
pub mod certs;
pub mod cluster;
mod error;
pub mod http;
pub mod kind;
pub mod load;
pub mod local;
pub mod scenarios;
pub mod tool;

pub use cluster::{Cluster, ExecOutput, HttpResponse, Port, Sidecar, Workload};
pub use error::E2eError;
pub use kind::{KindCluster, KindConfig};
pub use local::LocalCluster;
pub use mesh_api::names::REASON_HEADER;

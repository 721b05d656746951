//! End-to-end suites of the mesh (DESIGN.md, "Testing"): scenarios written
//! once against the [`Cluster`] trait, and two drivers that build real pods:
//!
//! - [`LocalCluster`]: each pod a Linux network namespace on a bridge, the
//!   app unmodified inside, `mesh-proxy init` capture, the sidecar as UID
//!   1337, pilot in the root namespace. Root only; runs in CI.
//! - [`KindCluster`]: the same on kind, where docker and kind exist; where
//!   they do not, it says what is missing and the scenarios skip.
//!
//! `mesh-e2e-tool` (this crate's binary) is what tests run inside pods: a
//! small HTTP/TCP server, an HTTP fetch that resolves names through the pod's
//! hosts file, and readiness waits. See `e2e/README.md` to run the suites.

pub mod cluster;
pub mod cmd;
mod error;
pub mod http;
pub mod kind;
pub mod local;
pub mod scenarios;

pub use cluster::{Cluster, ExecOutput, HttpResponse, Port, Sidecar, Workload};
pub use error::E2eError;
pub use kind::{KindCluster, KindConfig};
pub use local::{cleanup_run, cleanup_stale, LocalCluster, LocalOptions};

/// Prints the standard skip line for a suite that cannot run here; the
/// caller then returns without asserting anything (and so claims nothing).
///
/// The line goes straight to the process's stderr: libtest captures
/// `print!`/`eprint!` of passing tests, and a skip must never be silent.
pub fn skip(suite: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping {suite}: {why}");
}

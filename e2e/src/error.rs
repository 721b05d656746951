//! The suite's one error type: what a driver or a scenario could not do.
//! Failures of the local runtime and of the tools the drivers run (a
//! command, I/O, a timeout, a missing prerequisite) are `mesh-local`'s own
//! [`LocalError`], carried whole with the command and its output, so a
//! failing scenario explains itself.

use std::path::PathBuf;

use mesh_local::LocalError;

/// Why a driver or scenario step failed.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A runtime or tool step failed (see [`LocalError`]).
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The request is invalid (bad name, unknown pod, ...), or what a
    /// scenario saw is not what it expects.
    #[error("{0}")]
    Invalid(String),
    /// The driver cannot do this (yet); the message says why.
    #[error("unsupported by the {driver} driver: {what}")]
    Unsupported {
        /// `local` or `kind`.
        driver: &'static str,
        /// What was asked.
        what: String,
    },
}

impl E2eError {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> E2eError {
        let io = LocalError::io(path);
        move |source| io(source).into()
    }

    /// Something the driver needs is missing on this machine.
    pub fn missing(what: impl Into<String>) -> E2eError {
        LocalError::Missing(what.into()).into()
    }
}

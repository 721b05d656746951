//! The suite's one error type: what a driver could not do, with the command
//! and its output when a tool failed, so a failing scenario explains itself.

use std::path::PathBuf;

/// Why a driver step failed.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A program could not be started (not installed, not on PATH).
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for a person to re-run.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// A program or a wait did not finish in time.
    #[error("timed out after {seconds}s: {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long we waited.
        seconds: u64,
    },
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The request to the driver is invalid (bad name, unknown pod, ...).
    #[error("{0}")]
    Invalid(String),
    /// Something the driver needs is missing on this machine.
    #[error("missing prerequisite: {0}")]
    Missing(String),
    /// The driver cannot do this (yet); the message says why.
    #[error("unsupported by the {driver} driver: {what}")]
    Unsupported {
        /// `local` or `kind`.
        driver: &'static str,
        /// What was asked.
        what: String,
    },
}

impl From<mesh_local::LocalError> for E2eError {
    /// The runtime's errors keep their kind (a missing prerequisite stays
    /// [`E2eError::Missing`]).
    fn from(e: mesh_local::LocalError) -> E2eError {
        use mesh_local::LocalError as L;
        match e {
            L::Spawn { program, source } => E2eError::Spawn { program, source },
            L::Command {
                command,
                status,
                stderr,
            } => E2eError::Command {
                command,
                status,
                stderr,
            },
            L::Timeout { what, seconds } => E2eError::Timeout { what, seconds },
            L::Io { path, source } => E2eError::Io { path, source },
            L::Missing(what) => E2eError::Missing(what),
            other @ (L::Sys { .. } | L::Invalid(_)) => E2eError::Invalid(other.to_string()),
        }
    }
}

impl E2eError {
    /// An [`E2eError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> E2eError {
        let path = path.into();
        move |source| E2eError::Io { path, source }
    }
}

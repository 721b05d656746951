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

impl E2eError {
    /// An [`E2eError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> E2eError {
        let path = path.into();
        move |source| E2eError::Io { path, source }
    }
}

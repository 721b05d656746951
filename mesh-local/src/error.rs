//! The runtime's one error type: what could not be done on this machine,
//! with the command and its output when a tool failed, so a failed start
//! explains itself.

use std::path::PathBuf;

/// Why a step of the local runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
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
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The request is invalid (bad name, unknown pod, ...).
    #[error("{0}")]
    Invalid(String),
    /// Something the runtime needs is missing on this machine.
    #[error("missing prerequisite: {0}")]
    Missing(String),
}

impl LocalError {
    /// A [`LocalError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LocalError {
        let path = path.into();
        move |source| LocalError::Io { path, source }
    }

    /// A [`LocalError::Sys`] for `what`.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> LocalError {
        let what = what.into();
        move |source| LocalError::Sys { what, source }
    }
}

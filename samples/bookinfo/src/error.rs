//! Errors of the sample apps: setting up a server or client, and a failed
//! call to another service (which the callers turn into page text, never
//! into a failed request of their own).

use std::net::SocketAddr;

/// A failure to start: bad configuration or a port already taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `HTTP_PROXY` is not a URL reqwest accepts as a proxy.
    #[error("invalid HTTP_PROXY {url:?}: {source}")]
    Proxy {
        /// The value as given.
        url: String,
        /// Why reqwest refused it.
        source: reqwest::Error,
    },
    /// The HTTP client could not be built (e.g. no TLS or DNS backend).
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Why a call to another service gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer within the caller's timeout.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// The connection failed; the innermost cause, e.g. "Connection refused".
    #[error("{0}")]
    Connect(String),
    /// The service answered with a status other than 200.
    #[error("HTTP {0}")]
    Status(u16),
    /// The answer was not the JSON the caller expected.
    #[error("unexpected body: {0}")]
    Body(String),
}

impl FetchError {
    /// The status code the original sample reports for this failure: the
    /// upstream's own status when there was one, else 500.
    pub fn status(&self) -> u16 {
        match self {
            FetchError::Status(code) => *code,
            _ => 500,
        }
    }
}

//! Errors of the control plane, one enum per stage that can fail.

use std::path::PathBuf;

/// A node id or node metadata the pilot cannot serve (the contract's own
/// error). Sent back to the proxy as the gRPC status of its stream.
pub use mesh_api::node::NodeError;

/// Failures of the config source (the watched directory).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The directory cannot be read.
    #[error("reading config directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The mesh config file cannot be read or parsed.
    #[error("mesh config {path}: {why}")]
    MeshConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The file watcher could not be set up.
    #[error("watching {path}: {source}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The notify error.
        source: notify::Error,
    },
}

/// Failures of the servers (ADS, debug).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding a listening socket failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The gRPC server stopped with an error.
    #[error("ADS server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The debug server's accept loop failed.
    #[error("debug server: {0}")]
    Io(#[from] std::io::Error),
}

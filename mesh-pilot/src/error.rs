//! Errors of the control plane, one enum per stage that can fail.

use std::path::PathBuf;

/// A node id or node metadata the pilot cannot serve. Sent back to the proxy
/// as the gRPC status of its stream.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node id is not `TYPE~IP~POD.NS~NS.svc.cluster.local`.
    #[error("node id {id:?}: {why}")]
    Id {
        /// The id as sent.
        id: String,
        /// What is wrong with it.
        why: String,
    },
    /// A metadata value has the wrong form.
    #[error("node metadata {key}: {why}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The stream's first request had no node.
    #[error("the first request on a stream must carry a node")]
    Missing,
}

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

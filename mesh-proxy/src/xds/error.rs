//! Errors of the xDS stage: why one resource could not be converted (the
//! text of a NACK) and why the ADS stream to pilot broke (a reconnect).

use std::fmt;

/// Why an Envoy resource, or a part of one, cannot become part of the model.
///
/// Nested conversions wrap their errors with [`ConvertError::at`], so the
/// message carries the field path inside the resource, e.g.
/// `virtual_hosts[0].routes[2].match.safe_regex: invalid regex ...`.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The resource uses a feature the proxy does not implement.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// A network filter the proxy does not implement.
    #[error("unsupported filter {filter} in listener {listener} chain {chain:?}")]
    UnsupportedFilter {
        /// Filter name or type URL.
        filter: String,
        /// Listener resource name.
        listener: String,
        /// Filter chain name.
        chain: String,
    },
    /// A field has a value the proxy cannot use.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A `safe_regex` that does not compile.
    #[error("invalid regex {regex:?}: {source}")]
    Regex {
        /// The regex as sent.
        regex: String,
        /// The compiler's complaint.
        #[source]
        source: Box<regex::Error>,
    },
    /// An `Any` that does not hold the expected message.
    #[error("cannot decode {type_url}: {source}")]
    Decode {
        /// Type URL of the `Any`.
        type_url: String,
        /// Protobuf decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// A route or TCP proxy names a cluster the snapshot does not contain.
    #[error("route to unknown cluster {cluster:?} at {at}")]
    UnknownCluster {
        /// The missing cluster.
        cluster: String,
        /// Where the reference is (route or filter chain).
        at: String,
    },
    /// An error inside a nested field.
    #[error("{path}: {source}")]
    At {
        /// Field path inside the resource.
        path: String,
        /// The error found there.
        #[source]
        source: Box<ConvertError>,
    },
}

impl ConvertError {
    /// Places this error at `path` inside its parent, merging nested paths.
    pub fn at(self, path: impl fmt::Display) -> Self {
        match self {
            ConvertError::At {
                path: inner,
                source,
            } => ConvertError::At {
                path: format!("{path}.{inner}"),
                source,
            },
            other => ConvertError::At {
                path: path.to_string(),
                source: Box::new(other),
            },
        }
    }

    /// An `Invalid` error.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ConvertError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// An `Unsupported` error.
    pub fn unsupported(what: impl Into<String>) -> Self {
        ConvertError::Unsupported(what.into())
    }
}

/// One resource of a discovery response that was rejected, and why.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: {error}")]
pub struct ResourceError {
    /// Resource kind (`Listener`, `RouteConfiguration`, `Cluster`, `ClusterLoadAssignment`).
    pub kind: &'static str,
    /// Resource name (or its index when the name could not be read).
    pub name: String,
    /// Why it was rejected.
    pub error: ConvertError,
}

/// Why an ADS session ended; the client reconnects after any of these.
#[derive(Debug, thiserror::Error)]
pub enum XdsError {
    /// The xDS address is not a valid URI.
    #[error("invalid xDS address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Could not connect to pilot.
    #[error("connect to {address}: {source}")]
    Connect {
        /// Pilot's address.
        address: String,
        /// Transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The gRPC stream failed.
    #[error("ADS stream: {0}")]
    Stream(#[from] tonic::Status),
    /// Pilot closed the stream.
    #[error("ADS stream closed by pilot")]
    Closed,
}

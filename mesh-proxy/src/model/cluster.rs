//! Cluster part of the model: clusters and their endpoint discovery, load
//! balancing and connection settings, and the EDS load assignments, as the
//! cluster and upstream stages read them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

/// An upstream cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Resource name, e.g. `outbound|9080|v1|messenger.default.svc.cluster.local`.
    pub name: String,
    /// How its endpoints are found.
    pub discovery: Discovery,
    /// Load balancing policy.
    pub lb_policy: LbPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Speak HTTP/2 (prior knowledge) to the upstream.
    pub http2: bool,
    /// Source address to bind before connecting (`upstream_bind_config`),
    /// e.g. 127.0.0.6, which the capture rules let through uncaptured.
    pub upstream_bind: Option<IpAddr>,
}

/// Endpoint discovery of a cluster.
#[derive(Debug, Clone, Serialize)]
pub enum Discovery {
    /// Endpoints from EDS under this service name.
    Eds {
        /// EDS `cluster_name` to look up in [`Snapshot::endpoints`].
        service_name: String,
    },
    /// Fixed endpoints.
    Static(Vec<Endpoint>),
    /// Resolve these hosts through DNS.
    StrictDns(Vec<(String, u16)>),
    /// Connect to the connection's original destination.
    OriginalDst,
}

/// Load balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbPolicy {
    /// Round robin over healthy endpoints, honouring weights.
    RoundRobin,
    /// Uniformly random.
    Random,
    /// Fewest active requests among two random picks.
    LeastRequest,
}

/// EDS resource: the endpoints of one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct LoadAssignment {
    /// Cluster (service) name.
    pub cluster_name: String,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// One upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Socket address.
    pub address: SocketAddr,
    /// Load balancing weight (>= 1).
    pub weight: u32,
}

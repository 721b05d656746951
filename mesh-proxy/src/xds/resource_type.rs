//! xDS stage, vocabulary: the four resource types the ADS client subscribes
//! to and their type URLs (the contract's, `mesh_api::names`). The protocol ([`super::ads`]) and the status the
//! admin server reports ([`super::status`]) both speak in these terms.

use mesh_api::names;

/// The four resource types the proxy subscribes to, in pilot's push order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// CDS.
    Cluster,
    /// EDS.
    Endpoint,
    /// LDS.
    Listener,
    /// RDS.
    Route,
}

impl ResourceType {
    /// All types, in the order the first requests are sent.
    pub const ALL: [ResourceType; 4] = [Self::Cluster, Self::Endpoint, Self::Listener, Self::Route];

    /// The type URL on the wire.
    pub fn type_url(self) -> &'static str {
        match self {
            Self::Cluster => names::CLUSTER_TYPE,
            Self::Endpoint => names::ENDPOINT_TYPE,
            Self::Listener => names::LISTENER_TYPE,
            Self::Route => names::ROUTE_TYPE,
        }
    }

    /// The type for a type URL, if the proxy knows it.
    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// Envoy's message name, used in NACK reasons.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Cluster => "Cluster",
            Self::Endpoint => "ClusterLoadAssignment",
            Self::Listener => "Listener",
            Self::Route => "RouteConfiguration",
        }
    }

    /// Whether a response carries the whole set (CDS, LDS) rather than updates.
    pub fn is_whole_set(self) -> bool {
        matches!(self, Self::Cluster | Self::Listener)
    }
}

//! xDS stage, vocabulary: the four resource types the ADS client subscribes
//! to and their type URLs. The protocol ([`super::ads`]) and the status the
//! admin server reports ([`super::status`]) both speak in these terms.

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
            Self::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Self::Endpoint => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            Self::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            Self::Route => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
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

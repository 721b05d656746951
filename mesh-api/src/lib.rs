//! Istio-compatible configuration model for the mesh: the
//! `networking.istio.io` kinds (VirtualService, DestinationRule, Gateway,
//! ServiceEntry, WorkloadEntry) as serde types, host name helpers, and the
//! [`ConfigError`] every config problem is reported with.
//!
//! This crate is the first stage of the flow in DESIGN.md: YAML in, typed
//! and validated objects out, for pilot's config store and meshctl.
//!
//! All three apiVersions `v1alpha3`, `v1beta1` and `v1` share one schema.
//! Field names are Istio's (camelCase), unknown fields are errors, and every
//! field of Istio's schema for these kinds is accepted even where the mesh
//! does not act on it yet.

pub mod error;
pub mod host;
pub mod load;
pub mod types;
pub mod validate;

pub use error::{ConfigError, ErrorKind};
pub use host::{fqdn, host_matches, hosts_overlap};
pub use load::{is_yaml_file, load_dir, load_file, load_str, LoadedFile};
pub use types::common::{
    Duration, HeaderOperations, Headers, Percent, Port, PortSelector, StringMatch, StringMatcher,
    WorkloadSelector,
};
pub use types::destination_rule::{DestinationRuleSpec, Subset};
pub use types::gateway::{GatewaySpec, Server, ServerTlsSettings};
pub use types::service_entry::{Location, Resolution, ServiceEntrySpec, WorkloadEntrySpec};
pub use types::traffic_policy::TrafficPolicy;
pub use types::virtual_service::{
    Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, RouteDestination, TcpRoute,
    TlsRoute, VirtualServiceSpec,
};
pub use types::{Loaded, Object, ObjectMeta, Resource, API_GROUP, API_VERSIONS, DEFAULT_NAMESPACE};
pub use validate::{validate, validate_files, validate_object};

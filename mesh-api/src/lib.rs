//! Istio-compatible configuration model for the mesh: the
//! `networking.istio.io` kinds (VirtualService, DestinationRule, Gateway,
//! ServiceEntry, WorkloadEntry) as serde types, loading from YAML, and
//! validation whose every finding is a [`ConfigError`] naming the file, the
//! line, the object and the field path:
//!
//! ```text
//! FILE:LINE: Kind/namespace/name: spec.http[0].route[1].weight: message
//! ```
//!
//! It also holds the wire contract between pilot and the proxies:
//! [`node`] (the node id and its metadata) and [`names`] (type URLs and
//! resource names), so both ends use one definition.
//!
//! This crate is the first stage of the flow in DESIGN.md: YAML in, typed
//! and validated objects out, for pilot's config store and meshctl.
//!
//! ```text
//! text ──load_str / load_file / load_dir──► Loaded objects + load errors
//!                                          │
//!              validate / validate_object / validate_files ──► ConfigErrors
//! ```
//!
//! - All three apiVersions `v1alpha3`, `v1beta1` and `v1` share one schema.
//!   Field names are Istio's (camelCase); unknown fields are errors; every
//!   field of Istio's schema for these kinds is accepted, even where the mesh
//!   does not act on it yet. Non-Istio objects (Deployments, Services) are
//!   skipped; other `networking.istio.io` kinds are reported as unsupported.
//! - Short host names resolve Istio's way with [`fqdn`]: a name without a
//!   dot is a service in the object's namespace; a dotted name is an FQDN.
//! - Keeping the last good config: [`validate_files`] returns, for every
//!   file, its load and validation errors (cross-object errors go to the
//!   file of the object they are reported on). A file with an empty list is
//!   good; a caller such as pilot keeps the previous version of a file whose
//!   list is not empty. [`validate_object`] gives the same per-object checks
//!   for a single object (for example one applied through the API).

pub mod error;
pub mod host;
pub mod load;
pub mod names;
pub mod node;
pub mod positions;
pub mod types;
pub mod validate;

pub use error::{ConfigError, ErrorKind};
pub use host::{fqdn, host_matches, hosts_overlap};
pub use load::{is_yaml_file, load_dir, load_file, load_str, LoadedFile};
pub use positions::{FieldLines, Positions};
pub use types::common::{
    Destination, Duration, HeaderOperations, Headers, Percent, Port, PortSelector, StringMatch,
    StringMatcher, WorkloadSelector,
};
pub use types::destination_rule::{DestinationRuleSpec, Subset};
pub use types::gateway::{GatewaySpec, Server, ServerTlsSettings};
pub use types::service_entry::{Location, Resolution, ServiceEntrySpec, WorkloadEntrySpec};
pub use types::traffic_policy::TrafficPolicy;
pub use types::virtual_service::{
    HttpMatchRequest, HttpRoute, HttpRouteDestination, RouteDestination, TcpRoute, TlsRoute,
    VirtualServiceSpec,
};
pub use types::{Loaded, Object, ObjectMeta, Resource, API_GROUP, API_VERSIONS, DEFAULT_NAMESPACE};
pub use validate::{validate, validate_files, validate_object};

//! Istio-compatible configuration model for the mesh: the
//! `networking.istio.io` kinds (VirtualService, DestinationRule, Gateway,
//! ServiceEntry, WorkloadEntry, Sidecar) as serde types, loading from YAML,
//! normalization of deprecated forms, and validation whose every finding is
//! a [`ConfigError`] naming the file, the line, the object and the field
//! path:
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
//! text ──load_str / load_file / load_dir──► serde types ──normalize──► Loaded objects
//!                                           (load errors)   (deprecation warnings)
//!                                                                     │
//!        validate / validate_object / validate_files ──► errors;  warnings ──► warnings
//! ```
//!
//! - All three apiVersions `v1alpha3`, `v1beta1` and `v1` share one schema.
//!   Field names are Istio's (camelCase; the protobuf snake_case names are
//!   read too, with a warning); unknown fields are errors; every field any
//!   Istio release since 1.0 documented for these kinds is accepted.
//!   Non-Istio objects (Deployments, Services) are skipped; other
//!   `networking.istio.io` kinds are reported as unsupported.
//! - Deprecated fields are rewritten into their modern form, with Istio's
//!   meaning, in one place ([`normalize`]), so a loaded object carries only
//!   modern fields; each rewrite is a warning in [`Loaded::warnings`].
//! - A field the mesh does not enforce is an [`ErrorKind::Unsupported`]
//!   error naming it and why ([`validate::unsupported`]): nothing is
//!   accepted and ignored. docs/config-compatibility.md is the user's view
//!   of all of this.
//! - Short host names resolve Istio's way with [`fqdn`]: a name without a
//!   dot is a service in the object's namespace; a dotted name is an FQDN.
//! - Keeping the last good config: [`validate_files`] returns, for every
//!   file, its load and validation errors (cross-object errors go to the
//!   file of the object they are reported on). A file with an empty list is
//!   good; a caller such as pilot keeps the previous version of a file whose
//!   list is not empty. [`validate_object`] gives the same per-object checks
//!   for a single object (for example one applied through the API).
//!   [`warnings`] lists what is accepted but deserves a look (deprecated
//!   fields, a VirtualService shadowed by an older one for its host); they
//!   never make a file bad.

pub mod error;
pub mod fields;
pub mod host;
pub mod load;
pub mod names;
pub mod node;
pub mod normalize;
pub mod positions;
pub mod re2;
pub mod types;
pub mod validate;

pub use error::{ConfigError, ErrorKind};
pub use host::{fqdn, host_matches, hosts_overlap};
pub use load::{
    fmt_bytes, is_yaml_file, load_dir, load_file, load_str, too_large, LoadedFile,
    MAX_EXPANDED_BYTES, MAX_FILE_BYTES,
};
pub use positions::{FieldLines, Positions};
pub use types::common::{
    Destination, Duration, HeaderOperations, Headers, Percent, Port, PortSelector, StringMatch,
    StringMatcher, WorkloadSelector,
};
pub use types::destination_rule::{DestinationRuleSpec, Subset};
pub use types::gateway::{GatewaySpec, Server, ServerTlsSettings};
pub use types::service_entry::{Location, Resolution, ServiceEntrySpec, WorkloadEntrySpec};
pub use types::sidecar::{
    CaptureMode, IstioEgressListener, IstioIngressListener, OutboundTrafficMode,
    OutboundTrafficPolicy, SidecarSpec,
};
pub use types::traffic_policy::TrafficPolicy;
pub use types::virtual_service::{
    HttpMatchRequest, HttpRoute, HttpRouteDestination, RouteDestination, TcpRoute, TlsRoute,
    VirtualServiceSpec,
};
pub use types::{
    Loaded, Object, ObjectMeta, Resource, Timestamp, API_GROUP, API_VERSIONS, DEFAULT_NAMESPACE,
    KINDS,
};
pub use validate::{report, validate, validate_files, validate_object, warnings, Report};

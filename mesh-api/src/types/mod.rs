//! The Istio `networking.istio.io` config model: object metadata, the
//! generic [`Resource`] envelope, the [`Object`] enum over the supported
//! kinds, and the per-kind spec types in the submodules.
//!
//! First stage of the flow in DESIGN.md: YAML is loaded into these types,
//! validated, then handed to pilot's config store.

pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod http_policy;
pub mod load_balancer;
pub mod meta;
pub mod service_entry;
pub mod sidecar;
pub mod traffic_policy;
pub mod virtual_service;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::de::IgnoredAny;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::ConfigError;
use crate::positions::FieldLines;

use destination_rule::DestinationRuleSpec;
use gateway::GatewaySpec;
pub use meta::{ObjectMeta, Timestamp};
use service_entry::{ServiceEntrySpec, WorkloadEntrySpec};
use sidecar::SidecarSpec;
use virtual_service::VirtualServiceSpec;

/// The API group of every supported kind.
pub const API_GROUP: &str = "networking.istio.io";

/// The versions of [`API_GROUP`] accepted; they share one schema.
pub const API_VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];

/// The namespace of an object whose metadata gives none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A Kubernetes-style object of one kind: `apiVersion`, `metadata`, `spec`.
///
/// The `kind` is carried by [`Object`]; on input `kind` and `status` are
/// accepted and not kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    rename_all = "camelCase",
    from = "RawResource<S>",
    bound(deserialize = "S: Deserialize<'de>")
)]
// The schema is that of the wire form, which is what is accepted.
#[schemars(with = "RawResource<S>", bound = "S: JsonSchema")]
pub struct Resource<S> {
    /// `networking.istio.io/v1alpha3`, `.../v1beta1` or `.../v1`.
    pub api_version: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The kind-specific spec.
    pub spec: S,
}

impl<S> Resource<S> {
    /// A resource with the `networking.istio.io/v1` apiVersion.
    pub fn new(metadata: ObjectMeta, spec: S) -> Self {
        Resource {
            api_version: format!("{API_GROUP}/v1"),
            metadata,
            spec,
        }
    }
}

/// The wire form of [`Resource`].
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResource<S> {
    api_version: String,
    #[serde(rename = "kind")]
    #[schemars(with = "String")]
    _kind: IgnoredAny,
    metadata: ObjectMeta,
    spec: S,
    #[serde(default, rename = "status")]
    #[schemars(with = "Option<serde_json::Value>")]
    _status: Option<IgnoredAny>,
}

impl<S> From<RawResource<S>> for Resource<S> {
    fn from(raw: RawResource<S>) -> Self {
        Resource {
            api_version: raw.api_version,
            metadata: raw.metadata,
            spec: raw.spec,
        }
    }
}

/// One config object of a supported kind.
///
/// Serializes to the Kubernetes form (`apiVersion`, `kind`, `metadata`,
/// `spec`). Built from YAML by the loader.
// Config objects are few and long-lived; plain variants keep matching on
// them simple for pilot, so the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `VirtualService`.
    VirtualService(Resource<VirtualServiceSpec>),
    /// `DestinationRule`.
    DestinationRule(Resource<DestinationRuleSpec>),
    /// `Gateway`.
    Gateway(Resource<GatewaySpec>),
    /// `ServiceEntry`.
    ServiceEntry(Resource<ServiceEntrySpec>),
    /// `WorkloadEntry`.
    WorkloadEntry(Resource<WorkloadEntrySpec>),
    /// `Sidecar`.
    Sidecar(Resource<SidecarSpec>),
}

/// The kinds of [`Object`], as written in YAML.
pub const KINDS: [&str; 6] = [
    "VirtualService",
    "DestinationRule",
    "Gateway",
    "ServiceEntry",
    "WorkloadEntry",
    "Sidecar",
];

impl Object {
    /// The kind, as written in YAML (`VirtualService`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Object::VirtualService(_) => "VirtualService",
            Object::DestinationRule(_) => "DestinationRule",
            Object::Gateway(_) => "Gateway",
            Object::ServiceEntry(_) => "ServiceEntry",
            Object::WorkloadEntry(_) => "WorkloadEntry",
            Object::Sidecar(_) => "Sidecar",
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::VirtualService(r) => &r.metadata,
            Object::DestinationRule(r) => &r.metadata,
            Object::Gateway(r) => &r.metadata,
            Object::ServiceEntry(r) => &r.metadata,
            Object::WorkloadEntry(r) => &r.metadata,
            Object::Sidecar(r) => &r.metadata,
        }
    }

    /// The apiVersion as written.
    pub fn api_version(&self) -> &str {
        match self {
            Object::VirtualService(r) => &r.api_version,
            Object::DestinationRule(r) => &r.api_version,
            Object::Gateway(r) => &r.api_version,
            Object::ServiceEntry(r) => &r.api_version,
            Object::WorkloadEntry(r) => &r.api_version,
            Object::Sidecar(r) => &r.api_version,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace, [`DEFAULT_NAMESPACE`] when unset.
    pub fn namespace(&self) -> &str {
        self.metadata()
            .namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    /// `Kind/namespace/name`, the identity used in errors and for duplicates.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind(), self.namespace(), self.name())
    }

    /// The spec as a JSON value (camelCase, as in YAML), e.g. for debug
    /// endpoints.
    pub fn spec_json(&self) -> serde_json::Value {
        let value = match self {
            Object::VirtualService(r) => serde_json::to_value(&r.spec),
            Object::DestinationRule(r) => serde_json::to_value(&r.spec),
            Object::Gateway(r) => serde_json::to_value(&r.spec),
            Object::ServiceEntry(r) => serde_json::to_value(&r.spec),
            Object::WorkloadEntry(r) => serde_json::to_value(&r.spec),
            Object::Sidecar(r) => serde_json::to_value(&r.spec),
        };
        // Our spec types only hold strings, numbers and string-keyed maps,
        // which always convert.
        value.unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Object", 4)?;
        s.serialize_field("apiVersion", self.api_version())?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("metadata", self.metadata())?;
        match self {
            Object::VirtualService(r) => s.serialize_field("spec", &r.spec)?,
            Object::DestinationRule(r) => s.serialize_field("spec", &r.spec)?,
            Object::Gateway(r) => s.serialize_field("spec", &r.spec)?,
            Object::ServiceEntry(r) => s.serialize_field("spec", &r.spec)?,
            Object::WorkloadEntry(r) => s.serialize_field("spec", &r.spec)?,
            Object::Sidecar(r) => s.serialize_field("spec", &r.spec)?,
        }
        s.end()
    }
}

/// An object together with where it was loaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The object.
    pub object: Object,
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based line where the object starts (its YAML document, or its
    /// item of a `kind: List`), when known.
    pub line: Option<usize>,
    /// The lines of its fields in the file.
    pub fields: FieldLines,
    /// Warnings found while loading it: each deprecated field the loader
    /// rewrote into its modern form ([`crate::normalize`]), as a
    /// [`ConfigError`] of kind [`crate::ErrorKind::Deprecated`] on the
    /// field's line. Never errors: an object with a load error is not
    /// loaded.
    pub warnings: Vec<ConfigError>,
}

impl Loaded {
    /// `Kind/namespace/name` of the object.
    pub fn key(&self) -> String {
        self.object.key()
    }

    /// The 1-based file line of the field `path` (`spec.http[1].match[0]`),
    /// else of its deepest ancestor present in the text, else where the
    /// object starts.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.fields.line(path).or(self.line)
    }
}

#[cfg(test)]
mod tests;

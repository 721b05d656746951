//! Config sources: the first stage of the pilot's flow. A source turns
//! files into an immutable [`ConfigSnapshot`] and publishes it on a `watch`
//! channel; the push queue (`push.rs`) takes it from there.
//!
//! ```text
//!  DIR/*.yaml ──► dir::DirSource::reload (mesh-api load + validate, last good per file)
//!      ▲                  │
//!  watch.rs (notify) ─────┘──► watch<ConfigSnapshot>
//! ```

pub mod dir;
pub mod watch;

use crate::mesh_config::MeshConfig;
use mesh_api::types::sidecar::SidecarSpec;
use mesh_api::{
    ConfigError, DestinationRuleSpec, GatewaySpec, Object, ServiceEntrySpec, VirtualServiceSpec,
    WorkloadEntrySpec,
};

/// One config object in the store, with the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigObject {
    /// File name, relative to the config directory.
    pub file: String,
    /// The object.
    pub object: Object,
    /// When the object was created (ms since the Unix epoch), the order
    /// Istio applies VirtualServices in (oldest first): its
    /// `metadata.creationTimestamp`, else (directory source) the file's
    /// modification time when the source first saw the object, kept across
    /// edits. 0 when unknown.
    pub created_ms: u64,
}

impl ConfigObject {
    /// The kind (`VirtualService`, ...).
    pub fn kind(&self) -> &'static str {
        self.object.kind()
    }

    /// The namespace (default `default`).
    pub fn namespace(&self) -> &str {
        self.object.namespace()
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.object.name()
    }

    /// The spec as JSON, for `/debug/configz`.
    pub fn spec_json(&self) -> serde_json::Value {
        self.object.spec_json()
    }
}

/// The whole config at one moment: immutable, replaced whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSnapshot {
    /// Increases with every change the source sees.
    pub version: u64,
    /// Objects, ordered by kind, namespace, name.
    pub objects: Vec<ConfigObject>,
    /// Errors of the files as they are now (file, line, object, field path,
    /// message), in file and line order.
    pub errors: Vec<ConfigError>,
    /// Mesh-wide settings.
    pub mesh: MeshConfig,
}

/// A spec together with the namespace and name of its object.
#[derive(Debug)]
pub struct Named<'a, S> {
    /// Position of the object in [`ConfigSnapshot::objects`] (the push
    /// context's indexes refer to objects by it).
    pub at: usize,
    /// Namespace of the object.
    pub namespace: &'a str,
    /// Name of the object.
    pub name: &'a str,
    /// The spec.
    pub spec: &'a S,
}

// By hand: a derive would ask `S: Copy`, but only references are copied.
impl<S> Clone for Named<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Named<'_, S> {}

macro_rules! kind_iter {
    ($fn:ident, $at:ident, $variant:ident, $spec:ty) => {
        /// Objects of this kind, in snapshot order.
        pub fn $fn(&self) -> impl Iterator<Item = Named<'_, $spec>> {
            (0..self.objects.len()).filter_map(|i| self.$at(i))
        }

        /// The object at position `at` of `objects`, if it is of this kind.
        pub fn $at(&self, at: usize) -> Option<Named<'_, $spec>> {
            let o = self.objects.get(at)?;
            match &o.object {
                Object::$variant(r) => Some(Named {
                    at,
                    namespace: o.object.namespace(),
                    name: &r.metadata.name,
                    spec: &r.spec,
                }),
                _ => None,
            }
        }
    };
}

impl ConfigSnapshot {
    /// A snapshot of `objects` (sorted here) and `errors`.
    pub fn new(version: u64, mut objects: Vec<ConfigObject>, errors: Vec<ConfigError>) -> Self {
        objects.sort_by(|a, b| {
            (a.kind(), a.namespace(), a.name()).cmp(&(b.kind(), b.namespace(), b.name()))
        });
        ConfigSnapshot {
            version,
            objects,
            errors,
            mesh: MeshConfig::default(),
        }
    }

    kind_iter!(
        virtual_services,
        virtual_service_at,
        VirtualService,
        VirtualServiceSpec
    );
    kind_iter!(
        destination_rules,
        destination_rule_at,
        DestinationRule,
        DestinationRuleSpec
    );
    kind_iter!(gateways, gateway_at, Gateway, GatewaySpec);
    kind_iter!(sidecars, sidecar_at, Sidecar, SidecarSpec);
    kind_iter!(
        service_entries,
        service_entry_at,
        ServiceEntry,
        ServiceEntrySpec
    );
    kind_iter!(
        workload_entries,
        workload_entry_at,
        WorkloadEntry,
        WorkloadEntrySpec
    );
}

/// A snapshot (version 1) of the objects in one YAML text, as if it were the
/// file `file` of a config directory; for tests and tools. Fails with the
/// errors when the text does not load or validate.
pub fn snapshot_from_str(file: &str, text: &str) -> Result<ConfigSnapshot, Vec<ConfigError>> {
    let path = std::path::Path::new(file);
    let (loaded, mut errors) = mesh_api::load_str(path, text);
    errors.extend(mesh_api::validate(&loaded));
    if !errors.is_empty() {
        return Err(errors);
    }
    let objects = loaded
        .into_iter()
        .map(|l| ConfigObject {
            file: file.to_string(),
            object: l.object,
            created_ms: 0,
        })
        .collect();
    Ok(ConfigSnapshot::new(1, objects, Vec::new()))
}

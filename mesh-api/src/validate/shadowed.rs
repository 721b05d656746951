//! Warnings that need more than one object: a mesh VirtualService shadowed
//! by another one for the same host (Istio's analyzer IST0109,
//! `ConflictingMeshGatewayVirtualServiceHosts`). A sidecar takes one
//! VirtualService per host, the oldest by `creationTimestamp`, then name,
//! then namespace; the routes of the others do not reach sidecars.
//!
//! Part of [`super`]; uses the order and locations of `cross.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::cross::{istio_order, location};
use super::Ctx;
use crate::error::{ConfigError, ErrorKind};
use crate::host::fqdn;
use crate::types::{Loaded, Object};

/// Where a VirtualService is visible: everywhere, or in these namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    All,
    Namespaces(BTreeSet<String>),
}

impl Scope {
    fn of(export_to: &[String], own: &str) -> Scope {
        if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
            return Scope::All;
        }
        Scope::Namespaces(
            export_to
                .iter()
                .map(|e| if e == "." { own } else { e.as_str() })
                .map(str::to_string)
                .collect(),
        )
    }

    fn overlaps(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::All, _) | (_, Scope::All) => true,
            (Scope::Namespaces(a), Scope::Namespaces(b)) => !a.is_disjoint(b),
        }
    }
}

/// One claim of a mesh VirtualService on a host.
struct Claim<'a> {
    loaded: &'a Loaded,
    host_index: usize,
    scope: Scope,
}

/// A warning on each mesh VirtualService whose host an older one (in
/// Istio's order) also routes for sidecars that see both.
pub(super) fn mesh_hosts(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut by_host: BTreeMap<String, Vec<Claim<'_>>> = BTreeMap::new();
    for loaded in objects {
        let Object::VirtualService(vs) = &loaded.object else {
            continue;
        };
        let spec = &vs.spec;
        let to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
        if !to_mesh || loaded.object.name().is_empty() {
            continue;
        }
        let namespace = loaded.object.namespace();
        for (host_index, host) in spec.hosts.iter().enumerate() {
            by_host
                .entry(fqdn(host, namespace).to_ascii_lowercase())
                .or_default()
                .push(Claim {
                    loaded,
                    host_index,
                    scope: Scope::of(&spec.export_to, namespace),
                });
        }
    }
    let mut warnings = Vec::new();
    for (host, mut claims) in by_host {
        claims.sort_by(|a, b| istio_order(a.loaded, b.loaded));
        for (i, claim) in claims.iter().enumerate() {
            let older = claims[..i]
                .iter()
                .find(|c| c.scope.overlaps(&claim.scope) && c.loaded.key() != claim.loaded.key());
            let Some(older) = older else { continue };
            let mut ctx = Ctx::new(claim.loaded);
            ctx.warn(
                ErrorKind::Ineffective,
                format!("spec.hosts[{}]", claim.host_index),
                format!(
                    "{} ({}) also routes host {host} for sidecars; a sidecar takes only the \
                     oldest VirtualService of a host (by creationTimestamp, then name, then \
                     namespace), here {}, so these routes do not reach sidecars: merge the two \
                     (Istio IST0109)",
                    older.loaded.key(),
                    location(older.loaded),
                    older.loaded.key(),
                ),
            );
            warnings.append(&mut ctx.warnings);
        }
    }
    warnings
}

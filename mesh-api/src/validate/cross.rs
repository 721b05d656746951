//! Checks that need more than one object: duplicates, subsets that no
//! DestinationRule defines, VirtualServices without hosts that no other
//! VirtualService delegates to, and two default Sidecars in one namespace;
//! the warnings across objects are in `shadowed.rs`.
//!
//! Part of [`super`]; host names are compared after [`fqdn`] resolution in
//! each object's own namespace, as Istio does.

use std::collections::{BTreeMap, BTreeSet};

use super::Ctx;
use crate::error::{ConfigError, ErrorKind};
use crate::host::{fqdn, host_matches};
use crate::types::common::Destination;
use crate::types::virtual_service::VirtualServiceSpec;
use crate::types::{Loaded, Object};

/// Runs every cross-object check that finds errors.
pub(super) fn validate_across(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut errors = duplicates(objects);
    errors.extend(default_sidecars(objects));
    errors.extend(virtual_service_references(objects));
    errors
}

/// Istio's order of objects that claim the same thing: the oldest
/// (`creationTimestamp`, unset first) wins, then the name, then the
/// namespace decide.
pub(super) fn istio_order(a: &Loaded, b: &Loaded) -> std::cmp::Ordering {
    let key = |l: &Loaded| {
        let meta = l.object.metadata();
        (
            meta.creation_timestamp.clone(),
            meta.name.clone(),
            l.object.namespace().to_string(),
        )
    };
    key(a).cmp(&key(b))
}

/// Where an object is, for messages: `FILE:LINE`.
pub(super) fn location(loaded: &Loaded) -> String {
    match loaded.line_of("metadata.name") {
        Some(line) => format!("{}:{line}", loaded.file.display()),
        None => loaded.file.display().to_string(),
    }
}

/// Hosts only for delegates; subsets that exist.
fn virtual_service_references(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let subsets = defined_subsets(objects);
    let delegates = delegate_targets(objects);
    for loaded in objects {
        let Object::VirtualService(vs) = &loaded.object else {
            continue;
        };
        let mut ctx = Ctx::new(loaded);
        let own = (
            loaded.object.namespace().to_string(),
            loaded.object.name().to_string(),
        );
        if vs.spec.hosts.is_empty() && !delegates.contains(&own) {
            ctx.err(
                ErrorKind::MissingField,
                "spec.hosts",
                "missing required field (only a delegate VirtualService may leave hosts out)",
            );
        }
        for (path, dest) in destinations(&vs.spec) {
            subset_reference(&mut ctx, &subsets, &path, dest);
        }
        errors.append(&mut ctx.errors);
    }
    errors
}

/// At most one Sidecar without a workload selector per namespace (Istio's
/// analyzer IST0111): each one after the first in Istio's order is an
/// error naming the one that applies.
fn default_sidecars(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut by_namespace: BTreeMap<&str, Vec<&Loaded>> = BTreeMap::new();
    for loaded in objects {
        if let Object::Sidecar(sc) = &loaded.object {
            if sc.spec.workload_selector.is_none() && !loaded.object.name().is_empty() {
                by_namespace
                    .entry(loaded.object.namespace())
                    .or_default()
                    .push(loaded);
            }
        }
    }
    let mut errors = Vec::new();
    for (namespace, mut sidecars) in by_namespace {
        sidecars.sort_by(|a, b| istio_order(a, b));
        let Some((first, rest)) = sidecars.split_first() else {
            continue;
        };
        for loaded in rest {
            if loaded.key() == first.key() {
                continue; // a duplicate, reported as such
            }
            let mut ctx = Ctx::new(loaded);
            ctx.invalid(
                "spec",
                format!(
                    "namespace {namespace} already has a Sidecar without workloadSelector, {} ({}); only one can apply to the namespace's workloads: give this one a workloadSelector or merge them",
                    first.key(),
                    location(first)
                ),
            );
            errors.append(&mut ctx.errors);
        }
    }
    errors
}

/// The later of two objects with the same `Kind/namespace/name` is an error.
fn duplicates(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut first: BTreeMap<String, &Loaded> = BTreeMap::new();
    let mut errors = Vec::new();
    for loaded in objects {
        if loaded.object.name().is_empty() {
            continue;
        }
        let key = loaded.key();
        match first.get(&key) {
            Some(earlier) => {
                let at = location(earlier);
                let mut ctx = Ctx::new(loaded);
                ctx.err(
                    ErrorKind::Duplicate,
                    "metadata.name",
                    format!("duplicate object: {key} is already defined in {at}"),
                );
                errors.append(&mut ctx.errors);
            }
            None => {
                first.insert(key, loaded);
            }
        }
    }
    errors
}

/// DestinationRule host pattern (FQDN) → the subset names its rules define.
fn defined_subsets(objects: &[Loaded]) -> BTreeMap<String, BTreeSet<String>> {
    let mut subsets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for loaded in objects {
        if let Object::DestinationRule(dr) = &loaded.object {
            let host = fqdn(&dr.spec.host, loaded.object.namespace());
            subsets
                .entry(host)
                .or_default()
                .extend(dr.spec.subsets.iter().map(|s| s.name.clone()));
        }
    }
    subsets
}

/// `(namespace, name)` of every VirtualService named as a delegate.
fn delegate_targets(objects: &[Loaded]) -> BTreeSet<(String, String)> {
    let mut targets = BTreeSet::new();
    for loaded in objects {
        if let Object::VirtualService(vs) = &loaded.object {
            for route in &vs.spec.http {
                if let Some(d) = &route.delegate {
                    let ns = d.namespace.as_deref().unwrap_or(loaded.object.namespace());
                    targets.insert((ns.to_string(), d.name.clone()));
                }
            }
        }
    }
    targets
}

/// Every destination of a VirtualService with its field path.
fn destinations(spec: &VirtualServiceSpec) -> Vec<(String, &Destination)> {
    let mut out = Vec::new();
    for (i, route) in spec.http.iter().enumerate() {
        for (j, r) in route.route.iter().enumerate() {
            if let Some(d) = &r.destination {
                out.push((format!("spec.http[{i}].route[{j}].destination"), d));
            }
        }
        if let Some(d) = &route.mirror {
            out.push((format!("spec.http[{i}].mirror"), d));
        }
        for (j, m) in route.mirrors.iter().enumerate() {
            out.push((
                format!("spec.http[{i}].mirrors[{j}].destination"),
                &m.destination,
            ));
        }
    }
    for (i, route) in spec.tls.iter().enumerate() {
        for (j, r) in route.route.iter().enumerate() {
            if let Some(d) = &r.destination {
                out.push((format!("spec.tls[{i}].route[{j}].destination"), d));
            }
        }
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        for (j, r) in route.route.iter().enumerate() {
            if let Some(d) = &r.destination {
                out.push((format!("spec.tcp[{i}].route[{j}].destination"), d));
            }
        }
    }
    out
}

/// A named subset must be defined by a DestinationRule whose host matches
/// the destination host (exactly, or by a wildcard DestinationRule host).
fn subset_reference(
    ctx: &mut Ctx<'_>,
    subsets: &BTreeMap<String, BTreeSet<String>>,
    path: &str,
    dest: &Destination,
) {
    let Some(subset) = &dest.subset else { return };
    if dest.host.is_empty() {
        return;
    }
    let host = fqdn(&dest.host, ctx.namespace());
    let mut rules = subsets
        .iter()
        .filter(|(pattern, _)| host_matches(pattern, &host))
        .peekable();
    let message = if rules.peek().is_none() {
        format!("subset {subset:?} is not defined: no DestinationRule has host {host}")
    } else if rules.any(|(_, names)| names.contains(subset)) {
        return;
    } else {
        format!("subset {subset:?} is not defined by any DestinationRule for host {host}")
    };
    ctx.err(
        ErrorKind::UnresolvedReference,
        format!("{path}.subset"),
        message,
    );
}

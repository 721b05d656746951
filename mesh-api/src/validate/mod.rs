//! Validation: the checks Istio makes before it accepts config
//! (`pkg/config/validation` in istio/istio, rule by rule), per object and
//! across objects, each reported as a [`ConfigError`] with the object's key
//! and the field path; plus the fields this mesh does not enforce
//! ([`unsupported`]), which are errors too: nothing is accepted and
//! ignored.
//!
//! Second step of the flow in DESIGN.md, after [`crate::load`]; pilot stores
//! only files that pass, meshctl `analyze` prints what fails and what
//! warns.
//!
//! - [`validate_object`]: one object on its own (required fields, regexes,
//!   weights, ports, durations, one-of rules, unsupported fields).
//! - [`validate`]: every object, plus the cross-object checks: duplicates
//!   (`Kind/namespace/name` loaded twice; the later one is reported, naming
//!   where the first is), subsets that no DestinationRule for the host
//!   defines, VirtualServices without hosts that are not a delegate of
//!   another VirtualService, and two default Sidecars in one namespace.
//! - [`warnings`]: what is accepted but deserves a look, as Istio warns
//!   about it: the deprecated fields the loader rewrote
//!   ([`Loaded::warnings`]), selectors without labels, duplicated Sidecar
//!   hosts, and two mesh VirtualServices for one host (Istio's IST0109:
//!   sidecars use only the oldest). Never part of [`validate`]'s errors.
//! - [`validate_files`]: the errors over whole files, grouped by file, with
//!   the files' load errors included, so a caller can keep the last good
//!   version of a file that now fails.
//!
//! Validation errors carry the line of the offending field, looked up in
//! the position index the object was loaded with ([`Loaded::line_of`]): the
//! typed model keeps no positions of its own. A missing field gets the line
//! of its nearest ancestor present in the text.

mod cross;
mod destination_rule;
mod gateway;
mod hostname;
mod http_policy;
mod load_balancer;
mod service_entry;
mod shadowed;
mod sidecar;
mod traffic_policy;
pub mod unsupported;
mod values;
mod virtual_service;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{ConfigError, ErrorKind};
use crate::load::LoadedFile;
use crate::types::{Loaded, Object};

/// Everything validation finds in a set of objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Errors: the objects they name must not be served.
    pub errors: Vec<ConfigError>,
    /// Warnings ([`ErrorKind::is_warning`]): the config is accepted.
    pub warnings: Vec<ConfigError>,
}

/// Errors and warnings of `objects`, each object on its own and all of them
/// together; in object order, cross-object findings last.
pub fn report(objects: &[Loaded]) -> Report {
    let mut report = Report::default();
    for loaded in objects {
        let ctx = check_object(loaded);
        report.errors.extend(ctx.errors);
        report.warnings.extend(loaded.warnings.iter().cloned());
        report.warnings.extend(ctx.warnings);
    }
    report.errors.extend(cross::validate_across(objects));
    report.warnings.extend(shadowed::mesh_hosts(objects));
    report
}

/// Validates each object on its own and all of them together; errors come
/// in object order, cross-object errors last.
pub fn validate(objects: &[Loaded]) -> Vec<ConfigError> {
    report(objects).errors
}

/// The warnings of `objects` (deprecated fields, config without effect);
/// see the module documentation.
pub fn warnings(objects: &[Loaded]) -> Vec<ConfigError> {
    report(objects).warnings
}

/// Validates one object on its own (no cross-object checks).
pub fn validate_object(loaded: &Loaded) -> Vec<ConfigError> {
    check_object(loaded).errors
}

/// The per-object checks of one object.
fn check_object(loaded: &Loaded) -> Ctx<'_> {
    let mut ctx = Ctx::new(loaded);
    metadata(&mut ctx, loaded);
    match &loaded.object {
        Object::VirtualService(r) => virtual_service::check(&mut ctx, &r.spec),
        Object::DestinationRule(r) => destination_rule::check(&mut ctx, &r.spec),
        Object::Gateway(r) => gateway::check(&mut ctx, &r.spec),
        Object::ServiceEntry(r) => service_entry::check(&mut ctx, &r.spec),
        Object::WorkloadEntry(r) => service_entry::check_workload_entry(&mut ctx, &r.spec, "spec"),
        Object::Sidecar(r) => sidecar::check(&mut ctx, &r.spec),
    }
    unsupported::check(&mut ctx, &loaded.object);
    ctx
}

/// Load and validation errors of every file, keyed by file; a file with an
/// empty list is good as a whole.
///
/// Cross-object errors belong to the file of the object they are reported
/// on (the VirtualService naming a missing subset, the second of two
/// duplicates). Every file of `files` has an entry.
pub fn validate_files(files: &[LoadedFile]) -> BTreeMap<PathBuf, Vec<ConfigError>> {
    let mut report: BTreeMap<PathBuf, Vec<ConfigError>> = files
        .iter()
        .map(|f| (f.path.clone(), f.errors.clone()))
        .collect();
    let objects: Vec<Loaded> = files.iter().flat_map(|f| f.objects.clone()).collect();
    for err in validate(&objects) {
        report.entry(err.file.clone()).or_default().push(err);
    }
    report
}

/// Collects the errors and warnings of one object.
pub(crate) struct Ctx<'a> {
    loaded: &'a Loaded,
    key: Option<String>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        let key = (!loaded.object.name().is_empty()).then(|| loaded.key());
        Ctx {
            loaded,
            key,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records a warning (kind [`ErrorKind::Deprecated`] or
    /// [`ErrorKind::Ineffective`]) at `path`.
    fn warn(&mut self, kind: ErrorKind, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.loaded.line_of(&path);
        self.warnings.push(
            ConfigError::new(&self.loaded.file, kind, path, message)
                .at_line(line)
                .for_object(self.key.clone()),
        );
    }

    /// The namespace of the object under validation.
    fn namespace(&self) -> &str {
        self.loaded.object.namespace()
    }

    /// Records an error at `path`, on the line of that field in the file.
    fn err(&mut self, kind: ErrorKind, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.loaded.line_of(&path);
        self.errors.push(
            ConfigError::new(&self.loaded.file, kind, path, message)
                .at_line(line)
                .for_object(self.key.clone()),
        );
    }

    /// Records a missing required field at `path`.
    fn missing(&mut self, path: impl Into<String>) {
        self.err(ErrorKind::MissingField, path, "missing required field");
    }

    /// Records an invalid value at `path`.
    fn invalid(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.err(ErrorKind::InvalidValue, path, message);
    }
}

/// `metadata.name` is required and, like `metadata.namespace`, must be a
/// valid Kubernetes name; a Gateway's name must be a DNS label (no dots),
/// as Istio requires.
fn metadata(ctx: &mut Ctx<'_>, loaded: &Loaded) {
    let meta = loaded.object.metadata();
    if meta.name.is_empty() {
        ctx.missing("metadata.name");
    } else if !is_dns1123_subdomain(&meta.name) {
        ctx.invalid(
            "metadata.name",
            format!(
                "{:?} is not a valid name (lowercase letters, digits, '-' and '.')",
                meta.name
            ),
        );
    } else if matches!(loaded.object, Object::Gateway(_)) && !is_dns1123_label(&meta.name) {
        ctx.invalid(
            "metadata.name",
            format!("{:?}: a Gateway's name cannot contain dots", meta.name),
        );
    }
    if let Some(ns) = &meta.namespace {
        if !is_dns1123_label(ns) {
            ctx.invalid(
                "metadata.namespace",
                format!("{ns:?} is not a valid namespace (lowercase letters, digits and '-')"),
            );
        }
    }
}

/// Kubernetes DNS-1123 label: 1..63 of `[a-z0-9-]`, alphanumeric at both
/// ends.
fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Kubernetes DNS-1123 subdomain: dot-separated labels, at most 253 bytes.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Protocols Istio recognises on ports (compared case-insensitively, as
/// Istio's `protocol.Parse` does).
fn is_known_protocol(protocol: &str) -> bool {
    const KNOWN: [&str; 12] = [
        "HTTP",
        "HTTPS",
        "HTTP2",
        "HTTP_PROXY",
        "GRPC",
        "GRPC-WEB",
        "TCP",
        "TLS",
        "MONGO",
        "REDIS",
        "MYSQL",
        "UDP",
    ];
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(protocol))
}

/// What Istio's protocol classes say about a port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProtocolClass {
    /// HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-WEB.
    http: bool,
    /// HTTPS, TLS.
    tls: bool,
}

fn protocol_class(protocol: &str) -> ProtocolClass {
    let p = protocol.to_ascii_uppercase();
    ProtocolClass {
        http: matches!(
            p.as_str(),
            "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB"
        ),
        tls: matches!(p.as_str(), "HTTPS" | "TLS"),
    }
}

#[cfg(test)]
mod tests;

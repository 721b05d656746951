//! Validation: the checks Istio makes before it accepts config, per object
//! and across objects, each reported as a [`ConfigError`] with the object's
//! key and the field path.
//!
//! Second step of the flow in DESIGN.md, after [`crate::load`]; pilot stores
//! only files that pass, meshctl `analyze` prints what fails.
//!
//! - [`validate_object`]: one object on its own (required fields, regexes,
//!   weights, ports, one-of rules).
//! - [`validate`]: every object, plus the cross-object checks: duplicates
//!   (`Kind/namespace/name` loaded twice; the later one is reported, naming
//!   where the first is), subsets that no DestinationRule for the host
//!   defines, and VirtualServices without hosts that are not a delegate of
//!   another VirtualService.
//! - [`validate_files`]: the same over whole files, grouped by file, with
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
mod service_entry;
mod virtual_service;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{ConfigError, ErrorKind};
use crate::load::LoadedFile;
use crate::types::common::{Percent, StringMatch};
use crate::types::{Loaded, Object};

/// Validates each object on its own and all of them together; errors come
/// in object order, cross-object errors last.
pub fn validate(objects: &[Loaded]) -> Vec<ConfigError> {
    let mut errors: Vec<ConfigError> = objects.iter().flat_map(validate_object).collect();
    errors.extend(cross::validate_across(objects));
    errors
}

/// Validates one object on its own (no cross-object checks).
pub fn validate_object(loaded: &Loaded) -> Vec<ConfigError> {
    let mut ctx = Ctx::new(loaded);
    metadata(&mut ctx, loaded);
    match &loaded.object {
        Object::VirtualService(r) => virtual_service::check(&mut ctx, &r.spec),
        Object::DestinationRule(r) => destination_rule::check(&mut ctx, &r.spec),
        Object::Gateway(r) => gateway::check(&mut ctx, &r.spec),
        Object::ServiceEntry(r) => service_entry::check(&mut ctx, &r.spec),
        Object::WorkloadEntry(r) => service_entry::check_workload_entry(&mut ctx, &r.spec, "spec"),
    }
    ctx.errors
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

/// Collects the errors of one object.
pub(crate) struct Ctx<'a> {
    loaded: &'a Loaded,
    key: Option<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        let key = (!loaded.object.name().is_empty()).then(|| loaded.key());
        Ctx {
            loaded,
            key,
            errors: Vec::new(),
        }
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
/// valid Kubernetes name.
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

/// A port number must be in 1..=65535.
pub(crate) fn port_number(ctx: &mut Ctx<'_>, path: &str, number: u32) {
    if number == 0 {
        ctx.missing(path);
    } else if number > 65535 {
        ctx.invalid(path, format!("port {number} is out of range 1..65535"));
    }
}

/// A percentage must be in 0..=100.
pub(crate) fn percent(ctx: &mut Ctx<'_>, path: &str, value: Option<&Percent>) {
    if let Some(p) = value {
        if !(0.0..=100.0).contains(&p.value) {
            ctx.invalid(
                format!("{path}.value"),
                format!("percentage {} is out of range 0..100", p.value),
            );
        }
    }
}

/// Exactly one of `exact`, `prefix`, `regex`; a regex must compile (RE2
/// syntax, which the `regex` crate shares).
pub(crate) fn string_match(ctx: &mut Ctx<'_>, path: &str, m: &StringMatch) {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|s| **s)
        .count();
    if set != 1 {
        ctx.invalid(
            path,
            format!("exactly one of exact, prefix or regex must be set ({set} are)"),
        );
    }
    if let Some(re) = &m.regex {
        regex_syntax(ctx, &format!("{path}.regex"), re);
    }
}

/// Reports `pattern` at `path` when it is not a valid RE2-style regex.
pub(crate) fn regex_syntax(ctx: &mut Ctx<'_>, path: &str, pattern: &str) {
    if let Err(err) = regex::Regex::new(pattern) {
        // The crate's message spans several lines with a caret diagram;
        // keep the one-line reason.
        let text = err.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.lines().last().unwrap_or("invalid"))
            .to_string();
        ctx.invalid(
            path,
            format!("invalid regular expression {pattern:?}: {reason} (RE2 syntax)"),
        );
    }
}

/// Kubernetes DNS-1123 label: 1..63 of `[a-z0-9-]`, alphanumeric at both
/// ends.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Kubernetes DNS-1123 subdomain: dot-separated labels, at most 253 bytes.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A host as Istio allows it in hosts lists: `*`, or DNS labels where only
/// the first may be `*` (`*.example.com`). Case is not checked.
pub(crate) fn is_wildcard_host(host: &str) -> bool {
    if host == "*" {
        return true;
    }
    let rest = host.strip_prefix("*.").unwrap_or(host);
    !rest.is_empty()
        && rest.len() <= 255
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Protocols Istio recognises on ports (compared case-insensitively).
pub(crate) fn is_known_protocol(protocol: &str) -> bool {
    const KNOWN: [&str; 11] = [
        "HTTP", "HTTPS", "HTTP2", "GRPC", "GRPC-WEB", "TCP", "TLS", "MONGO", "REDIS", "MYSQL",
        "UDP",
    ];
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(protocol))
}

#[cfg(test)]
mod tests;

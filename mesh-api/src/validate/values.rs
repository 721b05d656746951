//! Checks of values that recur across kinds, with Istio's rules: ports,
//! percentages, durations, string matches and regexes, labels and
//! selectors, header names and values, destinations, gateway names and
//! `exportTo`.
//!
//! Part of [`super`]; the per-kind modules call these with the field path
//! of the value.

use std::collections::{BTreeMap, BTreeSet};

use super::hostname::{fqdn, is_label, wildcard_domain};
use super::Ctx;
use crate::error::ErrorKind;
use crate::re2;
use crate::types::common::{Destination, Duration, Percent, StringMatch};

/// A port number must be in 1..=65535 (0 is a missing port).
pub(super) fn port_number(ctx: &mut Ctx<'_>, path: &str, number: u32) {
    if number == 0 {
        ctx.missing(path);
    } else if number > 65535 {
        ctx.invalid(path, format!("port {number} is out of range 1..65535"));
    }
}

/// A `Percent` of a mirror or a budget: in 0..=100.
pub(super) fn percent(ctx: &mut Ctx<'_>, path: &str, value: Option<&Percent>) {
    if let Some(p) = value {
        if !(0.0..=100.0).contains(&p.value) {
            ctx.invalid(
                format!("{path}.value"),
                format!("percentage {} is out of range 0..100", p.value),
            );
        }
    }
}

/// A fault's `Percent`: 0, or in 0.0001..=100 (Envoy's finest fraction is a
/// millionth).
pub(super) fn fault_percent(ctx: &mut Ctx<'_>, path: &str, value: Option<&Percent>) {
    if let Some(p) = value {
        let v = p.value;
        if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
            ctx.invalid(
                format!("{path}.value"),
                format!("percentage {v} is neither 0 nor in range 0.0001..100"),
            );
        }
    }
}

/// An integer percentage in 0..=100.
pub(super) fn int_percent(ctx: &mut Ctx<'_>, path: &str, value: Option<i32>) {
    if let Some(v) = value.filter(|v| !(0..=100).contains(v)) {
        ctx.invalid(path, format!("percentage {v} is out of range 0..100"));
    }
}

/// Istio's rule for durations: at least 1ms, in whole milliseconds.
pub(super) fn duration(ctx: &mut Ctx<'_>, path: &str, d: Option<&Duration>) {
    let Some(d) = d else { return };
    let d = d.0;
    if d < std::time::Duration::from_millis(1) {
        ctx.invalid(path, format!("duration {d:?} is less than 1ms"));
    } else if d.subsec_nanos() % 1_000_000 != 0 {
        ctx.invalid(
            path,
            format!("duration {d:?} is not in whole milliseconds (only ms precision is supported)"),
        );
    }
}

/// A value that must not be negative.
pub(super) fn non_negative(ctx: &mut Ctx<'_>, path: &str, value: Option<i32>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        ctx.invalid(path, format!("{v} cannot be negative"));
    }
}

/// Exactly one of `exact`, `prefix`, `regex`; a prefix not empty unless
/// `empty_prefix` (Envoy allows it for paths only); a regex both data
/// planes take ([`regex_syntax`]).
pub(super) fn string_match(ctx: &mut Ctx<'_>, path: &str, m: &StringMatch, empty_prefix: bool) {
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
    if m.prefix.as_deref() == Some("") && !empty_prefix {
        ctx.invalid(format!("{path}.prefix"), "a prefix match cannot be empty");
    }
    if let Some(re) = &m.regex {
        regex_syntax(ctx, &format!("{path}.regex"), re, RegexUse::WholeMatch);
    }
}

/// How the data planes apply a regex: matched against the whole value
/// (every `StringMatch`), or replacing matches anywhere in it
/// (`uriRegexRewrite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RegexUse {
    WholeMatch,
    Rewrite,
}

/// Reports `pattern` at `path` unless both data planes take it: longer
/// than the 1024 bytes Istio allows; not compiling with the `regex` crate
/// as mesh-proxy compiles it (same size limits, see [`crate::re2`]); not
/// RE2 syntax as Envoy reads it; or an RE2 program over Envoy's limit,
/// which makes Envoy reject the whole route configuration.
pub(super) fn regex_syntax(ctx: &mut Ctx<'_>, path: &str, pattern: &str, used: RegexUse) {
    if pattern.is_empty() {
        ctx.invalid(path, "a regex match cannot be empty");
        return;
    }
    if pattern.len() > 1024 {
        ctx.invalid(
            path,
            format!("the regex is {} bytes long, more than 1024", pattern.len()),
        );
        return;
    }
    let compiled = match used {
        RegexUse::WholeMatch => re2::whole_match(pattern),
        RegexUse::Rewrite => re2::unanchored(pattern),
    };
    if let Err(err) = compiled {
        let reason = match err {
            regex::Error::CompiledTooBig(limit) => {
                format!("it compiles to more than the {limit} bytes the proxy allows a regex")
            }
            // The crate's message spans several lines with a caret
            // diagram; keep the one-line reason.
            err => {
                let text = err.to_string();
                text.lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error: "))
                    .unwrap_or(text.lines().last().unwrap_or("invalid"))
                    .to_string()
            }
        };
        ctx.invalid(
            path,
            format!("invalid regular expression {pattern:?}: {reason} (RE2 syntax)"),
        );
        return;
    }
    match re2::program_size(pattern) {
        Ok(size) if size > re2::ENVOY_MAX_PROGRAM_SIZE => ctx.invalid(
            path,
            format!(
                "regex {pattern:?} compiles to an RE2 program of {size} instructions, more than Envoy's limit of {} ({})",
                re2::ENVOY_MAX_PROGRAM_SIZE,
                re2::ENVOY_PROGRAM_SIZE_KEY
            ),
        ),
        Ok(_) => {}
        Err(re2::Re2Error::Syntax(why)) => ctx.invalid(
            path,
            format!("invalid regular expression {pattern:?}: {why} (RE2 syntax, as Envoy reads it)"),
        ),
        Err(re2::Re2Error::TooLarge) => ctx.invalid(
            path,
            format!(
                "regex {pattern:?} compiles to an RE2 program too large for RE2 to build, far more than Envoy's limit of {} ({})",
                re2::ENVOY_MAX_PROGRAM_SIZE,
                re2::ENVOY_PROGRAM_SIZE_KEY
            ),
        ),
    }
}

/// A Kubernetes label key: `[prefix/]name`, name a qualified name of at
/// most 63 characters, prefix a DNS subdomain of at most 253.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_label));
    prefix_ok && name.len() <= 63 && is_label_value(name) && !name.is_empty()
}

/// A Kubernetes label value: empty, or alphanumerics with `-`, `_`, `.`
/// inside.
fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Labels (of a subset, an endpoint, a match): valid keys and values.
pub(super) fn labels(ctx: &mut Ctx<'_>, path: &str, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        if !is_label_key(key) {
            ctx.invalid(
                format!("{path}.{key}"),
                format!("{key:?} is not a valid label key"),
            );
        } else if !is_label_value(value) {
            ctx.invalid(
                format!("{path}.{key}"),
                format!("{value:?} is not a valid label value"),
            );
        }
    }
}

/// A workload selector's labels: no empty key, no wildcard; none at all
/// selects every workload of the namespace, which Istio warns about.
pub(super) fn selector(ctx: &mut Ctx<'_>, path: &str, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        ctx.warn(
            ErrorKind::Ineffective,
            path,
            "a workload selector without labels selects every workload of the namespace",
        );
    }
    for (key, value) in labels {
        if key.is_empty() {
            ctx.invalid(path, "an empty label key is not allowed in a selector");
        } else if key.contains('*') || value.contains('*') {
            ctx.invalid(
                format!("{path}.{key}"),
                format!("wildcards are not supported in selectors ({key}={value})"),
            );
        }
    }
}

/// RFC 7230 token characters: what a header name is made of.
pub(super) fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value Envoy accepts: no control characters, and `%` either
/// doubled (`%%`) or opening a `%VARIABLE%` / `%VARIABLE(args)%` that is
/// closed (Envoy substitutes those).
pub(super) fn header_value(ctx: &mut Ctx<'_>, path: &str, value: &str) {
    if value
        .chars()
        .any(|c| c != '\t' && (c.is_ascii_control() || c == '\u{7f}'))
    {
        ctx.invalid(path, "a header value cannot contain control characters");
        return;
    }
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'%') {
            i += 2;
            continue;
        }
        // A variable: a name, optional arguments in parentheses (which may
        // hold a `%` inside quotes), then the closing `%`.
        let mut j = i + 1;
        let mut depth = 0usize;
        let mut quoted = false;
        let closed = loop {
            match bytes.get(j) {
                None => break false,
                Some(b'"') if depth > 0 => quoted = !quoted,
                Some(b'\\') if quoted => j += 1,
                Some(b'(') if !quoted => depth += 1,
                Some(b')') if !quoted => depth = depth.saturating_sub(1),
                Some(b'%') if depth == 0 && !quoted => break true,
                Some(_) => {}
            }
            j += 1;
        };
        if !closed {
            ctx.invalid(
                path,
                format!("{value:?}: an unescaped % must start a %VARIABLE% (write %% for a %)"),
            );
            return;
        }
        i = j + 1;
    }
}

/// A destination: a host (not `*`), a subset name and a port.
pub(super) fn destination(ctx: &mut Ctx<'_>, path: &str, d: &Destination) {
    if d.host.is_empty() {
        ctx.missing(format!("{path}.host"));
    } else if d.host == "*" {
        ctx.invalid(format!("{path}.host"), "\"*\" is not a destination host");
    } else if let Err(err) = wildcard_domain(&d.host) {
        ctx.invalid(format!("{path}.host"), err);
    }
    if let Some(subset) = &d.subset {
        if !is_label(subset) {
            ctx.invalid(
                format!("{path}.subset"),
                format!("{subset:?} is not a valid subset name"),
            );
        }
    }
    if let Some(port) = &d.port {
        // A port chosen by name (Istio <= 1.3) is on the unsupported list.
        if port.name.is_none() || port.number != 0 {
            port_number(ctx, &format!("{path}.port.number"), port.number);
        }
        if port.name.is_some() && port.number != 0 {
            ctx.invalid(
                format!("{path}.port"),
                "only one of number and name may be set",
            );
        }
    }
}

/// `mesh`, a gateway `name`, or `namespace/name` (the legacy
/// `name.namespace...` form was rewritten by [`crate::normalize`]).
pub(super) fn gateway_name(ctx: &mut Ctx<'_>, path: &str, gateway: &str) {
    match gateway.split_once('/') {
        None => {
            if let Err(err) = fqdn(gateway) {
                ctx.invalid(
                    path,
                    format!("{gateway:?} is not a gateway reference: {err}"),
                );
            }
        }
        Some((ns, name)) => {
            if !is_label(ns) || !is_label(name) {
                ctx.invalid(
                    path,
                    format!(
                        "{gateway:?} is not a gateway reference (mesh, NAME or NAMESPACE/NAME)"
                    ),
                );
            }
        }
    }
}

/// What `exportTo` may hold: `.`, `*`, namespace names, and `~` for a
/// ServiceEntry; no duplicates; `*` and `~` alone. A DestinationRule with
/// a workload selector may export only to its own namespace.
pub(super) fn export_to(
    ctx: &mut Ctx<'_>,
    entries: &[String],
    service_entry: bool,
    has_selector: bool,
) {
    let own = ctx.namespace().to_string();
    let mut seen = BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("spec.exportTo[{i}]");
        let key = if entry == "." { own.as_str() } else { entry };
        let valid =
            entry == "." || entry == "*" || is_label(entry) || (service_entry && entry == "~");
        if !valid {
            ctx.invalid(
                path,
                format!(
                    "{entry:?} is not a namespace, \".\" or \"*\"{}",
                    if service_entry { " or \"~\"" } else { "" }
                ),
            );
        } else if !seen.insert(key.to_string()) {
            ctx.invalid(path, format!("{entry:?} is listed twice (\".\" is {own})"));
        }
    }
    if entries.len() > 1 && (seen.contains("*") || seen.contains("~")) {
        ctx.invalid(
            "spec.exportTo",
            "\"*\" and \"~\" cannot be combined with other exportTo values",
        );
    }
    if has_selector && !seen.is_empty() && (seen.len() > 1 || !seen.contains(&own)) {
        ctx.invalid(
            "spec.exportTo",
            "a DestinationRule with a workloadSelector can only be exported to its own namespace",
        );
    }
}

//! Host names, namespaces and addresses the way Istio's validation reads
//! them (`pkg/config/validation/agent`): wildcard domains, FQDNs,
//! `namespace/host` entries of Gateways and Sidecars, DNS labels, IPs and
//! CIDR blocks. Pure functions returning the reason a value is wrong.
//!
//! Part of [`super`]; every per-kind check uses these.

use std::net::IpAddr;

/// Istio's DNS-1123 label: 1..63 of `[A-Za-z0-9-]`, alphanumeric at both
/// ends (Istio allows upper case where Kubernetes names do not).
pub(crate) fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A first label that may carry a wildcard: `*`, `*foo`, `*-foo` or a
/// plain label.
fn is_wildcard_label(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    s.len() <= 63 && is_label(rest)
}

/// The common preconditions of a domain name.
fn domain_length(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        Err("empty domain name not allowed".into())
    } else if domain.len() > 255 {
        Err(format!("domain name {domain:?} is too long (max 255)"))
    } else {
        Ok(())
    }
}

/// Dot-separated labels; the top-level one not all digits; a trailing dot
/// allowed (`istio.io.`).
fn labels(domain: &str, whole: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let last = parts.len() - 1;
    if !parts[last].is_empty() && parts[last].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "domain name {whole:?} is invalid (top-level domain {:?} cannot be all-numeric)",
            parts[last]
        ));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == last && label.is_empty() {
            return Ok(());
        }
        if !is_label(label) {
            return Err(format!(
                "domain name {whole:?} is invalid (label {label:?})"
            ));
        }
    }
    Ok(())
}

/// A fully qualified domain name, no wildcard (Istio's `ValidateFQDN`).
/// Short names (`reviews`) pass: they are single-label FQDNs to Istio.
pub(crate) fn fqdn(domain: &str) -> Result<(), String> {
    domain_length(domain)?;
    labels(domain, domain)
}

/// A domain whose first label may be a wildcard (`*`, `*.example.com`,
/// `*foo.example.com`), Istio's `ValidateWildcardDomain`.
pub(crate) fn wildcard_domain(domain: &str) -> Result<(), String> {
    domain_length(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (domain, None),
    };
    if !is_wildcard_label(first) {
        return Err(format!(
            "domain name {domain:?} is invalid (label {first:?})"
        ));
    }
    match rest {
        Some(rest) => labels(rest, domain),
        None => Ok(()),
    }
}

/// A wildcard only as a whole first label (`*.example.com`, not
/// `*foo.example.com`).
pub(crate) fn no_partial_wildcard(host: &str) -> Result<(), String> {
    if host.contains('*') && host != "*" && !host.starts_with("*.") {
        Err(format!("partial wildcard {host:?} is not allowed"))
    } else {
        Ok(())
    }
}

/// Whether `host` is `*` or starts with a wildcard label.
pub(crate) fn is_wildcarded(host: &str) -> bool {
    host.starts_with('*')
}

/// The host part of a Gateway's or Sidecar's `namespace/host`: `*` or a
/// dotted name (no short names), no partial wildcard; a Gateway may also
/// name an IP address.
fn host_part(host: &str, gateway: bool) -> Result<(), String> {
    if host != "*" && !host.contains('.') {
        return Err(format!(
            "{host:?}: short names (not fully qualified) are not allowed"
        ));
    }
    if let Err(err) = wildcard_domain(host) {
        if !(gateway && host.parse::<IpAddr>().is_ok()) {
            return Err(err);
        }
    }
    no_partial_wildcard(host)
}

/// A Gateway server host: `[namespace/]host`, namespace `*`, `.` or a
/// namespace name.
pub(crate) fn gateway_host(entry: &str) -> Result<(), String> {
    match entry.split_once('/') {
        None => host_part(entry, true),
        Some((ns, host)) => {
            if ns.is_empty() || host.is_empty() {
                return Err("namespace and host cannot be empty in NAMESPACE/HOST".into());
            }
            if ns != "*" && ns != "." && !is_label(ns) {
                return Err(format!(
                    "invalid namespace {ns:?} (use *, . or a namespace)"
                ));
            }
            host_part(host, true)
        }
    }
}

/// A Sidecar egress host: `namespace/host`, namespace `*` (any), `.` (the
/// Sidecar's), `~` (none), a namespace name, or `~name` (exclude).
pub(crate) fn sidecar_host(entry: &str) -> Result<(), String> {
    let Some((ns, host)) = entry.split_once('/') else {
        return Err(format!("{entry:?} is not NAMESPACE/HOST"));
    };
    if ns.is_empty() || host.is_empty() {
        return Err("namespace and host cannot be empty in NAMESPACE/HOST".into());
    }
    let name = ns.strip_prefix('~').unwrap_or(ns);
    if !name.is_empty() && name != "*" && name != "." && !is_label(name) {
        return Err(format!(
            "invalid namespace {ns:?} (use *, ., ~, a namespace, or ~namespace to exclude it)"
        ));
    }
    host_part(host, false)
}

/// An IP address or a CIDR block (`198.18.0.0/15`, `2001:db8::/32`).
pub(crate) fn ip_or_cidr(text: &str) -> Result<(), String> {
    let ok = match text.split_once('/') {
        Some((ip, bits)) => match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        },
        None => text.parse::<IpAddr>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{text:?} is not an IP address or CIDR block"))
    }
}

/// An absolute unix socket path, or an abstract one (`@name`).
pub(crate) fn unix_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err("the unix socket path is empty".into())
    } else if path.starts_with('@') || (path.starts_with('/') && !path.ends_with('/')) {
        Ok(())
    } else {
        Err(format!("{path:?} is not an absolute path to a file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_domains_as_istio_reads_them() {
        for ok in [
            "*",
            "*.example.com",
            "*foo.example.com",
            "reviews",
            "Reviews.Prod.svc.cluster.local",
            "istio.io.",
        ] {
            assert_eq!(wildcard_domain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a.*.com",
            "a..b",
            "under_score.com",
            "10.0.0.1",
            "-a.com",
        ] {
            assert!(wildcard_domain(bad).is_err(), "{bad}");
        }
        assert!(fqdn("*.example.com").is_err());
        assert_eq!(fqdn("reviews"), Ok(()));
    }

    #[test]
    fn namespace_slash_hosts() {
        assert_eq!(gateway_host("*"), Ok(()));
        assert_eq!(gateway_host("prod/*.example.com"), Ok(()));
        assert_eq!(gateway_host("./api.example.com"), Ok(()));
        assert_eq!(gateway_host("198.18.0.1"), Ok(()));
        assert!(gateway_host("reviews").is_err(), "short name");
        assert!(gateway_host("~/a.example.com").is_err());
        assert!(gateway_host("prod/*foo.example.com").is_err(), "partial");
        for ok in [
            "*/*",
            "./*",
            "~/*",
            "istio-system/*",
            "~prod/*",
            "*/api.example.com",
        ] {
            assert_eq!(sidecar_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "*",
            "api.example.com",
            "prod/reviews",
            "Prod_1/*",
            "/*",
            "ns/",
        ] {
            assert!(sidecar_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(ip_or_cidr("198.18.0.0/15"), Ok(()));
        assert_eq!(ip_or_cidr("2001:db8::1"), Ok(()));
        assert!(ip_or_cidr("198.18.0.0/33").is_err());
        assert!(ip_or_cidr("example.com").is_err());
        assert_eq!(unix_path("/var/run/a.sock"), Ok(()));
        assert_eq!(unix_path("@abstract"), Ok(()));
        assert!(unix_path("relative.sock").is_err());
    }
}

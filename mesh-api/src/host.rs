//! Host names the way Istio reads them: short-name resolution to FQDNs and
//! wildcard matching.
//!
//! Used by validation (subset references) and by pilot when it matches
//! VirtualService and DestinationRule hosts to services.

/// The cluster DNS suffix short names are completed with.
pub const DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// Resolves `host` as written in an object of `namespace` to an FQDN.
///
/// Istio's rule: a host with no dot is a short name of a service in the
/// object's namespace, so `messenger` in `default` becomes
/// `messenger.default.svc.cluster.local`. Any host containing a dot is taken
/// as already fully qualified and left as it is (`reviews.prod` is *not*
/// completed; write the FQDN). `*` and wildcards are left as they are.
pub fn fqdn(host: &str, namespace: &str) -> String {
    if host.is_empty() || host.contains('.') || host.starts_with('*') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{DOMAIN_SUFFIX}")
    }
}

/// Whether `host` is matched by `pattern`, ignoring ASCII case.
///
/// `*` matches every host; `*.example.com` matches any host ending in
/// `.example.com` (one or more labels in front, as in Istio), but not
/// `example.com` itself; anything else must be equal.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            host.len() > suffix.len()
                && host
                    .get(host.len() - suffix.len()..)
                    .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Whether two host patterns (each possibly a wildcard) can match a common
/// host, as needed to bind a VirtualService host to a Gateway server host.
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    let a_wild = a.starts_with('*');
    let b_wild = b.starts_with('*');
    match (a_wild, b_wild) {
        (false, false) => a.eq_ignore_ascii_case(b),
        (true, false) => host_matches(a, b),
        (false, true) => host_matches(b, a),
        // Two wildcards overlap when one suffix ends with the other.
        (true, true) => {
            let (sa, sb) = (&a[1..], &b[1..]);
            let (long, short) = if sa.len() >= sb.len() {
                (sa, sb)
            } else {
                (sb, sa)
            };
            long.get(long.len() - short.len()..)
                .is_some_and(|end| end.eq_ignore_ascii_case(short))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_get_namespace_and_suffix() {
        assert_eq!(
            fqdn("messenger", "default"),
            "messenger.default.svc.cluster.local"
        );
        assert_eq!(fqdn("reviews", "prod"), "reviews.prod.svc.cluster.local");
    }

    #[test]
    fn dotted_and_wildcard_hosts_are_left_alone() {
        assert_eq!(fqdn("reviews.prod", "default"), "reviews.prod");
        assert_eq!(fqdn("api.example.com", "default"), "api.example.com");
        assert_eq!(fqdn("*", "default"), "*");
        assert_eq!(fqdn("*.example.com", "default"), "*.example.com");
    }

    #[test]
    fn wildcard_matching() {
        assert!(host_matches("*", "anything.at.all"));
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(host_matches("*.example.com", "a.b.Example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "api.example.org"));
        assert!(host_matches("api.example.com", "API.example.com"));
        assert!(!host_matches("api.example.com", "web.example.com"));
    }

    #[test]
    fn overlapping_patterns() {
        assert!(hosts_overlap("*", "a.com"));
        assert!(hosts_overlap("*.example.com", "*.api.example.com"));
        assert!(hosts_overlap("a.example.com", "*.example.com"));
        assert!(!hosts_overlap("*.example.com", "*.example.org"));
        assert!(!hosts_overlap("a.com", "b.com"));
    }
}

//! VirtualService delegation (one level, as Istio): a root's `http` route
//! with `delegate` is replaced by the delegate VirtualService's routes,
//! each with its matches merged with the root route's, and the root's
//! policies filling what the delegate route leaves unset. Done once per
//! push; the translator sees the merged root only.
//!
//! ```text
//!  root http[i] {match M, delegate D} + D.http[j] {match N} ──► http[k] {match M∧N, D's action}
//! ```
//!
//! A delegate route whose matches conflict with the root's (a path the
//! root's prefix does not cover, a different method, ...) is dropped, as
//! Istio drops it. Short host names of the delegate's destinations resolve
//! in the delegate's namespace.

use std::collections::BTreeMap;

use mesh_api::{fqdn, Destination, HttpMatchRequest, HttpRoute, StringMatch, VirtualServiceSpec};

use crate::source::{ConfigSnapshot, Named};

/// The root VirtualServices of a snapshot that use delegates, merged: by
/// position in the snapshot.
pub fn merge_delegates(config: &ConfigSnapshot) -> BTreeMap<usize, VirtualServiceSpec> {
    let mut out = BTreeMap::new();
    for root in config.virtual_services() {
        if root.spec.hosts.is_empty() || root.spec.http.iter().all(|h| h.delegate.is_none()) {
            continue;
        }
        let mut merged = root.spec.clone();
        merged.http = Vec::new();
        for route in &root.spec.http {
            let Some(d) = &route.delegate else {
                merged.http.push(route.clone());
                continue;
            };
            let ns = d.namespace.as_deref().unwrap_or(root.namespace);
            let Some(delegate) = find(config, ns, &d.name) else {
                tracing::warn!(root = root.name, delegate = %d.name, namespace = ns, "delegate VirtualService not found; its routes are left out");
                continue;
            };
            if !delegate.spec.hosts.is_empty() {
                tracing::warn!(root = root.name, delegate = %d.name, "a delegate must not have hosts; left out");
                continue;
            }
            for sub in &delegate.spec.http {
                if sub.delegate.is_some() {
                    // Only one level of delegation.
                    continue;
                }
                if let Some(m) = merge_route(route, resolved(sub, delegate.namespace)) {
                    merged.http.push(m);
                }
            }
        }
        out.insert(root.at, merged);
    }
    out
}

fn find<'a>(
    config: &'a ConfigSnapshot,
    namespace: &str,
    name: &str,
) -> Option<Named<'a, VirtualServiceSpec>> {
    config
        .virtual_services()
        .find(|vs| vs.namespace == namespace && vs.name == name)
}

/// A delegate route with its destinations' short names made FQDNs in the
/// delegate's namespace (the merged route lives in the root's).
fn resolved(sub: &HttpRoute, namespace: &str) -> HttpRoute {
    let fix = |d: &mut Destination| d.host = fqdn(&d.host, namespace);
    let mut out = sub.clone();
    for r in &mut out.route {
        if let Some(d) = r.destination.as_mut() {
            fix(d);
        }
    }
    if let Some(m) = out.mirror.as_mut() {
        fix(m);
    }
    for m in &mut out.mirrors {
        fix(&mut m.destination);
    }
    out
}

/// The delegate route with the root's matches and unset policies merged
/// in; `None` when their matches conflict.
fn merge_route(root: &HttpRoute, mut sub: HttpRoute) -> Option<HttpRoute> {
    sub.matches = merge_matches(&root.matches, &sub.matches)?;
    sub.name = match (&root.name, sub.name.take()) {
        (Some(r), Some(s)) => Some(format!("{r}-{s}")),
        (r, s) => s.or_else(|| r.clone()),
    };
    macro_rules! inherit {
        ($($field:ident),*) => {$(
            if sub.$field.is_none() {
                sub.$field = root.$field.clone();
            }
        )*};
    }
    inherit!(
        rewrite,
        direct_response,
        timeout,
        retries,
        fault,
        mirror,
        mirror_percent,
        mirror_percentage,
        cors_policy,
        headers
    );
    if sub.mirrors.is_empty() {
        sub.mirrors = root.mirrors.clone();
    }
    Some(sub)
}

/// Each delegate match merged with every root match it does not conflict
/// with; `None` when a delegate match fits no root match.
fn merge_matches(
    root: &[HttpMatchRequest],
    sub: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    if root.is_empty() {
        return Some(sub.to_vec());
    }
    if sub.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for s in sub {
        let mut found = false;
        for r in root {
            if conflict(r, s) {
                continue;
            }
            out.push(merge_match(r, s));
            found = true;
        }
        if !found {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn merge_match(root: &HttpMatchRequest, sub: &HttpMatchRequest) -> HttpMatchRequest {
    let mut out = sub.clone();
    out.name = match (&root.name, sub.name.clone()) {
        (Some(r), Some(s)) => Some(format!("{r}-{s}")),
        (r, s) => s.or_else(|| r.clone()),
    };
    macro_rules! inherit {
        ($($field:ident),*) => {$(
            if out.$field.is_none() {
                out.$field = root.$field.clone();
            }
        )*};
    }
    inherit!(
        uri,
        scheme,
        method,
        authority,
        port,
        source_namespace,
        stat_prefix
    );
    let merge = |a: &BTreeMap<String, StringMatch>, b: &BTreeMap<String, StringMatch>| {
        let mut m = a.clone();
        m.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
        m
    };
    out.headers = merge(&root.headers, &sub.headers);
    out.without_headers = merge(&root.without_headers, &sub.without_headers);
    out.query_params = merge(&root.query_params, &sub.query_params);
    let mut labels = root.source_labels.clone();
    labels.extend(
        sub.source_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out.source_labels = labels;
    if out.gateways.is_empty() {
        out.gateways = root.gateways.clone();
    }
    out
}

/// Whether a delegate match asks for something its root match excludes.
fn conflict(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if pairs
        .iter()
        .any(|(r, l)| string_conflict(r.as_ref(), l.as_ref()))
    {
        return true;
    }
    let maps = [
        (&root.headers, &leaf.headers),
        (&root.without_headers, &leaf.without_headers),
        (&root.query_params, &leaf.query_params),
    ];
    for (r, l) in maps {
        if l.iter().any(|(k, v)| string_conflict(r.get(k), Some(v))) {
            return true;
        }
    }
    if root.ignore_uri_case.unwrap_or(false) != leaf.ignore_uri_case.unwrap_or(false) {
        return true;
    }
    if let (Some(r), Some(l)) = (root.port, leaf.port) {
        if r != l {
            return true;
        }
    }
    if root.source_namespace.is_some() && leaf.source_namespace != root.source_namespace {
        return true;
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v))
    {
        return true;
    }
    if !root.gateways.is_empty() && !leaf.gateways.is_empty() {
        return leaf.gateways.iter().any(|g| !root.gateways.contains(g));
    }
    false
}

/// Istio's string conflict: the leaf must be a subset of the root.
fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    if root.regex.is_some() || leaf.regex.is_some() {
        // A regex root admits no narrower match, and the other way round.
        return true;
    }
    if let Some(exact) = &root.exact {
        return leaf.exact.as_ref() != Some(exact);
    }
    if let Some(prefix) = &root.prefix {
        if let Some(p) = leaf.prefix.as_ref().or(leaf.exact.as_ref()) {
            return !p.starts_with(prefix.as_str());
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::snapshot_from_str;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: istio-system}
spec:
  hosts: [bookinfo.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /reviews}}]
    timeout: 5s
    delegate: {name: reviews, namespace: shop}
  - route: [{destination: {host: productpage.shop.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  http:
  - match: [{uri: {prefix: /reviews/v2}, headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: ratings}}]
  - timeout: 1s
    route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"#;

    #[test]
    fn delegate_routes_merge_under_the_root_match() {
        let config = snapshot_from_str("d.yaml", CONFIG).unwrap();
        let merged = merge_delegates(&config);
        let root = config
            .virtual_services()
            .find(|v| v.name == "root")
            .unwrap();
        let http = &merged[&root.at].http;
        // The /ratings route conflicts with the root's /reviews prefix.
        assert_eq!(http.len(), 3, "{http:#?}");
        let first = &http[0];
        assert_eq!(
            first.matches[0].uri.as_ref().unwrap().prefix.as_deref(),
            Some("/reviews/v2")
        );
        assert!(first.matches[0].headers.contains_key("end-user"));
        assert_eq!(
            first.route[0].destination.as_ref().unwrap().host,
            "reviews.shop.svc.cluster.local",
            "short names resolve in the delegate's namespace"
        );
        assert_eq!(
            first.timeout.unwrap().to_string(),
            "5s",
            "the root's timeout fills in"
        );
        let catch_all = &http[1];
        assert_eq!(
            catch_all.matches[0].uri.as_ref().unwrap().prefix.as_deref(),
            Some("/reviews")
        );
        assert_eq!(
            catch_all.timeout.unwrap().to_string(),
            "1s",
            "the delegate's own wins"
        );
        assert!(http[2].delegate.is_none());
    }
}

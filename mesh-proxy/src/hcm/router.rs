//! Route selection, the first step of the HTTP router filter (listener ─►
//! HCM ─► **router** ─► cluster): pick the virtual host by authority and the
//! first route whose match holds (path, headers, query parameters), exactly
//! as Envoy does. Pure functions over the snapshot's [`RouteConfig`]; no
//! I/O. The header and value matchers here serve the other filters too
//! (fault `headers`, CORS origins, retriable headers).

use std::borrow::Cow;

use http::request::Parts;
use http::HeaderMap;

use super::authority::authority;
use crate::model::{
    HeaderMatchKind, HeaderMatcher, PathMatch, QueryParameterMatcher, Route, RouteConfig,
    RouteMatch, VirtualHost,
};

/// The virtual host for `authority` (`host` or `host:port`, any case).
///
/// Envoy's order: an exact domain, then the longest `*suffix` wildcard, then
/// the longest `prefix*` wildcard, then `*`. Each step tries the authority as
/// given and without its port, so `messenger:9080` finds a virtual host
/// whose domains list only `messenger`, and the other way round.
pub fn select_virtual_host<'a>(
    config: &'a RouteConfig,
    authority: &str,
) -> Option<&'a VirtualHost> {
    let full = authority.to_ascii_lowercase();
    let bare = strip_port(&full);
    let candidates: &[&str] = if bare == full {
        &[&full]
    } else {
        &[&full, bare]
    };

    let domains = || {
        config
            .virtual_hosts
            .iter()
            .flat_map(|vh| vh.domains.iter().map(move |d| (vh, d.as_str())))
    };

    // Exact.
    for host in candidates {
        if let Some((vh, _)) = domains().find(|(_, d)| d.eq_ignore_ascii_case(host)) {
            return Some(vh);
        }
    }
    // Longest `*suffix` (the wildcard stands for at least one character).
    let suffix = domains()
        .filter(|(_, d)| d.len() > 1 && d.starts_with('*'))
        .filter(|(_, d)| {
            let suffix = &d[1..];
            candidates
                .iter()
                .any(|host| host.len() > suffix.len() && ends_with_ignore_case(host, suffix))
        })
        .max_by_key(|(_, d)| d.len());
    if let Some((vh, _)) = suffix {
        return Some(vh);
    }
    // Longest `prefix*`.
    let prefix = domains()
        .filter(|(_, d)| d.len() > 1 && d.ends_with('*'))
        .filter(|(_, d)| {
            let prefix = &d[..d.len() - 1];
            candidates
                .iter()
                .any(|host| host.len() > prefix.len() && starts_with_ignore_case(host, prefix))
        })
        .max_by_key(|(_, d)| d.len());
    if let Some((vh, _)) = prefix {
        return Some(vh);
    }
    domains().find(|(_, d)| *d == "*").map(|(vh, _)| vh)
}

/// The first route of `vhost` that matches the request head.
pub fn select_route<'a>(vhost: &'a VirtualHost, request: &Parts) -> Option<&'a Route> {
    vhost
        .routes
        .iter()
        .find(|route| route_matches(&route.matcher, request))
}

/// Whether one route's match holds: path (query excluded) and every header.
pub fn route_matches(matcher: &RouteMatch, request: &Parts) -> bool {
    let path = request.uri.path();
    let path_ok = match &matcher.path {
        PathMatch::Prefix(prefix) if matcher.case_sensitive => path.starts_with(prefix.as_str()),
        PathMatch::Prefix(prefix) => starts_with_ignore_case(path, prefix),
        PathMatch::Exact(exact) if matcher.case_sensitive => path == exact,
        PathMatch::Exact(exact) => path.eq_ignore_ascii_case(exact),
        PathMatch::PathSeparatedPrefix(prefix) => {
            let head_ok = if matcher.case_sensitive {
                path.starts_with(prefix.as_str())
            } else {
                starts_with_ignore_case(path, prefix)
            };
            head_ok && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
        }
        PathMatch::Regex(re) => re.is_match(path),
    };
    path_ok
        && matcher.headers.iter().all(|h| header_matches(h, request))
        && (matcher.query_parameters.is_empty()
            || query_matches(&matcher.query_parameters, request.uri.query()))
}

/// Whether every query parameter condition holds: the parameter is in the
/// query (Envoy takes its first occurrence) and its decoded value matches.
pub fn query_matches(matchers: &[QueryParameterMatcher], query: Option<&str>) -> bool {
    let query = query.unwrap_or("");
    matchers.iter().all(|m| {
        let value = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| *name == m.name.as_str())
            .map(|(_, value)| value);
        match (&m.kind, value) {
            (_, None) => false,
            (HeaderMatchKind::Present(present), Some(_)) => *present,
            (kind, Some(value)) => value_matches(kind, &value),
        }
    })
}

/// Whether `value` satisfies a value condition (`Present` holds for any
/// value).
pub fn value_matches(kind: &HeaderMatchKind, value: &str) -> bool {
    match kind {
        HeaderMatchKind::Exact(expected) => value == expected.as_str(),
        HeaderMatchKind::Prefix(prefix) => value.starts_with(prefix.as_str()),
        HeaderMatchKind::Suffix(suffix) => value.ends_with(suffix.as_str()),
        HeaderMatchKind::Contains(part) => value.contains(part.as_str()),
        HeaderMatchKind::Regex(re) => re.is_match(value),
        HeaderMatchKind::Present(present) => *present,
    }
}

/// A header condition on a header map alone (responses, or requests where
/// pseudo-headers do not matter), with Envoy's rules for absent headers.
pub fn header_map_matches(matcher: &HeaderMatcher, headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(matcher.name.as_str()).iter();
    let value = match values.next() {
        None => None,
        Some(first) => {
            let mut joined = Cow::Borrowed(first.to_str().unwrap_or(""));
            for more in values {
                let joined = joined.to_mut();
                joined.push(',');
                joined.push_str(more.to_str().unwrap_or(""));
            }
            Some(joined)
        }
    };
    value_condition(matcher, value)
}

/// Envoy's header match, including its rule for absent headers: an absent
/// header fails every condition except `present: false`, and `invert` then
/// only turns `present: true` into a match (never a value condition).
pub fn header_matches(matcher: &HeaderMatcher, request: &Parts) -> bool {
    value_condition(matcher, header_value(request, &matcher.name))
}

/// A header condition applied to the header's value, if any. With
/// `treat_missing_header_as_empty` an absent header is matched as `""`.
fn value_condition(matcher: &HeaderMatcher, value: Option<Cow<'_, str>>) -> bool {
    let value = match value {
        Some(value) => value,
        None if matcher.treat_missing_as_empty => Cow::Borrowed(""),
        None => {
            return match matcher.kind {
                HeaderMatchKind::Present(present) => present == matcher.invert,
                _ => false,
            }
        }
    };
    value_matches(&matcher.kind, &value) != matcher.invert
}

/// A header's value as Envoy sees it: pseudo-headers from the request line,
/// repeated headers joined with `,`, non-UTF-8 values as absent.
fn header_value<'a>(request: &'a Parts, name: &str) -> Option<Cow<'a, str>> {
    match name {
        ":path" => Some(Cow::Borrowed(
            request.uri.path_and_query().map_or("/", |pq| pq.as_str()),
        )),
        ":method" => Some(Cow::Borrowed(request.method.as_str())),
        ":authority" => authority(request).map(Cow::Borrowed),
        ":scheme" => Some(Cow::Borrowed(request.uri.scheme_str().unwrap_or("http"))),
        _ => {
            let mut values = request.headers.get_all(name).iter();
            let first = values.next()?.to_str().ok()?;
            let mut joined = Cow::Borrowed(first);
            for more in values {
                let joined = joined.to_mut();
                joined.push(',');
                joined.push_str(more.to_str().ok()?);
            }
            Some(joined)
        }
    }
}

/// `host` of `host:port` or `[v6]:port`; unchanged when there is no port.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &authority[..end + 2],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

#[cfg(test)]
mod tests;

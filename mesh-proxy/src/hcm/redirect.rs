//! Redirect answers (`RedirectAction`, and `require_tls`): the `Location`
//! built as Envoy builds it (`Http::Utility::newUri`): scheme, host, port
//! and path each from the action when it sets them, else from the request,
//! the request's port dropped when it was the old scheme's default.

use http::Uri;

use super::path::rewrite_path_with;
use crate::model::{PathMatch, Redirect, RedirectPath};

/// What `Location` is built from.
#[derive(Debug, Clone, Copy)]
pub struct RequestUrl<'a> {
    /// `http` or `https`, from the downstream connection.
    pub scheme: &'a str,
    /// `x-forwarded-proto` as the HCM set it.
    pub forwarded_proto: &'a str,
    /// The authority (`host[:port]`).
    pub authority: &'a str,
    /// Path and query.
    pub uri: &'a Uri,
}

/// The `Location` of a redirect for a request matched by `matched`.
pub fn location(redirect: &Redirect, matched: &PathMatch, request: RequestUrl<'_>) -> String {
    let scheme = redirect.scheme.as_deref().unwrap_or(request.scheme);
    let port = redirect.port.map(|p| format!(":{p}")).unwrap_or_default();
    let host = match &redirect.host {
        Some(host) => host.clone(),
        None => request_host(request, scheme, !port.is_empty()).to_owned(),
    };
    let current = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let (mut path, path_has_query) = match &redirect.path {
        Some(RedirectPath::Path(p)) if p.contains('?') => (p.clone(), true),
        Some(RedirectPath::Path(p)) => match current.find('?') {
            Some(i) => (format!("{p}{}", &current[i..]), false),
            None => (p.clone(), false),
        },
        Some(RedirectPath::Prefix(prefix)) => (
            rewrite_path_with(request.uri, matched, Some(prefix), None),
            false,
        ),
        Some(RedirectPath::Regex(re)) => (
            rewrite_path_with(request.uri, matched, None, Some(re)),
            false,
        ),
        None => (current.to_owned(), false),
    };
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if redirect.strip_query && !path_has_query {
        if let Some(i) = path.find('?') {
            path.truncate(i);
        }
    }
    format!("{scheme}://{host}{port}{path}")
}

/// The request's host, its port dropped when a new port comes or when the
/// scheme changes away from a default port.
fn request_host<'a>(request: RequestUrl<'a>, new_scheme: &str, new_port: bool) -> &'a str {
    let host = request.authority;
    let port_start = if host.starts_with('[') {
        host.rfind("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    let Some(port_start) = port_start else {
        return host;
    };
    let port = &host[port_start..];
    let proto = request.forwarded_proto;
    let mut remove = new_port;
    if new_scheme != proto {
        remove |= proto == "https" && port == ":443";
        remove |= proto == "http" && port == ":80";
    }
    if remove {
        &host[..port_start]
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> Redirect {
        Redirect {
            scheme: None,
            host: None,
            port: None,
            path: None,
            status: 301,
            strip_query: false,
        }
    }

    fn at(r: &Redirect, authority: &str, uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        location(
            r,
            &PathMatch::Prefix("/old".into()),
            RequestUrl {
                scheme: "http",
                forwarded_proto: "http",
                authority,
                uri: &uri,
            },
        )
    }

    #[test]
    fn https_redirect_drops_the_default_port() {
        let mut r = redirect();
        r.scheme = Some("https".into());
        assert_eq!(
            at(&r, "shop.example:80", "/a?b=1"),
            "https://shop.example/a?b=1"
        );
        assert_eq!(
            at(&r, "shop.example:8080", "/a"),
            "https://shop.example:8080/a"
        );
        r.port = Some(8443);
        assert_eq!(
            at(&r, "shop.example:8080", "/a"),
            "https://shop.example:8443/a"
        );
        assert_eq!(at(&r, "[::1]:80", "/"), "https://[::1]:8443/");
    }

    #[test]
    fn host_path_prefix_and_query() {
        let mut r = redirect();
        r.host = Some("new.example".into());
        assert_eq!(at(&r, "old.example:8080", "/x"), "http://new.example/x");
        r.path = Some(RedirectPath::Path("/moved".into()));
        assert_eq!(at(&r, "h", "/x?q=1"), "http://new.example/moved?q=1");
        r.strip_query = true;
        assert_eq!(at(&r, "h", "/x?q=1"), "http://new.example/moved");
        r.path = Some(RedirectPath::Path("/moved?fixed=1".into()));
        assert_eq!(at(&r, "h", "/x?q=1"), "http://new.example/moved?fixed=1");
        let mut r = redirect();
        r.path = Some(RedirectPath::Prefix("/new".into()));
        assert_eq!(at(&r, "h", "/old/page?q"), "http://h/new/page?q");
        r.path = Some(RedirectPath::Regex(crate::model::RegexRewrite {
            regex: regex::Regex::new("^/old/(.*)$").unwrap(),
            substitution: "/v2/${1}".into(),
        }));
        assert_eq!(at(&r, "h", "/old/page"), "http://h/v2/page");
    }
}

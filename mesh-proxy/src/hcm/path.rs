//! The request path as the HCM prepares it: normalisation before routing
//! (`normalize_path`, `merge_slashes`, escaped slashes) and the rewrites
//! the router makes before forwarding (`prefix_rewrite`, `regex_rewrite`).

use http::Uri;

use crate::model::{EscapedSlashes, HcmOptions, PathMatch, RegexRewrite};

/// What the escaped-slash rule asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum PathVerdict {
    /// Serve the request with this path (and query), maybe changed.
    Serve(Option<String>),
    /// Answer 400.
    Reject,
    /// Redirect the client to this path and query.
    Redirect(String),
}

/// Apply the HCM's path options to `uri`'s path, as Envoy does before
/// route matching. The query string is left alone.
pub fn normalize(uri: &Uri, options: &HcmOptions) -> PathVerdict {
    if options.escaped_slashes == EscapedSlashes::KeepUnchanged
        && !options.normalize_path
        && !options.merge_slashes
    {
        return PathVerdict::Serve(None);
    }
    let path = uri.path();
    let mut changed: Option<String> = None;
    let has_escaped_slash = contains_escaped_slash(path);
    if has_escaped_slash {
        match options.escaped_slashes {
            EscapedSlashes::KeepUnchanged => {}
            EscapedSlashes::Reject => return PathVerdict::Reject,
            EscapedSlashes::UnescapeAndForward | EscapedSlashes::UnescapeAndRedirect => {
                changed = Some(unescape_slashes(path));
            }
        }
    }
    if options.normalize_path {
        let current = changed.as_deref().unwrap_or(path);
        let normal = remove_dot_segments(&decode_unreserved(&current.replace('\\', "/")));
        if normal != current {
            changed = Some(normal);
        }
    }
    if options.merge_slashes {
        let current = changed.as_deref().unwrap_or(path);
        if current.contains("//") {
            changed = Some(merge_slashes(current));
        }
    }
    let with_query = |p: String| match uri.query() {
        Some(q) => format!("{p}?{q}"),
        None => p,
    };
    if has_escaped_slash && options.escaped_slashes == EscapedSlashes::UnescapeAndRedirect {
        if let Some(p) = changed {
            return PathVerdict::Redirect(with_query(p));
        }
    }
    PathVerdict::Serve(changed.map(with_query))
}

fn contains_escaped_slash(path: &str) -> bool {
    // Per request: look without allocating.
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && ((w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
                || (w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c')))
    })
}

fn unescape_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_lowercase);
        match code.as_deref() {
            Some("2f") => out.push('/'),
            Some("5c") => out.push('\\'),
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// Decode `%XX` of unreserved characters (RFC 3986 §2.3), which mean the
/// same encoded or not; other escapes stay, hex upper-cased.
fn decode_unreserved(path: &str) -> String {
    // Bytes, not chars: a path may hold UTF-8 (hyper accepts it), which
    // must come out as it went in.
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(hex)) = (bytes[i], path.get(i + 1..i + 3)) {
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    out.push(byte);
                } else {
                    out.push(b'%');
                    out.extend(hex.to_ascii_uppercase().bytes());
                }
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII was added or taken out, so the rest is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// RFC 3986 §5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing = path.ends_with("/.") || path.ends_with("/..") || path.ends_with('/');
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut previous_slash = false;
    for c in path.chars() {
        if c == '/' && previous_slash {
            continue;
        }
        previous_slash = c == '/';
        out.push(c);
    }
    out
}

/// Path and query after `prefix_rewrite` or `regex_rewrite`, as Envoy does
/// it: a prefix rewrite swaps the matched part of the path, which is the
/// prefix for prefix and path-separated-prefix routes and the whole path
/// for exact and regex routes; a regex rewrite replaces every match in the
/// path. The query string is always kept.
pub fn rewrite_path(uri: &Uri, matched: &PathMatch, rewrite: Option<&str>) -> String {
    rewrite_path_with(uri, matched, rewrite, None)
}

/// [`rewrite_path`] with an optional regex rewrite (which wins).
pub fn rewrite_path_with(
    uri: &Uri,
    matched: &PathMatch,
    prefix: Option<&str>,
    regex: Option<&RegexRewrite>,
) -> String {
    let path = uri.path();
    let new_path = match (regex, prefix, matched) {
        (Some(re), _, _) => re
            .regex
            .replace_all(path, re.substitution.as_str())
            .into_owned(),
        (None, Some(rewrite), PathMatch::Prefix(p) | PathMatch::PathSeparatedPrefix(p)) => {
            format!("{rewrite}{}", path.get(p.len()..).unwrap_or(""))
        }
        (None, Some(rewrite), PathMatch::Exact(_) | PathMatch::Regex(_)) => rewrite.to_owned(),
        (None, None, _) => path.to_owned(),
    };
    match uri.query() {
        Some(query) => format!("{new_path}?{query}"),
        None => new_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(f: impl FnOnce(&mut HcmOptions)) -> HcmOptions {
        let mut o = HcmOptions::default();
        f(&mut o);
        o
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn normalize_path_keeps_utf8_as_it_is() {
        // Found by the http_router fuzz target: each byte of a UTF-8
        // character became a character of its own, so the path routed and
        // forwarded was not the client's, and normalising it again changed
        // it once more.
        let o = options(|o| o.normalize_path = true);
        let got = normalize(&uri("/a/../caf\u{e9}/%7Ex?q=\u{e9}"), &o);
        assert_eq!(
            got,
            PathVerdict::Serve(Some("/caf\u{e9}/~x?q=\u{e9}".into()))
        );
        assert_eq!(
            normalize(&uri("/caf\u{e9}/~x?q=\u{e9}"), &o),
            PathVerdict::Serve(None)
        );
    }

    #[test]
    fn prefix_rewrite_swaps_the_matched_prefix_and_keeps_the_query() {
        let u = uri("/api/v1/items?page=2");
        let prefix = PathMatch::Prefix("/api/v1".into());
        assert_eq!(rewrite_path(&u, &prefix, Some("/v2")), "/v2/items?page=2");
        assert_eq!(rewrite_path(&u, &prefix, None), "/api/v1/items?page=2");
        let exact = PathMatch::Exact("/api/v1/items".into());
        assert_eq!(rewrite_path(&u, &exact, Some("/all")), "/all?page=2");
        let separated = PathMatch::PathSeparatedPrefix("/api".into());
        assert_eq!(
            rewrite_path(&uri("/api/items?page=2"), &separated, Some("/v2")),
            "/v2/items?page=2"
        );
    }

    #[test]
    fn regex_rewrite_replaces_every_match() {
        let re = RegexRewrite {
            regex: regex::Regex::new("^/service/([^/]+)(/.*)$").unwrap(),
            substitution: "${2}/instance/${1}".into(),
        };
        let any = PathMatch::Prefix("/".into());
        assert_eq!(
            rewrite_path_with(&uri("/service/foo/v1/api?x=1"), &any, None, Some(&re)),
            "/v1/api/instance/foo?x=1"
        );
        let every = RegexRewrite {
            regex: regex::Regex::new("o").unwrap(),
            substitution: "0".into(),
        };
        assert_eq!(
            rewrite_path_with(&uri("/foo/boo"), &any, None, Some(&every)),
            "/f00/b00"
        );
    }

    #[test]
    fn normalisation_options() {
        let normal = options(|o| o.normalize_path = true);
        assert_eq!(
            normalize(&uri("/a/./b/../c/%7Euser%2a?q=../x"), &normal),
            PathVerdict::Serve(Some("/a/c/~user%2A?q=../x".into()))
        );
        assert_eq!(normalize(&uri("/a/b"), &normal), PathVerdict::Serve(None));
        let merge = options(|o| o.merge_slashes = true);
        assert_eq!(
            normalize(&uri("//a///b/"), &merge),
            PathVerdict::Serve(Some("/a/b/".into()))
        );
        let reject = options(|o| o.escaped_slashes = EscapedSlashes::Reject);
        assert_eq!(normalize(&uri("/a%2Fb"), &reject), PathVerdict::Reject);
        let forward = options(|o| o.escaped_slashes = EscapedSlashes::UnescapeAndForward);
        assert_eq!(
            normalize(&uri("/a%2fb%5Cc"), &forward),
            PathVerdict::Serve(Some("/a/b\\c".into()))
        );
        let redirect = options(|o| o.escaped_slashes = EscapedSlashes::UnescapeAndRedirect);
        assert_eq!(
            normalize(&uri("/a%2Fb?x"), &redirect),
            PathVerdict::Redirect("/a/b?x".into())
        );
    }
}

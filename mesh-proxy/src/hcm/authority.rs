//! The authority a request is addressed to, as the HTTP connection manager
//! reads it (HCM ─► **authority** ─► router): route selection picks the
//! virtual host by it and matches `:authority` against it; the router
//! filter sends it upstream.

use http::header::HOST;
use http::request::Parts;

/// The authority a request is for: from an absolute URI (HTTP proxy form,
/// and every HTTP/2 request) or else from `Host`. Userinfo
/// (`user:password@`) is never part of it, so credentials in a URI are not
/// forwarded in `Host`. `None` when the request has none or it is not a
/// valid `host[:port]` (empty, spaces, `/`, `@` ...): the HCM answers 400.
pub fn authority(request: &Parts) -> Option<&str> {
    let authority = match request.uri.authority() {
        Some(authority) => authority.as_str(),
        None => request.headers.get(HOST)?.to_str().ok()?,
    };
    let host = match authority.rfind('@') {
        Some(at) if request.uri.authority().is_some() => &authority[at + 1..],
        _ => authority,
    };
    valid(host).then_some(host)
}

/// Whether `host` is a `host[:port]` (RFC 3986 reg-name, IPv4 or an IPv6
/// literal in brackets, as bytes: no check of the port's digits beyond
/// their characters).
fn valid(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b':'
                        | b'['
                        | b']'
                        | b'%'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                )
        })
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    #[test]
    fn authority_prefers_the_absolute_uri() {
        let request = Request::get("http://messenger:9080/x")
            .header(HOST, "other")
            .body(())
            .unwrap();
        assert_eq!(authority(&request.into_parts().0), Some("messenger:9080"));
        let request = Request::get("/x").header(HOST, "greeter").body(()).unwrap();
        assert_eq!(authority(&request.into_parts().0), Some("greeter"));
        let request = Request::get("/x").body(()).unwrap();
        assert_eq!(authority(&request.into_parts().0), None);
    }

    #[test]
    fn userinfo_is_not_part_of_the_authority() {
        let request = Request::get("http://user:pw@messenger:9080/x")
            .body(())
            .unwrap();
        assert_eq!(authority(&request.into_parts().0), Some("messenger:9080"));
    }

    #[test]
    fn empty_or_invalid_host_has_no_authority() {
        for host in ["", "a b", "bad/host", "u@h", "h?q", "h#f"] {
            let request = Request::get("/x").header(HOST, host).body(()).unwrap();
            assert_eq!(authority(&request.into_parts().0), None, "{host:?}");
        }
        for host in [
            "greeter",
            "greeter:9080",
            "198.18.0.1:80",
            "[::1]:8080",
            "a_b.c",
        ] {
            let request = Request::get("/x").header(HOST, host).body(()).unwrap();
            assert_eq!(authority(&request.into_parts().0), Some(host), "{host:?}");
        }
    }
}

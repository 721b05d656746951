//! The authority a request is addressed to, as the HTTP connection manager
//! reads it (HCM ─► **authority** ─► router): route selection picks the
//! virtual host by it and matches `:authority` against it; the router
//! filter sends it upstream.

use http::header::HOST;
use http::request::Parts;

/// The authority a request is for: from an absolute URI (HTTP proxy form,
/// and every HTTP/2 request) or else from `Host`.
pub fn authority(request: &Parts) -> Option<&str> {
    match request.uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers.get(HOST)?.to_str().ok(),
    }
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
}

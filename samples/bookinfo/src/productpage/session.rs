//! Signing in and out: `/login` sets the `end-user` cookie that productpage
//! reads on every request and forwards as the `end-user` header; `/logout`
//! clears it. There are no passwords, as in the original.

use hyper::header::{
    HeaderMap, HeaderValue, COOKIE as COOKIE_HEADER, LOCATION, REFERER, SET_COOKIE,
};
use hyper::StatusCode;

use crate::server::{respond, AppRequest, HttpResponse};

/// The cookie holding the signed-in user's name.
pub const COOKIE: &str = crate::headers::END_USER;

/// Longest user name accepted, in characters.
const MAX_USER_LEN: usize = 64;

/// Where to go after signing in or out when the referrer is of no use.
const DEFAULT_TARGET: &str = "/productpage";

/// The signed-in user, from the `end-user` cookie.
pub fn end_user(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    headers
        .get_all(COOKIE_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(prefix.as_str()))
        .filter_map(|raw| {
            // The value was written form-encoded; decode it the same way.
            let text = format!("u={raw}");
            form_urlencoded::parse(text.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
        .find(|user| valid_user(user))
}

/// `POST /login` with a form field `username` (the original's) or `user`.
pub fn login(req: &AppRequest) -> HttpResponse {
    let query = req.uri().query().unwrap_or("").as_bytes();
    let user = form_urlencoded::parse(req.body())
        .chain(form_urlencoded::parse(query))
        .find(|(k, _)| k == "username" || k == "user")
        .map(|(_, v)| v.trim().to_string());
    let Some(user) = user.filter(|u| valid_user(u)) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "please provide a user name (1-64 printable characters)\n",
        );
    };
    let encoded: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
    tracing::info!(%user, "signed in");
    redirect(
        req.headers(),
        &format!("{COOKIE}={encoded}; Path=/; HttpOnly; SameSite=Lax"),
    )
}

/// `GET /logout`: clears the cookie.
pub fn logout(req: &AppRequest) -> HttpResponse {
    redirect(
        req.headers(),
        &format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    )
}

/// A user name we are willing to put in a cookie, a header and a page.
fn valid_user(user: &str) -> bool {
    let len = user.chars().count();
    (1..=MAX_USER_LEN).contains(&len) && !user.chars().any(char::is_control)
}

/// 302 back to the page the form was on (as the original does), keeping
/// only the referrer's path so the redirect can never leave this site.
fn redirect(headers: &HeaderMap, set_cookie: &str) -> HttpResponse {
    let mut resp = respond(StatusCode::FOUND, "text/plain; charset=utf-8", "");
    let target = redirect_target(headers);
    if let Ok(value) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert(LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(set_cookie) {
        resp.headers_mut().insert(SET_COOKIE, value);
    }
    resp
}

/// The path (and query) of the `Referer`, or `/productpage`.
fn redirect_target(headers: &HeaderMap) -> String {
    headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<hyper::Uri>().ok())
        .map(|uri| match uri.query() {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_string(),
        })
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| DEFAULT_TARGET.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;
    use hyper::Request;

    fn cookies(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(COOKIE_HEADER, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn reads_the_user_among_other_cookies() {
        assert_eq!(
            end_user(&cookies(&["a=1; end-user=jason; b=2"])),
            Some("jason".into())
        );
        assert_eq!(
            end_user(&cookies(&["a=1", "end-user=jason"])),
            Some("jason".into())
        );
        assert_eq!(
            end_user(&cookies(&["end-user=Mary+Ann%21"])),
            Some("Mary Ann!".into())
        );
        assert_eq!(end_user(&cookies(&["end-user="])), None);
        assert_eq!(end_user(&cookies(&["not-end-user=jason"])), None);
        assert_eq!(end_user(&HeaderMap::new()), None);
    }

    #[test]
    fn login_sets_the_cookie_and_returns_to_the_referrer() {
        let req = Request::post("/login")
            .header(REFERER, "http://gateway.example/productpage?u=test")
            .body(Bytes::from_static(b"username=jason&passwd=secret"))
            .unwrap();
        let resp = login(&req);
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert_eq!(resp.headers()[LOCATION], "/productpage?u=test");
        let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("end-user=jason;"), "{cookie}");
    }

    #[test]
    fn login_round_trips_awkward_names() {
        let req = Request::post("/login")
            .body(Bytes::from_static(b"user=Mary+Ann%3B+x%3Dy"))
            .unwrap();
        let resp = login(&req);
        let set = resp.headers()[SET_COOKIE].to_str().unwrap();
        let value = set.split(';').next().unwrap().to_string();
        let back = end_user(&cookies(&[&value]));
        assert_eq!(back, Some("Mary Ann; x=y".into()));
        assert_eq!(resp.headers()[LOCATION], "/productpage");
    }

    #[test]
    fn login_without_a_name_is_refused() {
        for body in ["", "username=", "username=%0A", "other=1"] {
            let req = Request::post("/login").body(Bytes::from(body)).unwrap();
            assert_eq!(login(&req).status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }

    #[test]
    fn logout_clears_the_cookie() {
        let req = Request::get("/logout").body(Bytes::new()).unwrap();
        let resp = logout(&req);
        assert_eq!(resp.status(), StatusCode::FOUND);
        let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("end-user=;") && cookie.contains("Max-Age=0"));
    }

    #[test]
    fn the_redirect_never_leaves_the_site() {
        let mut headers = HeaderMap::new();
        headers.insert(REFERER, HeaderValue::from_static("//evil.example/x"));
        assert_eq!(redirect_target(&headers), "/productpage");
        headers.insert(REFERER, HeaderValue::from_static("https://evil.example"));
        assert_eq!(redirect_target(&headers), "/");
    }
}

//! The route's `hash_policy`: the consistent-hash key of a request, for
//! RING_HASH and MAGLEV clusters (`PickContext::hash`), combined over the
//! policies as Envoy combines them, and the cookie a `cookie` policy with a
//! `ttl` makes up when the request has none.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{HeaderValue, COOKIE};
use http::request::Parts;

use crate::model::{HashKind, HashPolicy};

/// The key of one request, and a `set-cookie` for the response.
#[derive(Debug, Default)]
pub struct RequestHash {
    /// The combined hash; `None` when no policy produced one.
    pub hash: Option<u64>,
    /// A cookie the proxy generated, to set on the response.
    pub set_cookie: Option<HeaderValue>,
}

/// xxHash64 with seed 0, as Envoy hashes a key: stable across processes
/// and builds (unlike `std`'s), and every input bit moves the high bits
/// too, which the ring's position depends on (keys that differ in one
/// character, `user-1` and `user-2`, land far apart).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(bytes, 0)
}

/// Compute the hash of `request` from `policies`, for the client at `client`.
pub fn compute(policies: &[HashPolicy], request: &Parts, client: SocketAddr) -> RequestHash {
    let mut out = RequestHash::default();
    for policy in policies {
        let value = match &policy.kind {
            HashKind::Header(name) => {
                let values: Vec<&[u8]> = request
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .collect();
                (!values.is_empty()).then(|| hash_bytes(&values.join(&b","[..])))
            }
            HashKind::SourceIp => Some(hash_bytes(client.ip().to_string().as_bytes())),
            HashKind::QueryParameter(name) => request.uri.query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| hash_bytes(v.as_bytes()))
            }),
            HashKind::Cookie {
                name,
                ttl,
                path,
                attributes,
            } => match cookie(request, name) {
                Some(value) => Some(hash_bytes(value.as_bytes())),
                None => ttl.map(|ttl| {
                    // Envoy makes the value from the client's address.
                    let value = format!("{:016x}", hash_bytes(client.to_string().as_bytes()));
                    out.set_cookie = set_cookie(name, &value, path.as_deref(), ttl, attributes);
                    hash_bytes(value.as_bytes())
                }),
            },
        };
        if let Some(new) = value {
            // Rotate the old value so that equal policies do not cancel out.
            let old = out.hash.map_or(0, |h| h.rotate_left(1));
            out.hash = Some(old ^ new);
        }
        if policy.terminal && out.hash.is_some() {
            break;
        }
    }
    out
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(request: &'a Parts, name: &str) -> Option<&'a str> {
    request
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// `name="value"; Max-Age=N; Path=P; ATTR[=V]...; HttpOnly`, Envoy's shape.
fn set_cookie(
    name: &str,
    value: &str,
    path: Option<&str>,
    ttl: Duration,
    attributes: &[(String, String)],
) -> Option<HeaderValue> {
    let mut text = format!("{name}=\"{value}\"");
    if !ttl.is_zero() {
        text.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if let Some(path) = path {
        text.push_str(&format!("; Path={path}"));
    }
    for (attr, v) in attributes {
        if v.is_empty() {
            text.push_str(&format!("; {attr}"));
        } else {
            text.push_str(&format!("; {attr}={v}"));
        }
    }
    text.push_str("; HttpOnly");
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut r = http::Request::get(uri);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(()).unwrap().into_parts().0
    }

    fn policy(kind: HashKind, terminal: bool) -> HashPolicy {
        HashPolicy { kind, terminal }
    }

    #[test]
    fn keys_that_differ_in_one_character_land_far_apart() {
        // The ring and Maglev place a key by its high bits: user names
        // differing only at the end must not all share them.
        let tops: std::collections::HashSet<u64> = (0..20)
            .map(|i| hash_bytes(format!("user-{i}").as_bytes()) >> 48)
            .collect();
        assert!(tops.len() >= 18, "{} distinct of 20", tops.len());
        // Envoy's xxHash64 (seed 0) of the empty key.
        assert_eq!(hash_bytes(b""), 0xef46_db37_51d8_e999);
    }

    #[test]
    fn same_inputs_same_hash_and_terminal_stops() {
        let client: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let by_user = [policy(HashKind::Header("x-user".into()), false)];
        let a = compute(&by_user, &request("/", &[("x-user", "ann")]), client).hash;
        let b = compute(&by_user, &request("/", &[("x-user", "ann")]), client).hash;
        let c = compute(&by_user, &request("/", &[("x-user", "bob")]), client).hash;
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(compute(&by_user, &request("/", &[]), client).hash, None);
        let two = [
            policy(HashKind::QueryParameter("u".into()), true),
            policy(HashKind::SourceIp, false),
        ];
        let q = compute(&two, &request("/?u=ann", &[]), client).hash;
        assert_eq!(
            q,
            Some(hash_bytes(b"ann")),
            "terminal policy stops the walk"
        );
        let ip = compute(&two, &request("/", &[]), client).hash;
        assert_eq!(ip, Some(hash_bytes(b"127.0.0.1")));
    }

    #[test]
    fn cookie_with_ttl_is_generated_when_absent() {
        let client: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let p = [policy(
            HashKind::Cookie {
                name: "session".into(),
                ttl: Some(Duration::from_secs(60)),
                path: Some("/".into()),
                attributes: vec![("SameSite".into(), "Strict".into())],
            },
            false,
        )];
        let fresh = compute(&p, &request("/", &[]), client);
        let cookie = fresh
            .set_cookie
            .expect("generated")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.starts_with("session=\""), "{cookie}");
        assert!(
            cookie.ends_with("\"; Max-Age=60; Path=/; SameSite=Strict; HttpOnly"),
            "{cookie}"
        );
        let value = cookie.split('"').nth(1).unwrap();
        let again = compute(
            &p,
            &request("/", &[("cookie", &format!("a=b; session={value}"))]),
            client,
        );
        assert_eq!(
            again.hash, fresh.hash,
            "the generated cookie keys the same hash"
        );
        assert!(again.set_cookie.is_none());
    }
}

//! The HCM's request head work before routing (Envoy's
//! `mutateRequestHeaders`): who the client is (`use_remote_address`,
//! `x-forwarded-for` and its trusted hops), whether the request is internal,
//! `x-forwarded-proto` from the connection, `x-envoy-external-address`,
//! `x-request-id`, and the client certificate header sanitised.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::headers::{ensure_request_id, set_request_id, X_REQUEST_ID};
use crate::data_plane::Downstream;
use crate::model::HcmOptions;

/// `x-forwarded-for`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `x-envoy-external-address`.
pub static X_ENVOY_EXTERNAL_ADDRESS: HeaderName =
    HeaderName::from_static("x-envoy-external-address");
/// `x-envoy-internal`.
pub static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
/// `x-forwarded-client-cert` (only SANITIZE is implemented: removed).
pub static X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// Who sent the request, as the HCM decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client address the HCM trusts (`%DOWNSTREAM_REMOTE_ADDRESS%`).
    pub address: SocketAddr,
    /// Whether the request comes from inside (an internal address).
    pub internal: bool,
}

/// Prepare the request head and return who the client is.
pub fn prepare(headers: &mut HeaderMap, options: &HcmOptions, downstream: &Downstream) -> Client {
    let hops = options.xff_num_trusted_hops as usize;
    let xff = forwarded_for(headers);
    let had_xff = !xff.is_empty();
    // The n-th address from the right (0 = the last one).
    let from_right = |n: usize| {
        xff.len()
            .checked_sub(n + 1)
            .and_then(|i| xff.get(i))
            .copied()
    };
    let peer = downstream.peer;
    let client_ip = if options.use_remote_address {
        if hops == 0 {
            Some(peer.ip())
        } else {
            from_right(hops - 1)
        }
    } else {
        from_right(hops)
    };
    let address = client_ip.map_or(peer, |ip| SocketAddr::new(ip, 0));
    let address = if address.ip() == peer.ip() {
        peer
    } else {
        address
    };
    let internal = if options.use_remote_address {
        is_internal(address.ip(), options) && (!had_xff || hops > 0)
    } else if had_xff {
        xff.len() == 1 && is_internal(xff[0], options)
    } else {
        is_internal(peer.ip(), options)
    };
    if options.use_remote_address {
        if !options.skip_xff_append {
            append_forwarded_for(headers, peer.ip());
        }
        if internal {
            headers.insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
            headers.remove(&X_ENVOY_EXTERNAL_ADDRESS);
        } else {
            headers.remove(&X_ENVOY_INTERNAL);
            if let Ok(value) = HeaderValue::from_str(&address.ip().to_string()) {
                headers.insert(X_ENVOY_EXTERNAL_ADDRESS.clone(), value);
            }
        }
    }
    // At the edge (`use_remote_address`) an untrusted prior hop's protocol
    // is overwritten; with trusted hops, or behind another proxy of the mesh
    // (a sidecar's inbound side behind a gateway that terminated TLS), the
    // protocol already there stands and is only added when missing.
    let overwrite = options.use_remote_address && hops == 0;
    if overwrite || !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = if downstream.tls.is_some() {
            "https"
        } else {
            "http"
        };
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    if options.generate_request_id {
        if options.use_remote_address
            && !internal
            && !options.preserve_external_request_id
            && headers.contains_key(&X_REQUEST_ID)
        {
            // An edge request's id is not trusted: made anew.
            set_request_id(headers);
        } else {
            ensure_request_id(headers);
        }
    }
    headers.remove(&X_FORWARDED_CLIENT_CERT);
    Client { address, internal }
}

/// The addresses of `x-forwarded-for`, left to right; entries that are not
/// IP addresses are skipped.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
    let existing: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let value = if existing.is_empty() {
        ip.to_string()
    } else {
        format!("{},{ip}", existing.join(","))
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
}

/// Whether `ip` is internal: in `internal_address_config` when given, else
/// Envoy's historic default, loopback and the private ranges (RFC 1918,
/// RFC 4193).
pub fn is_internal(ip: IpAddr, options: &HcmOptions) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match &options.internal_cidrs {
        Some(cidrs) => cidrs.iter().any(|(net, len)| in_cidr(ip, *net, *len)),
        None => match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downstream(peer: &str, tls: bool) -> Downstream {
        let local: SocketAddr = "127.0.0.1:15001".parse().unwrap();
        Downstream {
            peer: peer.parse().unwrap(),
            local,
            original_dst: local,
            tls: tls.then(Default::default),
        }
    }

    #[test]
    fn edge_proxy_appends_the_peer_and_marks_external_requests() {
        let options = HcmOptions {
            use_remote_address: true,
            ..HcmOptions::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("x-request-id", HeaderValue::from_static("from-outside"));
        headers.insert(
            "x-forwarded-client-cert",
            HeaderValue::from_static("forged"),
        );
        let client = prepare(
            &mut headers,
            &options,
            &downstream("198.18.0.7:5000", false),
        );
        assert_eq!(client.address.to_string(), "198.18.0.7:5000");
        assert!(!client.internal);
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9,198.18.0.7");
        assert_eq!(
            headers["x-forwarded-proto"], "http",
            "untrusted proto overwritten"
        );
        assert_eq!(headers["x-envoy-external-address"], "198.18.0.7");
        assert_ne!(headers["x-request-id"], "from-outside");
        assert!(!headers.contains_key("x-forwarded-client-cert"));
    }

    #[test]
    fn trusted_hops_pick_the_client_from_the_right() {
        let options = HcmOptions {
            use_remote_address: true,
            xff_num_trusted_hops: 1,
            skip_xff_append: true,
            preserve_external_request_id: true,
            ..HcmOptions::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.18.9.9, 203.0.113.9"),
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("x-request-id", HeaderValue::from_static("kept"));
        let client = prepare(&mut headers, &options, &downstream("127.0.0.1:5000", true));
        assert_eq!(client.address.ip().to_string(), "203.0.113.9");
        assert_eq!(headers["x-forwarded-for"], "198.18.9.9, 203.0.113.9");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-request-id"], "kept");
    }

    #[test]
    fn sidecar_defaults_keep_xff_and_set_proto_from_tls() {
        let options = HcmOptions::default();
        let mut headers = HeaderMap::new();
        let client = prepare(&mut headers, &options, &downstream("127.0.0.1:5000", true));
        assert!(client.internal);
        assert!(!headers.contains_key("x-forwarded-for"));
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert!(headers.contains_key("x-request-id"));
        // Behind a gateway that terminated TLS, its protocol stands.
        let mut behind = HeaderMap::new();
        behind.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        prepare(&mut behind, &options, &downstream("198.18.0.7:5000", false));
        assert_eq!(behind["x-forwarded-proto"], "https");
        let custom = HcmOptions {
            internal_cidrs: Some(vec![("198.18.0.0".parse().unwrap(), 15)]),
            ..HcmOptions::default()
        };
        assert!(is_internal("198.19.1.1".parse().unwrap(), &custom));
        assert!(!is_internal("127.0.0.1".parse().unwrap(), &custom));
    }
}

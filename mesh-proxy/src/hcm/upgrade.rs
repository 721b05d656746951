//! Upgrades (`upgrade_configs`): an HTTP/1.1 `Upgrade` request, or an
//! HTTP/2 extended CONNECT (RFC 8441, `:protocol websocket`) turned into an
//! HTTP/1.1 upgrade upstream as Envoy does; on the upstream's `101` both
//! connections are spliced until either side closes.

use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use http::request::Parts;
use http::{Method, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// How long a spliced connection may go on after its listener started
/// draining: like a TCP relay, it has no way to ask the peers to finish.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The upgrade a request asks for, lower case (`websocket`), if any.
pub fn requested(request: &Parts) -> Option<String> {
    if request.method == Method::CONNECT {
        return Some(
            request
                .extensions
                .get::<hyper::ext::Protocol>()
                .map_or_else(|| "connect".to_owned(), |p| p.as_str().to_ascii_lowercase()),
        );
    }
    if request.version != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = request
        .headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    request
        .headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Put the upgrade back on a head whose hop-by-hop headers were removed:
/// `Upgrade: TYPE` and `Connection: upgrade`, an HTTP/2 CONNECT made a GET.
pub fn restore(head: &mut Parts, upgrade: &str) {
    if head.method == Method::CONNECT {
        head.method = Method::GET;
        head.extensions.remove::<hyper::ext::Protocol>();
    }
    if let Ok(value) = HeaderValue::from_str(upgrade) {
        head.headers.insert(UPGRADE, value);
    }
    head.headers
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// The `101` headers as the client must see them: for an HTTP/2 client,
/// a `200` without the HTTP/1.1 upgrade headers.
pub fn downstream_headers(headers: &mut HeaderMap, h2_client: bool) {
    if h2_client {
        headers.remove(UPGRADE);
        headers.remove(CONNECTION);
        headers.remove("sec-websocket-accept");
    } else {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Splice the two upgraded connections; returns the bytes each way
/// (client to upstream, upstream to client) when either side closes.
pub async fn splice(downstream: OnUpgrade, upstream: OnUpgrade) -> Option<(u64, u64)> {
    let (down, up) = match tokio::join!(downstream, upstream) {
        (Ok(down), Ok(up)) => (down, up),
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "upgrade failed");
            return None;
        }
    };
    let mut down = TokioIo::new(down);
    let mut up = TokioIo::new(up);
    match tokio::io::copy_bidirectional(&mut down, &mut up).await {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::debug!(%error, "upgraded connection ended");
            None
        }
    }
}

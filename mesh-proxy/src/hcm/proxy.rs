//! The HTTP router filter, one request at a time (HCM ─► **router** ─►
//! cluster ─► upstream pool): route, pick an endpoint, rewrite, forward,
//! and relay the response with its body streamed.
//!
//! Config choice: the listener and its filter chain come from the snapshot
//! loaded when the connection was accepted; each request loads the current
//! snapshot once and takes its route configuration (RDS), clusters and
//! endpoints from that one copy. So a route change applies to keep-alive
//! connections at their next request (as in Envoy), while a request already
//! in flight keeps the snapshot it started with.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, HOST};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::authority::authority;
use super::headers;
use super::router::{select_route, select_virtual_host};
use crate::cluster::{choose_cluster, PickContext};
use crate::data_plane::{DataPlane, Downstream};
use crate::error::ProxyError;
use crate::model::{
    Forward, HttpConnectionManager, PathMatch, Route, RouteAction, RouteSource, Snapshot,
};
use crate::upstream::pool::RequestBody;

/// The body of every response we send downstream: the upstream's, streamed,
/// or a small local reply.
pub type ResponseBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What a request handler needs from its connection.
#[derive(Debug)]
pub struct HttpConnection {
    /// Shared data plane state (snapshot store, clusters, pools).
    pub data_plane: Arc<DataPlane>,
    /// The connection manager of the chain this connection was accepted on.
    pub hcm: HttpConnectionManager,
    /// Addresses of the downstream connection.
    pub downstream: Downstream,
}

/// Serve one request; failures become Envoy-like local replies.
pub async fn handle(
    conn: Arc<HttpConnection>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let (mut parts, body) = request.into_parts();
    headers::ensure_request_id(&mut parts.headers);
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    match route(&conn, parts, body).await {
        Ok(response) => Ok(response),
        Err(error) => {
            tracing::debug!(%method, %path, %error, side = ?error.source_side(), "local reply");
            Ok(local_reply(&error))
        }
    }
}

async fn route(
    conn: &HttpConnection,
    parts: Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, ProxyError> {
    if parts.method == Method::CONNECT {
        // Tunnels are not configured (no `upgrade_configs`): Envoy says 404.
        return Err(ProxyError::NoRoute);
    }
    let snapshot = conn.data_plane.store.load();
    let config = match &conn.hcm.routes {
        RouteSource::Rds(name) => snapshot
            .route_configs
            .get(name)
            .ok_or_else(|| ProxyError::RouteConfigNotFound(name.clone()))?,
        RouteSource::Inline(config) => config,
    };
    let authority = authority(&parts)
        .ok_or(ProxyError::MissingAuthority)?
        .to_owned();
    let vhost = select_virtual_host(config, &authority).ok_or(ProxyError::NoRoute)?;
    let route = select_route(vhost, &parts).ok_or(ProxyError::NoRoute)?;
    tracing::trace!(vhost = %vhost.name, route = %route.name, "matched");
    match &route.action {
        RouteAction::DirectResponse { status, body } => {
            Ok(direct_response(*status, body.as_deref()))
        }
        RouteAction::Forward(forward) => {
            proxy(conn, &snapshot, route, forward, &authority, parts, body).await
        }
    }
}

async fn proxy(
    conn: &HttpConnection,
    snapshot: &Snapshot,
    route: &Route,
    forward: &Forward,
    authority: &str,
    parts: Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, ProxyError> {
    let cluster_name = choose_cluster(&forward.target);
    let cluster = snapshot
        .clusters
        .get(cluster_name)
        .ok_or_else(|| ProxyError::ClusterNotFound(cluster_name.to_owned()))?;
    let data_plane = &conn.data_plane;
    let downstream = &conn.downstream;
    let endpoint = data_plane
        .clusters
        .pick(
            snapshot,
            cluster,
            &PickContext::new(downstream.original_dst, downstream.local),
        )
        .await?;
    let request = upstream_request(parts, body, route, forward, authority, cluster.http2)?;

    // The route timeout covers connect and the wait for response headers;
    // a streaming response body is not cut off by it (yet).
    let started = Instant::now();
    let send = data_plane.pool.send(&endpoint, cluster, request);
    let response = match forward.timeout {
        Some(limit) => tokio::time::timeout(limit, send)
            .await
            .map_err(|_| ProxyError::UpstreamTimeout)??,
        None => send.await?,
    };
    // The endpoint counts as busy until its response headers are here.
    drop(endpoint);

    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
        HeaderValue::from(started.elapsed().as_millis() as u64),
    );
    Ok(Response::from_parts(parts, body.boxed_unsync()))
}

/// The request as the upstream should see it: origin path rewritten, the
/// authority (maybe rewritten) in the URI, version set to the cluster's
/// protocol, hop-by-hop headers gone. The body is passed on unread.
fn upstream_request(
    mut parts: Parts,
    body: Incoming,
    route: &Route,
    forward: &Forward,
    authority: &str,
    http2: bool,
) -> Result<Request<RequestBody>, ProxyError> {
    headers::remove_hop_by_hop(&mut parts.headers);
    let authority = forward.host_rewrite.as_deref().unwrap_or(authority);
    let path = rewrite_path(
        &parts.uri,
        &route.matcher.path,
        forward.prefix_rewrite.as_deref(),
    );
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|error| ProxyError::InvalidRewrite(error.to_string()))?;
    if http2 {
        // `:authority` carries it; a duplicate Host could disagree.
        parts.version = Version::HTTP_2;
        parts.headers.remove(HOST);
    } else {
        parts.version = Version::HTTP_11;
        let host = HeaderValue::from_str(authority)
            .map_err(|error| ProxyError::InvalidRewrite(error.to_string()))?;
        parts.headers.insert(HOST, host);
    }
    Ok(Request::from_parts(parts, body.boxed_unsync()))
}

/// Path and query after `prefix_rewrite`, as Envoy does it: the matched
/// part of the path is swapped, which is the prefix for prefix and
/// path-separated-prefix routes and the whole path for exact and regex
/// routes. The query string is always kept.
pub fn rewrite_path(uri: &Uri, matched: &PathMatch, rewrite: Option<&str>) -> String {
    let path = uri.path();
    let new_path = match (rewrite, matched) {
        (Some(rewrite), PathMatch::Prefix(prefix) | PathMatch::PathSeparatedPrefix(prefix)) => {
            format!("{rewrite}{}", path.get(prefix.len()..).unwrap_or(""))
        }
        (Some(rewrite), PathMatch::Exact(_) | PathMatch::Regex(_)) => rewrite.to_owned(),
        (None, _) => path.to_owned(),
    };
    match uri.query() {
        Some(query) => format!("{new_path}?{query}"),
        None => new_path,
    }
}

fn direct_response(status: u16, body: Option<&str>) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text_response(status, body.unwrap_or("").to_owned())
}

/// The local reply for an error: its status code and Envoy's body.
pub fn local_reply(error: &ProxyError) -> Response<ResponseBody> {
    text_response(error.status(), error.body().to_owned())
}

fn text_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rewrite_swaps_the_matched_prefix_and_keeps_the_query() {
        let uri: Uri = "/api/v1/items?page=2".parse().unwrap();
        let prefix = PathMatch::Prefix("/api/v1".into());
        assert_eq!(rewrite_path(&uri, &prefix, Some("/v2")), "/v2/items?page=2");
        assert_eq!(rewrite_path(&uri, &prefix, None), "/api/v1/items?page=2");
        let exact = PathMatch::Exact("/api/v1/items".into());
        assert_eq!(rewrite_path(&uri, &exact, Some("/all")), "/all?page=2");
    }

    #[test]
    fn prefix_rewrite_of_path_separated_prefix_and_regex_routes() {
        // Envoy swaps the separated prefix, and the whole path of a regex route.
        let uri: Uri = "/api/items?page=2".parse().unwrap();
        let separated = PathMatch::PathSeparatedPrefix("/api".into());
        assert_eq!(
            rewrite_path(&uri, &separated, Some("/v2")),
            "/v2/items?page=2"
        );
        let re = crate::xds::convert::compile_whole_match("/api/.*").unwrap();
        let regex = PathMatch::Regex(re);
        assert_eq!(rewrite_path(&uri, &regex, Some("/all")), "/all?page=2");
    }
}

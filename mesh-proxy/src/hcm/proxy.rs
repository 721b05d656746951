//! One request through the HTTP connection manager, top to bottom (HCM ─►
//! **request** ─► filters ─► router ─► attempts ─► cluster): the request
//! head prepared, the route chosen, the HTTP filters run in order (fault,
//! CORS, router), the route's action taken, the response shaped, and the
//! access log written when the response is done.
//!
//! Config choice: the listener and its filter chain come from the snapshot
//! loaded when the connection was accepted; each request loads the current
//! snapshot once and takes its route configuration (RDS), clusters and
//! endpoints from that one copy. So a route change applies to keep-alive
//! connections at their next request (as in Envoy), while a request already
//! in flight keeps the snapshot it started with.

// A local reply is this path's ordinary other outcome, made at most once
// per request; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue, LOCATION, SERVER};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::authority::authority;
use super::body::{Replay, Tail, TailDone, TailEnd};
use super::cors::{self, Cors};
use super::exchange::Exchange;
use super::fault;
use super::forward::forward_request;
use super::forwarded;
use super::headers;
use super::mutate;
use super::path::{self, PathVerdict};
use super::redirect::{self, RequestUrl};
use super::reply::{self, LocalReply, ResponseBody};
use super::router::{select_route, select_virtual_host};
use super::upgrade;
use super::upstream;
use crate::access_log::{self, LogContext, StreamInfo};
use crate::error::ProxyError;
use crate::model::{
    AbortStatus, HttpFilter, RouteAction, RouteConfig, RouteSource, ServerHeader, TlsRequirement,
};

pub use super::exchange::HttpConnection;
pub use super::path::rewrite_path;

/// Serve one request; failures become Envoy-like local replies.
/// `drain` is the connection's: upgraded connections it splices end
/// (after a grace) when it fires.
pub async fn handle(
    conn: Arc<HttpConnection>,
    drain: CancellationToken,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let (mut parts, body) = request.into_parts();
    // As Envoy after the original_dst filter: the local address is where
    // the client meant to connect.
    let mut info = StreamInfo::new(conn.downstream.original_dst, conn.downstream.peer);
    info.protocol = Some(protocol(parts.version));
    info.server_name = conn
        .downstream
        .tls
        .as_ref()
        .and_then(|t| t.server_name.clone());
    let options = conn.hcm.options.clone();
    let client = forwarded::prepare(&mut parts.headers, &options, &conn.downstream);
    info.downstream_remote = client.address;
    let logged = (!conn.hcm.access_log.is_empty()).then(|| upstream::clone_head(&parts));
    let mut exchange = Exchange {
        conn: &conn,
        info,
        client,
        grpc: reply::is_grpc(&parts.headers),
        logged,
        cors: None,
        fault: None,
        body_stats: None,
        drain,
    };
    let request_id = options
        .always_set_request_id_in_response
        .then(|| parts.headers.get(&headers::X_REQUEST_ID).cloned())
        .flatten();
    let result = run(&mut exchange, parts, body).await;
    let mut response = match result {
        Ok(response) => response,
        Err(reply) => local(&mut exchange, reply),
    };
    let headers = response.headers_mut();
    if let Some(id) = request_id {
        headers.insert(headers::X_REQUEST_ID.clone(), id);
    }
    match options.server_header {
        ServerHeader::Overwrite => {
            if let Ok(v) = HeaderValue::from_str(&options.server_name) {
                headers.insert(SERVER, v);
            }
        }
        ServerHeader::AppendIfAbsent if !headers.contains_key(SERVER) => {
            if let Ok(v) = HeaderValue::from_str(&options.server_name) {
                headers.insert(SERVER, v);
            }
        }
        _ => {}
    }
    Ok(finish(exchange, response))
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// A local reply as the client gets it, recorded for the access log.
fn local(exchange: &mut Exchange<'_>, reply: LocalReply) -> Response<ResponseBody> {
    exchange.info.flags.insert_code(reply.flag);
    exchange.info.details = Some(reply.details.to_owned());
    if let Some(reason) = &reply.reason {
        exchange.info.termination_details = Some(reason.clone());
        tracing::debug!(status = reply.status.as_u16(), flags = %exchange.info.flags, %reason, "local reply");
    }
    reply.into_response(exchange.grpc)
}

/// Wrap the response so that the access log is written when it is done.
fn finish(exchange: Exchange<'_>, response: Response<ResponseBody>) -> Response<ResponseBody> {
    let Exchange {
        conn,
        mut info,
        logged,
        cors,
        fault,
        body_stats,
        ..
    } = exchange;
    let (mut parts, body) = response.into_parts();
    if let Some(cors) = cors {
        for (name, value) in cors {
            if let Some(name) = name {
                parts.headers.insert(name, value);
            }
        }
    }
    info.response_code = Some(parts.status.as_u16());
    info.first_byte = Some(info.elapsed());
    let job = (!conn.hcm.access_log.is_empty()).then(|| {
        Box::new(LogJob {
            conn: conn.clone(),
            info,
            request: logged,
            response: parts.headers.clone(),
            body: body_stats,
            _fault: fault,
        }) as Box<dyn TailDone>
    });
    let body = match job {
        Some(job) => Tail::new(body, None, None, Some(job)).boxed_unsync(),
        None => body,
    };
    Response::from_parts(parts, body)
}

/// The access log line of one request, written when its body is done.
struct LogJob {
    conn: Arc<HttpConnection>,
    info: StreamInfo,
    request: Option<Parts>,
    response: HeaderMap,
    body: Option<Replay>,
    _fault: Option<fault::ActiveFault>,
}

impl TailDone for LogJob {
    fn done(mut self: Box<Self>, bytes: u64, trailers: Option<&HeaderMap>, end: TailEnd<'_>) {
        let info = &mut self.info;
        info.bytes_sent = bytes;
        info.ended = Some(info.elapsed());
        if let Some(body) = &self.body {
            info.bytes_received = body.received();
            info.request_done = body.done_at().map(|at| at.duration_since(info.started));
        }
        match end {
            TailEnd::Complete => {}
            TailEnd::Cut(super::body::TailError::Timeout) => info.flags.insert_code("UT"),
            TailEnd::Cut(super::body::TailError::Idle) => info.flags.insert_code("SI"),
            TailEnd::Cut(super::body::TailError::Upstream(_)) => info.flags.insert_code("UR"),
            TailEnd::Dropped => info.flags.insert_code("DC"),
        }
        access_log::log(
            &self.conn.data_plane.access_logs,
            &self.conn.hcm.access_log,
            &self.info,
            self.request.as_ref(),
            Some(&self.response),
            trailers,
        );
    }
}

/// Everything from the request head to the response head.
async fn run(
    x: &mut Exchange<'_>,
    mut parts: Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, LocalReply> {
    let conn = x.conn;
    let options = conn.hcm.options.clone();
    if parts.version == Version::HTTP_10 && !options.accept_http_10 {
        return Err(LocalReply::from_error(&ProxyError::Http10NotAccepted));
    }
    match path::normalize(&parts.uri, &options) {
        PathVerdict::Serve(None) => {}
        PathVerdict::Serve(Some(new)) => parts.uri = with_path(&parts.uri, &new)?,
        PathVerdict::Reject => {
            return Err(LocalReply::from_error(&ProxyError::InvalidPath(
                "escaped slashes".into(),
            )))
        }
        PathVerdict::Redirect(new) => {
            let mut reply = LocalReply::plain(StatusCode::TEMPORARY_REDIRECT, "", "path_redirect");
            if let Ok(v) = HeaderValue::from_str(&new) {
                reply.headers.insert(LOCATION, v);
            }
            return Err(reply);
        }
    }
    let snapshot = conn.data_plane.store.load();
    let config: &RouteConfig = match &conn.hcm.routes {
        RouteSource::Rds(name) => snapshot.route_configs.get(name).ok_or_else(|| {
            LocalReply::from_error(&ProxyError::RouteConfigNotFound(name.clone()))
        })?,
        RouteSource::Inline(config) => config,
    };
    let authority = authority(&parts)
        .ok_or_else(|| LocalReply::from_error(&ProxyError::MissingAuthority))?
        .to_owned();
    let vhost = select_virtual_host(config, &authority)
        .ok_or_else(|| LocalReply::from_error(&ProxyError::NoVirtualHost(authority.clone())))?;
    let upgrade = upgrade::requested(&parts);
    if parts.method == Method::CONNECT && upgrade.as_deref() == Some("connect") {
        return Err(LocalReply::from_error(&ProxyError::NoRouteMatch(
            vhost.name.clone(),
        )));
    }
    let route = select_route(vhost, &parts)
        .ok_or_else(|| LocalReply::from_error(&ProxyError::NoRouteMatch(vhost.name.clone())))?;
    x.info.route_name = Some(route.name.clone());
    tracing::trace!(vhost = %vhost.name, route = %route.name, "matched");
    let rule = route
        .rule
        .clone()
        .unwrap_or_else(|| format!("route {:?}", route.name));

    for filter in &conn.hcm.http_filters {
        match filter {
            HttpFilter::Fault(own) => {
                let config = route
                    .filter_overrides
                    .fault
                    .as_ref()
                    .or(vhost.filter_overrides.fault.as_ref())
                    .unwrap_or(own);
                let decided = fault::decide(config, &parts);
                x.fault = decided.active;
                if let Some(delay) = decided.delay {
                    x.info.flags.insert_code("DI");
                    tokio::time::sleep(delay).await;
                }
                if let Some(abort) = decided.abort {
                    let (status, grpc_status) = match abort {
                        AbortStatus::Http(s) => (s, None),
                        AbortStatus::Grpc(g) => (200, Some(g)),
                    };
                    return Err(LocalReply::from_error(&ProxyError::FaultAbort {
                        status,
                        grpc_status,
                        rule: rule.clone(),
                    }));
                }
            }
            HttpFilter::Cors => {
                let policy = route
                    .filter_overrides
                    .cors
                    .as_deref()
                    .or(vhost.filter_overrides.cors.as_deref());
                match cors::decode(policy, &parts) {
                    Cors::Pass => {}
                    Cors::Preflight(reply) => return Err(reply),
                    Cors::Response(headers) => x.cors = Some(headers),
                }
            }
            HttpFilter::Router => break,
        }
    }

    // The router.
    let tls_required = match vhost.require_tls {
        TlsRequirement::None => false,
        TlsRequirement::ExternalOnly => !x.client.internal,
        TlsRequirement::All => true,
    };
    if tls_required && conn.downstream.tls.is_none() {
        let location = redirect::location(
            &crate::model::Redirect {
                scheme: Some("https".into()),
                host: None,
                port: None,
                path: None,
                status: 301,
                strip_query: false,
            },
            &route.matcher.path,
            url(&parts, &authority, conn),
        );
        let mut reply = LocalReply::plain(StatusCode::MOVED_PERMANENTLY, "", "ssl_redirect");
        if let Ok(v) = HeaderValue::from_str(&location) {
            reply.headers.insert(LOCATION, v);
        }
        return Err(reply);
    }
    let levels = |arm| {
        mutate::levels(
            config.most_specific_header_mutations_wins,
            &config.headers,
            &vhost.headers,
            &route.headers,
            arm,
        )
    };
    match &route.action {
        RouteAction::DirectResponse { status, body } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut reply =
                LocalReply::plain(status, body.clone().unwrap_or_default(), "direct_response");
            reply.reason = Some(match &route.mesh_reason {
                Some(reason) => {
                    reply.flag = "NR";
                    format!("NR blocked: {reason}")
                }
                None => format!("direct response: {rule}"),
            });
            let mut response = local(x, reply);
            mutate::apply_response(
                &levels(None),
                response.headers_mut(),
                &log_ctx(x, &parts, None),
            );
            Ok(response)
        }
        RouteAction::Redirect(r) => {
            let location =
                redirect::location(r, &route.matcher.path, url(&parts, &authority, conn));
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            let mut reply = LocalReply::plain(status, "", "redirect");
            reply.reason = Some(format!("redirect: {rule}"));
            if let Ok(v) = HeaderValue::from_str(&location) {
                reply.headers.insert(LOCATION, v);
            }
            let mut response = local(x, reply);
            mutate::apply_response(
                &levels(None),
                response.headers_mut(),
                &log_ctx(x, &parts, None),
            );
            Ok(response)
        }
        RouteAction::Forward(forward) => {
            forward_request(
                x, &snapshot, config, vhost, route, forward, &rule, &authority, upgrade, parts,
                body,
            )
            .await
        }
    }
}

fn with_path(uri: &Uri, path_and_query: &str) -> Result<Uri, LocalReply> {
    let mut builder = Uri::builder();
    if let Some(scheme) = uri.scheme() {
        builder = builder.scheme(scheme.clone());
    }
    if let Some(authority) = uri.authority() {
        builder = builder.authority(authority.clone());
    }
    builder
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| LocalReply::from_error(&ProxyError::InvalidPath(e.to_string())))
}

fn url<'a>(parts: &'a Parts, authority: &'a str, conn: &HttpConnection) -> RequestUrl<'a> {
    let scheme = if conn.downstream.tls.is_some() {
        "https"
    } else {
        "http"
    };
    RequestUrl {
        scheme,
        forwarded_proto: parts
            .headers
            .get(&forwarded::X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(scheme),
        authority,
        uri: &parts.uri,
    }
}

fn log_ctx<'a>(
    x: &'a Exchange<'_>,
    parts: &'a Parts,
    response: Option<&'a HeaderMap>,
) -> LogContext<'a> {
    LogContext {
        info: &x.info,
        request: Some(parts),
        response,
        trailers: None,
    }
}

//! The router filter's forward action for one request (filters ─► router
//! ─► **forward** ─► attempts ─► cluster): choose the cluster (a weighted
//! arm), build the upstream request head (rewrites, header mutations,
//! upgrade), set its deadlines (route timeout, `grpc-timeout`, stream
//! duration, request timeout), start the mirrors, run the attempts, and
//! shape the response head on its way back.

// A local reply is this path's ordinary other outcome, made at most once
// per request; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, HOST, SET_COOKIE};
use http::request::Parts;
use http::{Method, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::body::{Replay, Tail, DEFAULT_BUFFER_LIMIT};
use super::exchange::Exchange;
use super::hash;
use super::headers::{self, X_ENVOY_ATTEMPT_COUNT, X_ENVOY_ORIGINAL_PATH, X_FORWARDED_HOST};
use super::mirror;
use super::mutate;
use super::path::rewrite_path_with;
use super::reply::{self, LocalReply, ResponseBody};
use super::upgrade;
use super::upstream::{self, Attempts};
use crate::access_log::LogContext;
use crate::cluster::PickContext;
use crate::error::ProxyError;
use crate::model::{ClusterTarget, Forward, Route, RouteConfig, Snapshot, VirtualHost};

/// Resolves when `request_timeout` runs out before the client's request
/// was read whole (with its limit); never otherwise.
async fn request_incomplete(
    body: &Replay,
    deadline: Option<(Duration, tokio::time::Instant)>,
) -> Duration {
    let Some((limit, at)) = deadline else {
        return std::future::pending().await;
    };
    tokio::time::sleep_until(at).await;
    if body.done_at().is_some() {
        return std::future::pending().await;
    }
    limit
}

/// How long the router waits for the first frame of an HTTP/1 request
/// body before contacting the upstream ([`Replay::prefetch`]): long enough
/// for a body sent with its head, short enough not to delay a client that
/// sends its body later.
const PREFETCH_WAIT: Duration = Duration::from_millis(10);

/// Choose one arm of a weighted target by weight; its index.
fn choose_arm(target: &ClusterTarget) -> Option<usize> {
    use rand::Rng;
    let ClusterTarget::Weighted(arms) = target else {
        return None;
    };
    let total: u64 = arms.iter().map(|a| u64::from(a.weight)).sum();
    if total == 0 {
        return (!arms.is_empty()).then_some(0);
    }
    let mut point = rand::rng().random_range(0..total);
    for (i, arm) in arms.iter().enumerate() {
        let weight = u64::from(arm.weight);
        if point < weight {
            return Some(i);
        }
        point -= weight;
    }
    Some(arms.len() - 1)
}

/// The deadline of a gRPC request from `grpc-timeout` (`1S`, `200m`...).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The route timeout of this request: `timeout`, or for gRPC with the
/// deprecated `max_grpc_timeout`, `grpc-timeout` capped by it.
fn route_timeout(forward: &Forward, grpc: bool, headers: &HeaderMap) -> Option<Duration> {
    match forward.max_grpc_timeout {
        Some(max) if grpc => {
            let asked = grpc_timeout(headers)
                .map(|t| t.saturating_sub(forward.grpc_timeout_offset.unwrap_or_default()));
            match (asked, max.is_zero()) {
                (Some(t), true) => Some(t),
                (Some(t), false) => Some(t.min(max)),
                (None, true) => None,
                (None, false) => Some(max),
            }
            .filter(|t| !t.is_zero())
        }
        _ => forward.timeout,
    }
}

/// Forward one request by `forward`; the response head to relay, or the
/// local reply to make.
#[allow(clippy::too_many_arguments)]
pub async fn forward_request(
    x: &mut Exchange<'_>,
    snapshot: &Arc<Snapshot>,
    config: &RouteConfig,
    vhost: &VirtualHost,
    route: &Route,
    forward: &Forward,
    rule: &str,
    authority: &str,
    upgrade: Option<String>,
    mut parts: Parts,
    body: Incoming,
) -> Result<Response<ResponseBody>, LocalReply> {
    let conn = x.conn;
    let options = &conn.hcm.options;
    let started = tokio::time::Instant::now();
    // Upgrades: allowed by the route's override, else by the HCM.
    let mut downstream_upgrade: Option<OnUpgrade> = None;
    if let Some(kind) = &upgrade {
        let allowed = forward
            .upgrades
            .iter()
            .find(|u| &u.upgrade_type == kind)
            .map(|u| u.enabled)
            .unwrap_or_else(|| options.upgrades.contains(kind));
        let h2_connect = parts.method == Method::CONNECT;
        if !allowed || (h2_connect && !options.http2_allow_connect) {
            return Err(LocalReply::from_error(&ProxyError::UpgradeFailed(
                kind.clone(),
            )));
        }
        downstream_upgrade = parts.extensions.remove::<OnUpgrade>();
    }

    let arm_index = choose_arm(&forward.target);
    let cluster_name = match (&forward.target, arm_index) {
        (ClusterTarget::Cluster(name), _) => name.as_str(),
        (ClusterTarget::Weighted(arms), Some(i)) => arms[i].name.as_str(),
        (ClusterTarget::Weighted(_), None) => "",
    };
    let arm = arm_index.and_then(|i| forward.arms.get(i));
    let Some(cluster) = snapshot.clusters.get(cluster_name) else {
        let mut reply =
            LocalReply::from_error(&ProxyError::ClusterNotFound(cluster_name.to_owned()));
        reply.status =
            StatusCode::from_u16(forward.cluster_not_found_status).unwrap_or(reply.status);
        reply.reason = reply.reason.map(|r| format!("{r}: {rule}"));
        return Err(reply);
    };
    let levels = mutate::levels(
        config.most_specific_header_mutations_wins,
        &config.headers,
        &vhost.headers,
        &route.headers,
        arm.map(|a| &a.headers),
    );

    // The upstream request head.
    let hash = hash::compute(&forward.hash_policy, &parts, x.client.address);
    let new_path = rewrite_path_with(
        &parts.uri,
        &route.matcher.path,
        forward.prefix_rewrite.as_deref(),
        forward.regex_rewrite.as_ref(),
    );
    let original = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    if new_path != original {
        if let Ok(v) = HeaderValue::from_str(&original) {
            parts.headers.insert(X_ENVOY_ORIGINAL_PATH.clone(), v);
        }
    }
    let host = arm
        .and_then(|a| a.host_rewrite.as_deref())
        .or(forward.host_rewrite.as_deref())
        .unwrap_or(authority)
        .to_owned();
    if host != authority && forward.append_x_forwarded_host {
        let value = match parts
            .headers
            .get(&X_FORWARDED_HOST)
            .and_then(|v| v.to_str().ok())
        {
            Some(existing) => format!("{existing},{authority}"),
            None => authority.to_owned(),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(X_FORWARDED_HOST.clone(), v);
        }
    }
    headers::remove_hop_by_hop(&mut parts.headers);
    if let Some(kind) = &upgrade {
        upgrade::restore(&mut parts, kind);
    }
    if !levels.is_empty() {
        let before = upstream::clone_head(&parts);
        let ctx = LogContext {
            info: &x.info,
            request: Some(&before),
            response: None,
            trailers: None,
        };
        mutate::apply_request(&levels, &mut parts.headers, &ctx);
    }
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(host.as_str())
        .path_and_query(new_path.as_str())
        .build()
        .map_err(|e| LocalReply::from_error(&ProxyError::InvalidRewrite(e.to_string())))?;
    // The upstream protocol: the cluster's, or the downstream request's
    // with `use_downstream_protocol_config`; upgrades are HTTP/1.1.
    if cluster.upstream_http2(parts.version) && upgrade.is_none() {
        // `:authority` carries it; a duplicate Host could disagree.
        parts.version = Version::HTTP_2;
        parts.headers.remove(HOST);
    } else {
        parts.version = Version::HTTP_11;
        let value = HeaderValue::from_str(&host)
            .map_err(|e| LocalReply::from_error(&ProxyError::InvalidRewrite(e.to_string())))?;
        parts.headers.insert(HOST, value);
    }

    // Timeouts.
    let timeout = route_timeout(forward, x.grpc, &parts.headers);
    let mut deadline = timeout.map(|t| started + t);
    let stream_limit = if forward.grpc_timeout_header_max.is_some() {
        let max = forward.grpc_timeout_header_max.unwrap_or_default();
        grpc_timeout(&parts.headers)
            .map(|t| t.saturating_sub(forward.grpc_timeout_header_offset.unwrap_or_default()))
            .map(|t| if max.is_zero() { t } else { t.min(max) })
            .or(forward.max_stream_duration)
    } else {
        forward.max_stream_duration.or(options.max_stream_duration)
    };
    let stream_deadline = stream_limit.map(|t| started + t);
    if let Some(s) = stream_deadline {
        deadline = Some(deadline.map_or(s, |d| d.min(s)));
    }

    let policy = forward
        .retry_policy
        .as_deref()
        .or(vhost.retry_policy.as_deref())
        .filter(|p| upgrade.is_none() && super::retry::request_allows(p, &parts));
    let limit = if policy.is_some() || !forward.mirrors.is_empty() {
        route
            .buffer_limit
            .or(vhost.buffer_limit)
            .unwrap_or(DEFAULT_BUFFER_LIMIT)
    } else {
        0
    };
    let replay = Replay::new(body, limit);
    x.body_stats = Some(replay.clone());
    // A body that is broken from its first byte (bad chunked framing) is
    // the client's error: refuse it before any upstream sees the request.
    if parts.version != Version::HTTP_2 && replay.done_at().is_none() {
        replay.prefetch(PREFETCH_WAIT).await;
    }
    if replay.failed() {
        return Err(LocalReply::from_error(&ProxyError::DownstreamProtocol(
            "malformed request body".into(),
        )));
    }
    let pick = PickContext {
        original_dst: conn.downstream.original_dst,
        listener: conn.downstream.local,
        hash: hash.hash,
        avoid: &[],
    };
    if !forward.mirrors.is_empty() {
        mirror::spawn(
            &conn.data_plane,
            snapshot,
            &forward.mirrors,
            &parts,
            &host,
            &new_path,
            &replay,
            timeout,
            pick,
        );
    }
    let attempts = Attempts {
        data_plane: &conn.data_plane,
        snapshot,
        cluster,
        policy,
        pick,
        deadline,
        attempt_count_header: vhost.include_request_attempt_count,
        rule,
        timeout,
    };
    let idle = forward.idle_timeout.or(options.stream_idle_timeout);
    let request_deadline = options
        .request_timeout
        .map(|t| (t, tokio::time::Instant::from_std(x.info.started) + t));
    let send = upstream::send(attempts, &parts, &replay, &mut x.info);
    let waited = async {
        match idle.filter(|_| deadline.is_none()) {
            // Waiting for the answer counts as idle time, but request body
            // bytes still arriving are activity (a slow upload is not idle).
            Some(idle) => {
                tokio::pin!(send);
                let mut seen = replay.received();
                loop {
                    match tokio::time::timeout(idle, send.as_mut()).await {
                        Ok(sent) => break sent,
                        Err(_) => {
                            let now = replay.received();
                            if now != seen {
                                seen = now;
                                continue;
                            }
                            break Err(ProxyError::StreamIdleTimeout {
                                rule: format!(
                                    "{rule} idleTimeout={}",
                                    upstream::fmt_duration(idle)
                                ),
                                request_complete: replay.done_at().is_some(),
                            }
                            .into());
                        }
                    }
                }
            }
            None => send.await,
        }
    };
    let sent = tokio::select! {
        sent = waited => sent,
        limit = request_incomplete(&replay, request_deadline) => Err(ProxyError::RequestTimeout {
            rule: format!("requestTimeout={}", upstream::fmt_duration(limit)),
        }
        .into()),
    };
    let answer = match sent {
        Ok(answer) => answer,
        Err(failed) => {
            let mut error = failed.error;
            if let (ProxyError::UpstreamTimeout { .. }, Some(s)) = (&error, stream_deadline) {
                if deadline == Some(s) && timeout.is_none_or(|t| started + t > s) {
                    error = ProxyError::MaxStreamDuration {
                        rule: format!(
                            "{rule} maxStreamDuration={}",
                            upstream::fmt_duration(s - started)
                        ),
                        request_complete: replay.done_at().is_some(),
                    };
                }
            }
            if replay.failed() && !matches!(error, ProxyError::RequestTimeout { .. }) {
                // The upstream failed because the client's body broke.
                error = ProxyError::DownstreamProtocol("malformed request body".into());
            }
            let mut reply = LocalReply::from_error(&error);
            if let Some(exhausted) = failed.exhausted {
                reply.reason = Some(exhausted);
            }
            return Err(reply);
        }
    };
    let upstream::Answer {
        mut response,
        endpoint,
        exhausted,
        sent_at,
    } = answer;
    drop(endpoint);
    x.info.details = Some("via_upstream".into());
    // Known when the pool's connector reports the connection's addresses.
    x.info.upstream_local = response
        .extensions()
        .get::<hyper_util::client::legacy::connect::HttpInfo>()
        .map(|info| info.local_addr());

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let (Some(down), Some(up)) = (
            downstream_upgrade,
            response.extensions_mut().remove::<OnUpgrade>(),
        ) {
            let drain = x.drain.clone();
            tokio::spawn(async move {
                let draining = async {
                    drain.cancelled().await;
                    tokio::time::sleep(upgrade::DRAIN_GRACE).await;
                };
                tokio::select! {
                    spliced = upgrade::splice(down, up) => {
                        if let Some((sent, received)) = spliced {
                            tracing::debug!(sent, received, "upgrade closed");
                        }
                    }
                    () = draining => tracing::debug!("upgrade drained"),
                }
            });
        }
    }
    let h2_client = x.info.protocol == Some("HTTP/2");
    let (mut head, upstream_body) = response.into_parts();
    // The client keeps the protocol it speaks: an HTTP/1.0 upstream's
    // answer goes out as HTTP/1.1 (hyper would otherwise answer 1.0 and
    // close the client's keep-alive connection).
    head.version = Version::HTTP_11;
    let switching = head.status == StatusCode::SWITCHING_PROTOCOLS;
    let trailer = head.headers.get(http::header::TRAILER).cloned();
    headers::remove_hop_by_hop(&mut head.headers);
    if switching {
        upgrade::downstream_headers(&mut head.headers, h2_client);
        if let Some(kind) = &upgrade {
            if !h2_client {
                if let Ok(v) = HeaderValue::from_str(kind) {
                    head.headers.insert(http::header::UPGRADE, v);
                }
            } else {
                head.status = StatusCode::OK;
            }
        }
    }
    if let Some(trailer) = trailer {
        head.headers.insert(http::header::TRAILER, trailer);
    } else if !h2_client && reply::is_grpc(&head.headers) {
        // An HTTP/1.1 client needs the trailers announced to get them.
        head.headers.insert(
            http::header::TRAILER,
            HeaderValue::from_static("grpc-status, grpc-message, grpc-status-details-bin"),
        );
    }
    head.headers.insert(
        headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
        HeaderValue::from(sent_at.elapsed().as_millis() as u64),
    );
    if vhost.include_attempt_count_in_response {
        head.headers.insert(
            X_ENVOY_ATTEMPT_COUNT.clone(),
            HeaderValue::from(x.info.attempts),
        );
    }
    if let Some(cookie) = hash.set_cookie {
        head.headers.append(SET_COOKIE, cookie);
    }
    if let Some(reason) = exhausted {
        head.headers
            .insert(reply::REASON.clone(), reply::header_value(&reason));
    }
    {
        let logged = x.logged.as_ref().unwrap_or(&parts);
        let ctx = LogContext {
            info: &x.info,
            request: Some(logged),
            response: Some(&head.headers),
            trailers: None,
        };
        let mut headers = head.headers.clone();
        mutate::apply_response(&levels, &mut headers, &ctx);
        head.headers = headers;
    }
    let idle = match (idle, policy.and_then(|p| p.per_try_idle_timeout)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let body = Tail::new(upstream_body, deadline, idle, None).boxed_unsync();
    Ok(Response::from_parts(head, body))
}

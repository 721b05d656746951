//! The router filter's upstream work for one request (HCM ─► router ─►
//! **attempts** ─► cluster ─► upstream pool): pick an endpoint (avoiding
//! those tried), send, and retry by the route's policy with Envoy's
//! backoff, within the per-try and whole-request timeouts. Every attempt's
//! outcome is reported to the cluster stage (outlier detection), and every
//! retry is admitted by its `max_retries` circuit breaker first.

use std::net::SocketAddr;
use std::time::Duration;

use crate::upstream::pool::UpstreamBody;
use http::header::HeaderValue;
use http::request::Parts;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::body::Replay;
use super::headers::{X_ENVOY_ATTEMPT_COUNT, X_ENVOY_EXPECTED_RQ_TIMEOUT_MS};
use super::retry::{self, Attempt};
use crate::access_log::StreamInfo;
use crate::cluster::{Outcome, PickContext, Picked};
use crate::data_plane::DataPlane;
use crate::error::ProxyError;
use crate::model::{Cluster, RetryPolicy, Snapshot};

/// What the attempts need besides the request.
#[derive(Debug)]
pub struct Attempts<'a> {
    /// Pools and LB state.
    pub data_plane: &'a DataPlane,
    /// The request's snapshot.
    pub snapshot: &'a Snapshot,
    /// The chosen cluster.
    pub cluster: &'a Cluster,
    /// The retry policy, if the request may be retried.
    pub policy: Option<&'a RetryPolicy>,
    /// Connection addresses and the request's hash key.
    pub pick: PickContext<'a>,
    /// Whole-request deadline (the route timeout).
    pub deadline: Option<Instant>,
    /// Send `x-envoy-attempt-count` upstream.
    pub attempt_count_header: bool,
    /// The route's rule and timeout, for reasons.
    pub rule: &'a str,
    /// The route timeout, for reasons.
    pub timeout: Option<Duration>,
}

/// The response the attempts ended with.
#[derive(Debug)]
pub struct Answer {
    /// The upstream's response (headers; the body streams on).
    pub response: Response<UpstreamBody>,
    /// The endpoint it came from, busy until the headers are relayed.
    pub endpoint: Picked,
    /// Set when this was a retriable answer and no retry was left:
    /// the `x-mesh-reason` text.
    pub exhausted: Option<String>,
    /// When the answering attempt was sent.
    pub sent_at: std::time::Instant,
}

/// `1s`, `250ms`, `1.5s`: a duration as Istio's config writes it.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Send `head` with `body` until an answer is final.
pub async fn send(
    a: Attempts<'_>,
    head: &Parts,
    body: &Replay,
    info: &mut StreamInfo,
) -> Result<Answer, Failed> {
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut retries = 0u32;
    let per_try = a
        .policy
        .and_then(|p| match (p.per_try_timeout, p.per_try_idle_timeout) {
            (Some(t), Some(i)) => Some(t.min(i)),
            (t, i) => t.or(i),
        });
    let timed_out = || ProxyError::UpstreamTimeout {
        rule: match a.timeout {
            Some(t) => format!("{} timeout={}", a.rule, fmt_duration(t)),
            None => a.rule.to_owned(),
        },
    };
    loop {
        let _retry_guard = match retries {
            0 => None,
            _ => Some(a.data_plane.clusters.begin_retry(a.cluster)?),
        };
        let endpoint = pick(&a, &tried).await?;
        info.upstream_host = Some(endpoint.address);
        info.upstream_cluster = Some(a.cluster.name.clone());
        info.attempts += 1;
        tried.push(endpoint.address);

        let mut parts = clone_head(head);
        if a.attempt_count_header {
            parts.headers.insert(
                X_ENVOY_ATTEMPT_COUNT.clone(),
                HeaderValue::from(info.attempts),
            );
        }
        let attempt_deadline = match (per_try, a.deadline) {
            (Some(t), Some(d)) => Some(d.min(Instant::now() + t)),
            (Some(t), None) => Some(Instant::now() + t),
            (None, d) => d,
        };
        // As Envoy tells the upstream how long it will wait for this try.
        if let Some(at) = attempt_deadline {
            let ms = at.saturating_duration_since(Instant::now()).as_millis() as u64;
            if ms > 0 {
                parts.headers.insert(
                    X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(),
                    HeaderValue::from(ms),
                );
            }
        }
        let request = Request::from_parts(parts, body.reader().boxed_unsync());
        let sent_at = std::time::Instant::now();
        let send = a.data_plane.pool.send(&endpoint, a.cluster, request);
        let result = match attempt_deadline {
            Some(at) => tokio::time::timeout_at(at, send).await.ok(),
            None => Some(send.await),
        };
        let left = a.policy.is_some_and(|p| retries < p.num_retries) && body.replayable();
        let (attempt, last) = match &result {
            None => {
                endpoint.report(Outcome::Timeout);
                if a.deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(timed_out().into());
                }
                (Attempt::PerTryTimeout, "per-try timeout".to_owned())
            }
            Some(Err(error)) => {
                match error {
                    // A circuit breaker is the cluster's limit, not the
                    // endpoint failing: outlier detection does not hear of
                    // it (as in Envoy).
                    ProxyError::Overflow { .. } => {}
                    ProxyError::UpstreamConnect { .. } => endpoint.report(Outcome::ConnectFailure),
                    _ => endpoint.report(Outcome::Reset),
                }
                info.upstream_failure = Some(error.to_string());
                (Attempt::Failed(error), error.reason())
            }
            Some(Ok(response)) => {
                let status = response.status().as_u16();
                endpoint.report(Outcome::Status(status));
                let attempt = Attempt::Response {
                    status,
                    headers: response.headers(),
                };
                (attempt, status.to_string())
            }
        };
        let retriable = a.policy.is_some_and(|p| retry::retriable(p, attempt));
        if let (true, true, Some(policy)) = (retriable, left, a.policy) {
            retries += 1;
            drop(result);
            if !retry::wait(policy, retries, a.deadline).await {
                return Err(timed_out().into());
            }
            continue;
        }
        // A request whose body did not fit was never going to be retried:
        // its answer stands as it is, as in Envoy.
        let exhausted = (retriable && body.replayable()).then(|| {
            format!(
                "URX retries exhausted: {retries} retries, last {last}: {}",
                a.rule
            )
        });
        if exhausted.is_some() {
            info.flags.insert_code("URX");
        }
        return match result {
            None => Err(Failed {
                error: ProxyError::UpstreamPerTryTimeout {
                    rule: format!(
                        "{} perTryTimeout={}",
                        a.rule,
                        per_try.map_or_else(String::new, fmt_duration)
                    ),
                },
                exhausted,
            }),
            Some(Err(error)) => Err(Failed { error, exhausted }),
            Some(Ok(response)) => Ok(Answer {
                response,
                endpoint,
                exhausted,
                sent_at,
            }),
        };
    }
}

/// Why the attempts ended without an answer to relay.
#[derive(Debug)]
pub struct Failed {
    /// The last attempt's failure.
    pub error: ProxyError,
    /// Set when it was retriable and no retry was left: the
    /// `x-mesh-reason` text.
    pub exhausted: Option<String>,
}

impl From<ProxyError> for Failed {
    fn from(error: ProxyError) -> Self {
        Self {
            error,
            exhausted: None,
        }
    }
}

/// Pick an endpoint, picking again (up to the policy's
/// `host_selection_retry_max_attempts`) while `previous_hosts` rejects it.
async fn pick(a: &Attempts<'_>, tried: &[SocketAddr]) -> Result<Picked, ProxyError> {
    let avoid = a.policy.is_some_and(|p| p.previous_hosts);
    let ctx = PickContext {
        avoid: if avoid { tried } else { &[] },
        ..a.pick
    };
    let attempts = a.policy.map_or(1, |p| p.host_selection_max_attempts.max(1));
    let mut picked = a
        .data_plane
        .clusters
        .pick(a.snapshot, a.cluster, &ctx)
        .await?;
    for _ in 0..attempts {
        if !avoid || !tried.contains(&picked.address) {
            break;
        }
        picked = a
            .data_plane
            .clusters
            .pick(a.snapshot, a.cluster, &ctx)
            .await?;
    }
    Ok(picked)
}

/// A copy of a request head (extensions are not carried upstream, except
/// the extended CONNECT protocol).
pub fn clone_head(head: &Parts) -> Parts {
    let mut request = Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers.clone();
    if let Some(protocol) = head.extensions.get::<hyper::ext::Protocol>() {
        request.extensions_mut().insert(protocol.clone());
    }
    request.into_parts().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_istio_writes_them() {
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    }
}

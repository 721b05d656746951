//! The router's retry decisions (`retry_policy` of the route, else of the
//! virtual host): which attempt outcomes `retry_on` retries, whether the
//! request may be retried at all, and Envoy's jittered exponential backoff.

use std::time::Duration;

use http::request::Parts;
use http::HeaderMap;
use rand::Rng;

use super::router::{header_map_matches, header_matches};
use crate::error::ProxyError;
use crate::model::RetryPolicy;

/// How one attempt ended, as the retry policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Attempt<'a> {
    /// Response headers arrived.
    Response {
        /// Their status.
        status: u16,
        /// The headers (`grpc-status`, retriable headers).
        headers: &'a HeaderMap,
    },
    /// The upstream could not be reached or reset.
    Failed(&'a ProxyError),
    /// The attempt's `per_try_timeout` (or idle timeout) ran out.
    PerTryTimeout,
}

/// Whether the request may be retried at all: `retriable_request_headers`,
/// when given, must select it.
pub fn request_allows(policy: &RetryPolicy, request: &Parts) -> bool {
    policy.retriable_request_headers.is_empty()
        || policy
            .retriable_request_headers
            .iter()
            .any(|h| header_matches(h, request))
}

/// Why a reset happened, from the error's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    ConnectFailure,
    RefusedStream,
    BeforeRequest,
    Other,
}

fn reset_kind(error: &ProxyError) -> Option<Reset> {
    match error {
        ProxyError::UpstreamConnect { .. } => Some(Reset::ConnectFailure),
        ProxyError::UpstreamReset { source, .. } => {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(error) = next {
                if let Some(h2) = error.downcast_ref::<h2::Error>() {
                    if h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                        return Some(Reset::RefusedStream);
                    }
                }
                if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
                    if hyper.is_canceled() {
                        return Some(Reset::BeforeRequest);
                    }
                }
                next = error.source();
            }
            Some(Reset::Other)
        }
        _ => None,
    }
}

/// Whether `retry_on` retries this outcome.
pub fn retriable(policy: &RetryPolicy, attempt: Attempt<'_>) -> bool {
    let on = &policy.on;
    match attempt {
        Attempt::PerTryTimeout => on.server_error || on.gateway_error || on.reset,
        Attempt::Failed(error) => match reset_kind(error) {
            None => false,
            Some(kind) => {
                on.server_error
                    || on.gateway_error
                    || on.reset
                    || (on.connect_failure && kind == Reset::ConnectFailure)
                    || (on.refused_stream && kind == Reset::RefusedStream)
                    || (on.reset_before_request
                        && matches!(kind, Reset::BeforeRequest | Reset::ConnectFailure))
            }
        },
        Attempt::Response { status, headers } => {
            if on.server_error && status >= 500 {
                return true;
            }
            if on.gateway_error && matches!(status, 502..=504) {
                return true;
            }
            if on.retriable_4xx && status == 409 {
                return true;
            }
            if on.retriable_status_codes && policy.retriable_status_codes.contains(&status) {
                return true;
            }
            if on.envoy_ratelimited && headers.contains_key("x-envoy-ratelimited") {
                return true;
            }
            if on.retriable_headers
                && policy
                    .retriable_headers
                    .iter()
                    .any(|h| header_map_matches(h, headers))
            {
                return true;
            }
            match grpc_status(headers) {
                Some(1) => on.grpc_cancelled,
                Some(4) => on.grpc_deadline_exceeded,
                Some(8) => on.grpc_resource_exhausted,
                Some(13) => on.grpc_internal,
                Some(14) => on.grpc_unavailable,
                _ => false,
            }
        }
    }
}

/// `grpc-status` of a trailers-only response.
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// The wait before retry number `n` (1 for the first retry): a random
/// time in `[0, (2^n - 1) × base)`, capped at `max` (Envoy's jittered
/// exponential backoff).
pub fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let factor = (1u64 << n.clamp(1, 32)) - 1;
    let base = policy.backoff_base.as_nanos() as u64;
    let upper = base
        .saturating_mul(factor)
        .min(policy.backoff_max.as_nanos() as u64);
    if upper == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..upper))
}

/// Wait before retry number `n`; `false` when `deadline` came first (the
/// request's time is up).
pub async fn wait(policy: &RetryPolicy, n: u32, deadline: Option<tokio::time::Instant>) -> bool {
    let until = tokio::time::Instant::now() + backoff(policy, n);
    match deadline {
        Some(d) if until >= d => {
            tokio::time::sleep_until(d).await;
            false
        }
        _ => {
            tokio::time::sleep_until(until).await;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HeaderMatchKind, HeaderMatcher, RetryOn};

    fn policy(on: RetryOn) -> RetryPolicy {
        RetryPolicy {
            on,
            num_retries: 2,
            per_try_timeout: None,
            per_try_idle_timeout: None,
            retriable_status_codes: vec![418],
            retriable_headers: vec![HeaderMatcher::new(
                "x-retry-me",
                HeaderMatchKind::Present(true),
            )],
            retriable_request_headers: Vec::new(),
            previous_hosts: false,
            host_selection_max_attempts: 1,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        }
    }

    fn status(p: &RetryPolicy, code: u16, headers: &[(&str, &str)]) -> bool {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        retriable(
            p,
            Attempt::Response {
                status: code,
                headers: &map,
            },
        )
    }

    #[test]
    fn status_conditions() {
        let five = policy(RetryOn {
            server_error: true,
            ..RetryOn::default()
        });
        assert!(status(&five, 500, &[]) && status(&five, 503, &[]) && !status(&five, 404, &[]));
        let gateway = policy(RetryOn {
            gateway_error: true,
            ..RetryOn::default()
        });
        assert!(status(&gateway, 502, &[]) && !status(&gateway, 500, &[]));
        let four = policy(RetryOn {
            retriable_4xx: true,
            ..RetryOn::default()
        });
        assert!(status(&four, 409, &[]) && !status(&four, 400, &[]));
        let codes = policy(RetryOn {
            retriable_status_codes: true,
            ..RetryOn::default()
        });
        assert!(status(&codes, 418, &[]) && !status(&codes, 503, &[]));
        let limited = policy(RetryOn {
            envoy_ratelimited: true,
            ..RetryOn::default()
        });
        assert!(status(&limited, 429, &[("x-envoy-ratelimited", "true")]));
        assert!(!status(&limited, 429, &[]));
        let headers = policy(RetryOn {
            retriable_headers: true,
            ..RetryOn::default()
        });
        assert!(status(&headers, 200, &[("x-retry-me", "1")]));
        let grpc = policy(RetryOn {
            grpc_unavailable: true,
            grpc_cancelled: true,
            ..RetryOn::default()
        });
        assert!(status(&grpc, 200, &[("grpc-status", "14")]));
        assert!(status(&grpc, 200, &[("grpc-status", "1")]));
        assert!(!status(&grpc, 200, &[("grpc-status", "13")]));
    }

    #[test]
    fn retriable_request_headers_select_the_requests_retried() {
        let mut p = policy(RetryOn::default());
        let get = http::Request::get("/").body(()).unwrap().into_parts().0;
        let post = http::Request::post("/").body(()).unwrap().into_parts().0;
        assert!(request_allows(&p, &post), "no condition: every request");
        p.retriable_request_headers = vec![HeaderMatcher::new(
            ":method",
            HeaderMatchKind::Exact("GET".into()),
        )];
        assert!(request_allows(&p, &get));
        assert!(!request_allows(&p, &post));
    }

    #[test]
    fn failures_and_timeouts() {
        let connect = ProxyError::UpstreamConnect {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: "refused".into(),
        };
        let reset = ProxyError::UpstreamReset {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: "closed".into(),
        };
        let only_connect = policy(RetryOn {
            connect_failure: true,
            ..RetryOn::default()
        });
        assert!(retriable(&only_connect, Attempt::Failed(&connect)));
        assert!(!retriable(&only_connect, Attempt::Failed(&reset)));
        assert!(!retriable(&only_connect, Attempt::PerTryTimeout));
        let reset_policy = policy(RetryOn {
            reset: true,
            ..RetryOn::default()
        });
        assert!(retriable(&reset_policy, Attempt::Failed(&reset)));
        assert!(retriable(&reset_policy, Attempt::PerTryTimeout));
        let refused = policy(RetryOn {
            refused_stream: true,
            ..RetryOn::default()
        });
        assert!(!retriable(&refused, Attempt::Failed(&reset)));
        let no_host = ProxyError::NoHealthyUpstream("c".into());
        assert!(!retriable(&reset_policy, Attempt::Failed(&no_host)));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_grow_with_the_retry_number_and_stop_at_the_deadline() {
        let p = policy(RetryOn::default());
        let mut longest = [Duration::ZERO; 4];
        for _ in 0..100 {
            for n in 1..=3 {
                let start = tokio::time::Instant::now();
                assert!(wait(&p, n, None).await);
                let waited = start.elapsed();
                // The timer rounds up to whole milliseconds.
                assert!(
                    waited <= Duration::from_millis(25 * ((1 << n) - 1)),
                    "{n}: {waited:?}"
                );
                longest[n as usize] = longest[n as usize].max(waited);
            }
        }
        assert!(longest[3] > longest[1], "{longest:?}");
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_millis(1);
        let mut cut = false;
        for _ in 0..20 {
            cut |= !wait(&p, 5, Some(deadline)).await;
        }
        assert!(cut, "a wait past the deadline ends at the deadline");
        assert!(start.elapsed() < Duration::from_millis(250 * 20));
    }

    #[test]
    fn backoff_is_jittered_exponential_and_capped() {
        let p = policy(RetryOn::default());
        for _ in 0..200 {
            assert!(backoff(&p, 1) < Duration::from_millis(25));
            assert!(backoff(&p, 2) < Duration::from_millis(75));
            assert!(backoff(&p, 9) < Duration::from_millis(250));
        }
        let longest = (0..500).map(|_| backoff(&p, 3)).max().unwrap();
        assert!(
            longest > Duration::from_millis(75),
            "{longest:?} spans the third window"
        );
    }
}

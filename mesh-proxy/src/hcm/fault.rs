//! The fault injection HTTP filter (`envoy.filters.http.fault`): for the
//! requests its `headers` select, a fixed delay and/or an abort, each for
//! its share of requests, at most `max_active_faults` at once. The route's
//! or virtual host's `typed_per_filter_config` replaces the filter's own
//! config.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use rand::Rng;

use super::router::header_matches;
use crate::model::{AbortStatus, FaultConfig, Fraction};

/// What the filter does to one request.
#[derive(Debug, Default)]
pub struct Fault {
    /// Wait this long first (flag `DI`).
    pub delay: Option<Duration>,
    /// Then answer this instead of forwarding (flag `FI`).
    pub abort: Option<AbortStatus>,
    /// Counts the fault as active until the request is done.
    pub active: Option<ActiveFault>,
}

/// One fault in effect, counted against `max_active_faults`.
#[derive(Debug)]
pub struct ActiveFault(Arc<FaultConfig>);

impl Drop for ActiveFault {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a request falls in `fraction` (`numerator / denominator`).
pub fn sample(fraction: Fraction) -> bool {
    fraction.numerator >= fraction.denominator
        || (fraction.numerator > 0
            && rand::rng().random_range(0..fraction.denominator) < fraction.numerator)
}

/// Decide the faults of one request under `config`.
pub fn decide(config: &Arc<FaultConfig>, request: &Parts) -> Fault {
    if !config.headers.iter().all(|h| header_matches(h, request)) {
        return Fault::default();
    }
    let delay = config
        .delay
        .as_ref()
        .filter(|d| sample(d.percentage))
        .map(|d| d.delay);
    let abort = config
        .abort
        .as_ref()
        .filter(|a| sample(a.percentage))
        .map(|a| a.status);
    if delay.is_none() && abort.is_none() {
        return Fault::default();
    }
    let active = config.active.fetch_add(1, Ordering::Relaxed);
    if config.max_active_faults.is_some_and(|max| active >= max) {
        config.active.fetch_sub(1, Ordering::Relaxed);
        return Fault::default();
    }
    Fault {
        delay,
        abort,
        active: Some(ActiveFault(config.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FaultAbort, HeaderMatchKind, HeaderMatcher};

    fn abort_all(max: Option<u32>) -> Arc<FaultConfig> {
        Arc::new(FaultConfig {
            abort: Some(FaultAbort {
                status: AbortStatus::Http(503),
                percentage: Fraction::ALL,
            }),
            max_active_faults: max,
            ..FaultConfig::default()
        })
    }

    fn request(headers: &[(&str, &str)]) -> Parts {
        let mut r = http::Request::get("/");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(()).unwrap().into_parts().0
    }

    #[test]
    fn max_active_faults_bounds_faults_in_effect() {
        let config = abort_all(Some(1));
        let first = decide(&config, &request(&[]));
        assert!(first.abort.is_some());
        assert!(
            decide(&config, &request(&[])).abort.is_none(),
            "limit reached"
        );
        drop(first);
        assert!(decide(&config, &request(&[])).abort.is_some());
    }

    #[test]
    fn headers_select_the_faulted_requests_and_shares_hold() {
        let mut config = (*abort_all(None)).clone();
        config.headers = vec![HeaderMatcher::new(
            "x-fault",
            HeaderMatchKind::Present(true),
        )];
        let config = Arc::new(config);
        assert!(decide(&config, &request(&[])).abort.is_none());
        assert!(decide(&config, &request(&[("x-fault", "1")]))
            .abort
            .is_some());
        let tenth = Fraction {
            numerator: 1_000,
            denominator: 10_000,
        };
        let hits = (0..10_000).filter(|_| sample(tenth)).count();
        assert!((800..1_200).contains(&hits), "{hits}");
        assert!(!sample(Fraction {
            numerator: 0,
            denominator: 100
        }));
    }
}

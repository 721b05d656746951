//! Circuit breakers of the cluster stage, shared with the upstream pool
//! (router ─► cluster ─► upstream pool): one set of counters per cluster,
//! each admission a [`Permit`] that gives its slot back when dropped.
//!
//! | limit | counts | who takes it |
//! | --- | --- | --- |
//! | `max_connections` | open upstream connections, HTTP and TCP | the pool, per connection (held by the socket) |
//! | `max_pending_requests` | requests waiting for a connection | the pool, while a request waits |
//! | `max_requests` | requests in flight | the pool, until the response body ends |
//! | `max_retries` | retries in flight | the router, through `ClusterManager::begin_retry` |
//!
//! The limits are read from the snapshot's cluster at each admission, so a
//! new limit applies at once while the counts (what is open now) carry on.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::error::ProxyError;
use crate::model::Cluster;

/// Which circuit breaker, named as Istio's DestinationRule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_connections` (`connectionPool.tcp.maxConnections`).
    Connections,
    /// `max_pending_requests` (`connectionPool.http.http1MaxPendingRequests`).
    PendingRequests,
    /// `max_requests` (`connectionPool.http.http2MaxRequests`).
    Requests,
    /// `max_retries` (`connectionPool.http.maxRetries`).
    Retries,
}

impl Limit {
    /// The Istio field this limit comes from.
    pub fn istio_field(self) -> &'static str {
        match self {
            Limit::Connections => "maxConnections",
            Limit::PendingRequests => "http1MaxPendingRequests",
            Limit::Requests => "http2MaxRequests",
            Limit::Retries => "maxRetries",
        }
    }

    /// The cluster's value of this limit.
    pub fn of(self, cluster: &Cluster) -> u32 {
        let b = &cluster.circuit_breakers;
        match self {
            Limit::Connections => b.max_connections,
            Limit::PendingRequests => b.max_pending_requests,
            Limit::Requests => b.max_requests,
            Limit::Retries => b.max_retries,
        }
    }

    /// The overflow error for `cluster` hitting this limit.
    pub fn overflow(self, cluster: &Cluster) -> ProxyError {
        ProxyError::Overflow {
            field: self.istio_field(),
            limit: self.of(cluster),
            config: cluster.describe(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A cluster's circuit breaker counters.
#[derive(Debug, Default)]
pub struct Resources {
    counts: [AtomicU32; 4],
    /// Signalled whenever a connection or request slot is given back, so a
    /// pending request can try again.
    freed: Notify,
}

impl Resources {
    /// Take one slot of `limit` if fewer than `max` are taken.
    pub fn try_acquire(self: &Arc<Self>, limit: Limit, max: u32) -> Option<Permit> {
        let count = &self.counts[limit.index()];
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit {
            resources: self.clone(),
            limit,
        })
    }

    /// Take a slot of `limit` for `cluster`, or its overflow error.
    pub fn admit(self: &Arc<Self>, cluster: &Cluster, limit: Limit) -> Result<Permit, ProxyError> {
        self.try_acquire(limit, limit.of(cluster))
            .ok_or_else(|| limit.overflow(cluster))
    }

    /// Slots of `limit` taken now.
    pub fn in_use(&self, limit: Limit) -> u32 {
        self.counts[limit.index()].load(Ordering::Acquire)
    }

    /// A wait for some slot to be given back (a connection closes, a
    /// request ends). Make it (and `enable` it) before checking for a free
    /// slot, then await it, so a slot freed in between is not missed;
    /// check again after it fires: it may be someone else's turn by then.
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }
}

/// One taken slot; dropping it gives the slot back and wakes a waiter.
#[derive(Debug)]
pub struct Permit {
    resources: Arc<Resources>,
    limit: Limit,
}

impl Permit {
    /// Which limit the slot counts against.
    pub fn limit(&self) -> Limit {
        self.limit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.resources.counts[self.limit.index()].fetch_sub(1, Ordering::AcqRel);
        if matches!(self.limit, Limit::Connections | Limit::Requests) {
            // notify_waiters would wake everyone to fight over one slot;
            // one waiter per freed slot, FIFO.
            self.resources.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Discovery;

    #[test]
    fn permits_count_up_to_the_limit_and_give_back_on_drop() {
        let resources = Arc::new(Resources::default());
        let mut cluster = Cluster::new("c", Discovery::OriginalDst);
        cluster.circuit_breakers.max_retries = 2;
        let a = resources.admit(&cluster, Limit::Retries).unwrap();
        let _b = resources.admit(&cluster, Limit::Retries).unwrap();
        let overflow = resources.admit(&cluster, Limit::Retries).unwrap_err();
        assert_eq!(overflow.reason(), "UO overflow: cluster c maxRetries=2");
        drop(a);
        assert_eq!(resources.in_use(Limit::Retries), 1);
        assert!(resources.admit(&cluster, Limit::Retries).is_ok());
    }
}

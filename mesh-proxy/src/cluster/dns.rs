//! DNS endpoint discovery for the cluster stage (STRICT_DNS and
//! LOGICAL_DNS clusters): resolve the cluster's hosts and turn the answers
//! into a load assignment the balancers read like an EDS one.
//!
//! The first pick of a cluster waits for its first resolution (at most the
//! lookup timeout, like Envoy's cluster warming); after that a pick never
//! waits: once the refresh interval (`dns_refresh_rate`, or the answer's TTL
//! with `respect_dns_ttl`) has passed, it starts a refresh in the
//! background and uses the answer it has. A failed or timed-out lookup
//! keeps the host's last good answer.
//!
//! The system resolver (getaddrinfo) reports no TTL; like Envoy's
//! getaddrinfo resolver it is taken as 60 s.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{DnsDiscovery, DnsLookupFamily, Endpoint, LoadAssignment};

/// The TTL the system resolver's answers are given (Envoy's getaddrinfo
/// resolver hard-codes the same).
pub const SYSTEM_TTL: Duration = Duration::from_secs(60);
/// Envoy's `dns_min_refresh_rate`: a TTL never makes refreshes faster.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// One answer: the addresses of a name, and how long they may be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Addresses in the resolver's order.
    pub addresses: Vec<IpAddr>,
    /// The TTL, when the resolver knows it.
    pub ttl: Option<Duration>,
}

/// A future resolving one name.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = io::Result<Answer>> + Send + 'a>>;

/// Something that resolves host names (the system resolver, or a fake in
/// tests).
pub trait Resolver: Send + Sync + fmt::Debug {
    /// Every address of `host`, IPv4 and IPv6.
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a>;
}

/// getaddrinfo through tokio's blocking pool.
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let found = tokio::net::lookup_host((host, 0)).await?;
            let mut addresses: Vec<IpAddr> = Vec::new();
            for a in found {
                if !addresses.contains(&a.ip()) {
                    addresses.push(a.ip());
                }
            }
            Ok(Answer {
                addresses,
                ttl: Some(SYSTEM_TTL),
            })
        })
    }
}

/// The DNS state of one cluster.
#[derive(Debug, Default)]
pub struct DnsState {
    resolved: Mutex<Option<Resolved>>,
    refreshing: AtomicBool,
}

#[derive(Debug, Clone)]
struct Resolved {
    /// The hosts this answer is for (a new config may change them).
    hosts: Vec<(String, u16)>,
    /// Per host, its last good addresses.
    answers: Vec<Option<Vec<IpAddr>>>,
    assignment: Arc<LoadAssignment>,
    next_refresh: Instant,
}

/// Why a DNS cluster has no endpoints yet.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {reason}")]
pub struct DnsError {
    /// The first host that failed.
    pub host: String,
    /// What went wrong (timeout, or the resolver's error).
    pub reason: String,
}

impl DnsState {
    /// The cluster's endpoints from DNS, resolving first if there is no
    /// answer yet (bounded by the lookup timeout).
    pub async fn assignment(
        self: &Arc<Self>,
        resolver: &Arc<dyn Resolver>,
        cluster: &str,
        dns: &DnsDiscovery,
        logical: bool,
    ) -> Result<Arc<LoadAssignment>, DnsError> {
        let hosts: Vec<(String, u16)> =
            dns.hosts.iter().map(|h| (h.host.clone(), h.port)).collect();
        let current = self.lock().clone().filter(|r| r.hosts == hosts);
        match current {
            Some(resolved) => {
                if Instant::now() >= resolved.next_refresh
                    && !self.refreshing.swap(true, Ordering::AcqRel)
                {
                    let (state, resolver) = (self.clone(), resolver.clone());
                    let (cluster, dns) = (cluster.to_owned(), dns.clone());
                    tokio::spawn(async move {
                        let previous = state.lock().clone();
                        let _ = state
                            .refresh(&resolver, &cluster, &dns, logical, previous)
                            .await;
                        state.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(resolved.assignment)
            }
            None => self.refresh(resolver, cluster, dns, logical, None).await,
        }
    }

    async fn refresh(
        &self,
        resolver: &Arc<dyn Resolver>,
        cluster: &str,
        dns: &DnsDiscovery,
        logical: bool,
        previous: Option<Resolved>,
    ) -> Result<Arc<LoadAssignment>, DnsError> {
        let hosts: Vec<(String, u16)> =
            dns.hosts.iter().map(|h| (h.host.clone(), h.port)).collect();
        let previous = previous.filter(|p| p.hosts == hosts);
        let lookups = dns.hosts.iter().map(|h| async {
            match tokio::time::timeout(dns.timeout, resolver.lookup(&h.host)).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", dns.timeout)),
            }
        });
        let results = futures::future::join_all(lookups).await;
        let mut answers = Vec::with_capacity(results.len());
        let mut ttl: Option<Duration> = None;
        let mut first_error = None;
        for (i, result) in results.into_iter().enumerate() {
            let last_good = previous.as_ref().and_then(|p| p.answers[i].clone());
            match result {
                Ok(answer) => {
                    ttl = Some(match (ttl, answer.ttl) {
                        (Some(a), Some(b)) => a.min(b),
                        (a, b) => a.or(b).unwrap_or(SYSTEM_TTL),
                    });
                    answers.push(Some(family_filter(dns.family, &answer.addresses)));
                }
                Err(reason) => {
                    tracing::warn!(cluster, host = %dns.hosts[i].host, %reason, "DNS lookup failed; keeping the last answer");
                    first_error.get_or_insert(DnsError {
                        host: dns.hosts[i].host.clone(),
                        reason,
                    });
                    answers.push(last_good);
                }
            }
        }
        if answers.iter().all(Option::is_none) {
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        let interval = match (dns.respect_ttl, ttl) {
            (true, Some(ttl)) => ttl.max(MIN_REFRESH),
            _ => dns.refresh_rate,
        };
        let assignment = Arc::new(build(cluster, dns, &answers, logical));
        *self.lock() = Some(Resolved {
            hosts,
            answers,
            assignment: assignment.clone(),
            next_refresh: Instant::now() + interval,
        });
        Ok(assignment)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `dns_lookup_family` applied to one answer.
pub fn family_filter(family: DnsLookupFamily, addresses: &[IpAddr]) -> Vec<IpAddr> {
    let v4: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv4).collect();
    let v6: Vec<IpAddr> = addresses.iter().copied().filter(IpAddr::is_ipv6).collect();
    match family {
        DnsLookupFamily::V4Only => v4,
        DnsLookupFamily::V6Only => v6,
        DnsLookupFamily::Auto => {
            if v6.is_empty() {
                v4
            } else {
                v6
            }
        }
        DnsLookupFamily::V4Preferred => {
            if v4.is_empty() {
                v6
            } else {
                v4
            }
        }
        DnsLookupFamily::All => addresses.to_vec(),
    }
}

/// The endpoints of the answers: every address (STRICT_DNS) or the first
/// address of the one host (LOGICAL_DNS).
fn build(
    cluster: &str,
    dns: &DnsDiscovery,
    answers: &[Option<Vec<IpAddr>>],
    logical: bool,
) -> LoadAssignment {
    let mut endpoints = Vec::new();
    for (host, answer) in dns.hosts.iter().zip(answers) {
        let addresses = answer.as_deref().unwrap_or(&[]);
        let take = if logical { 1 } else { addresses.len() };
        for ip in addresses.iter().take(take) {
            endpoints.push(Endpoint {
                address: SocketAddr::new(*ip, host.port),
                weight: host.weight,
                healthy: true,
                priority: host.priority,
                locality: host.locality,
            });
        }
    }
    LoadAssignment {
        cluster_name: cluster.to_owned(),
        endpoints,
        localities: dns.localities.clone(),
        overprovisioning_factor: crate::model::DEFAULT_OVERPROVISIONING_FACTOR,
    }
}

//! STRICT_DNS endpoint discovery for the cluster stage: resolve a cluster's
//! host names with the system resolver and keep the answers for a short
//! while, so a busy route does not ask the resolver on every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::Endpoint;

/// How long an answer is reused before asking again.
const TTL: Duration = Duration::from_secs(5);
/// Upper bound on cached names, so hostile config cannot grow it forever.
const MAX_ENTRIES: usize = 4096;

/// A small cache of `lookup_host` answers keyed by `(host, port)`.
#[derive(Debug, Default)]
pub struct DnsCache {
    entries: Mutex<HashMap<(String, u16), Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    resolved_at: Instant,
    addresses: Vec<SocketAddr>,
}

impl DnsCache {
    /// Endpoints (weight 1) for every address of every host. A failed lookup
    /// keeps serving the last answer it had for that host, if any.
    pub async fn resolve(&self, hosts: &[(String, u16)]) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        for (host, port) in hosts {
            let key = (host.clone(), *port);
            let cached = self.lock().get(&key).cloned();
            let addresses = match cached {
                Some(entry) if entry.resolved_at.elapsed() < TTL => entry.addresses,
                stale => match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(found) => {
                        let addresses: Vec<SocketAddr> = found.collect();
                        self.store(key, addresses.clone());
                        addresses
                    }
                    Err(error) => {
                        tracing::warn!(%host, port, %error, "DNS lookup failed");
                        stale.map(|entry| entry.addresses).unwrap_or_default()
                    }
                },
            };
            endpoints.extend(
                addresses
                    .into_iter()
                    .map(|address| Endpoint { address, weight: 1 }),
            );
        }
        endpoints
    }

    fn store(&self, key: (String, u16), addresses: Vec<SocketAddr>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.resolved_at.elapsed() < TTL);
        }
        entries.insert(
            key,
            Entry {
                resolved_at: Instant::now(),
                addresses,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u16), Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literal_addresses_and_localhost() {
        let cache = DnsCache::default();
        let endpoints = cache.resolve(&[("127.0.0.1".into(), 9080)]).await;
        assert_eq!(
            endpoints,
            [Endpoint {
                address: "127.0.0.1:9080".parse().unwrap(),
                weight: 1
            }]
        );
        let local = cache.resolve(&[("localhost".into(), 80)]).await;
        assert!(local.iter().all(|e| e.address.ip().is_loopback()));
    }
}

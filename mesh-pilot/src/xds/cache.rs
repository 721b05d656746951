//! Work shared across proxies (istiod's xDS cache): one [`PushCache`] per
//! push holds the shared families of `translate/scope.rs`, each built and
//! packed once per scope key, on first use, by whichever stream asks
//! first; the other streams of the push take `Arc`s of the same packed
//! resources. Only a proxy's own resources are built per stream. A new push
//! is a new config version and gets a new, empty cache, so nothing stale is
//! ever served.
//!
//! ```text
//!  stream ─► PushCaches::for_push(ctx) ─► PushCache of that push
//!               resources(proxy): View::of(ctx, proxy)
//!                 clusters[MeshWide] endpoints[MeshWide]       per key: a once-cell, built
//!                 outbound_listeners[Source] routes[RouteScope]    without holding the map lock
//!               + translate::own(ctx, proxy), packed for this stream
//!               ─► Resources (Arcs) ─► Connection
//!  stats(): builds and hits per family ─► /debug/pushz
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::Serialize;
use tokio::sync::watch;

use super::resources::{pack_all, Resources, Set};
use super::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use crate::proxy::Proxy;
use crate::push::PushContext;
use crate::translate::scope::EndpointView;
use crate::translate::scope::{RouteScope, ServiceView, Source, View};
use crate::translate::{self, Output};

/// Names of the shared families in [`PushStats`].
pub mod family {
    /// Outbound clusters, `BlackHoleCluster`, `PassthroughCluster`.
    pub const CLUSTERS: &str = "clusters";
    /// Load assignments of the EDS clusters.
    pub const ENDPOINTS: &str = "endpoints";
    /// REDIRECT-mode outbound listeners.
    pub const OUTBOUND_LISTENERS: &str = "outbound_listeners";
    /// Route configs, by route scope.
    pub const ROUTES: &str = "routes";
}

/// Counters of one shared family in one push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FamilyStats {
    /// Times a scope's resources were built (and packed).
    pub builds: u64,
    /// Times a stream took already built resources.
    pub hits: u64,
    /// Distinct scope keys asked for.
    pub scopes: usize,
}

/// What one push's cache has done, as `/debug/pushz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushStats {
    /// The push's config version.
    pub version: String,
    /// When the push started (its push context was made), in ms since
    /// the Unix epoch.
    pub started_unix_ms: u64,
    /// Shared family name -> its counters.
    pub shared: BTreeMap<&'static str, FamilyStats>,
    /// Proxies whose own resources were built in this push (once per
    /// stream and push).
    pub own_builds: u64,
}

/// One shared family: a once-cell per scope key.
#[derive(Debug)]
struct Shared<K> {
    cells: Mutex<HashMap<K, Arc<OnceLock<Arc<Set>>>>>,
    builds: AtomicU64,
    hits: AtomicU64,
}

impl<K> Default for Shared<K> {
    fn default() -> Self {
        Shared {
            cells: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash + Clone> Shared<K> {
    /// The packed resources of `key`, built by `build` if no stream has
    /// built them yet. The map lock is held only to find the key's cell;
    /// streams asking for a key being built wait for that one build.
    fn get(&self, key: &K, build: impl FnOnce() -> Set) -> Arc<Set> {
        let cell = {
            let mut cells = lock(&self.cells);
            match cells.get(key) {
                Some(cell) => Arc::clone(cell),
                None => {
                    let cell = Arc::default();
                    cells.insert(key.clone(), Arc::clone(&cell));
                    cell
                }
            }
        };
        let mut built = false;
        let set = cell.get_or_init(|| {
            built = true;
            Arc::new(build())
        });
        let counter = if built { &self.builds } else { &self.hits };
        counter.fetch_add(1, Ordering::Relaxed);
        Arc::clone(set)
    }

    fn stats(&self) -> FamilyStats {
        FamilyStats {
            builds: self.builds.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            scopes: lock(&self.cells).len(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned map is still a valid map: every write is one insert.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared resources of one push.
#[derive(Debug)]
pub struct PushCache {
    ctx: Arc<PushContext>,
    clusters: Shared<ServiceView>,
    endpoints: Shared<EndpointView>,
    outbound_listeners: Shared<Source>,
    routes: Shared<RouteScope>,
    own_builds: AtomicU64,
}

impl PushCache {
    /// An empty cache for a push.
    pub fn new(ctx: Arc<PushContext>) -> PushCache {
        PushCache {
            ctx,
            clusters: Shared::default(),
            endpoints: Shared::default(),
            outbound_listeners: Shared::default(),
            routes: Shared::default(),
            own_builds: AtomicU64::new(0),
        }
    }

    /// The push this cache belongs to.
    pub fn context(&self) -> &Arc<PushContext> {
        &self.ctx
    }

    /// Everything `proxy` is sent in this push: the shared families of its
    /// view (built here if it is the first to ask) and its own resources.
    pub fn resources(&self, proxy: &Proxy) -> Resources {
        let ctx = &*self.ctx;
        let view = View::of(ctx, proxy);
        let mut r = Resources::new();
        let clusters = self.clusters.get(&view.services, || {
            pack_all(&translate::outbound_clusters(ctx, &view.services), |c| {
                &c.name
            })
        });
        r.add(CLUSTER_TYPE, clusters);
        let endpoints = self.endpoints.get(&view.endpoints, || {
            pack_all(&translate::load_assignments(ctx, &view.endpoints), |e| {
                &e.cluster_name
            })
        });
        r.add(ENDPOINT_TYPE, endpoints);
        if let Some(key) = &view.outbound_listeners {
            let listeners = self.outbound_listeners.get(key, || {
                pack_all(&translate::outbound_listeners(ctx, key), |l| &l.name)
            });
            r.add(LISTENER_TYPE, listeners);
        }
        if let Some(scope) = &view.routes {
            let routes = self.routes.get(scope, || {
                pack_all(&translate::route_configs(ctx, scope), |r| &r.name)
            });
            r.add(ROUTE_TYPE, routes);
        }
        let own: Output = translate::own(ctx, proxy, &view);
        self.own_builds.fetch_add(1, Ordering::Relaxed);
        r.add(CLUSTER_TYPE, Arc::new(pack_all(&own.clusters, |c| &c.name)));
        r.add(
            LISTENER_TYPE,
            Arc::new(pack_all(&own.listeners, |l| &l.name)),
        );
        r
    }

    /// What this push's cache has built and shared so far.
    pub fn stats(&self) -> PushStats {
        PushStats {
            version: self.ctx.version(),
            started_unix_ms: self.ctx.created_unix_ms,
            shared: BTreeMap::from([
                (family::CLUSTERS, self.clusters.stats()),
                (family::ENDPOINTS, self.endpoints.stats()),
                (family::OUTBOUND_LISTENERS, self.outbound_listeners.stats()),
                (family::ROUTES, self.routes.stats()),
            ]),
            own_builds: self.own_builds.load(Ordering::Relaxed),
        }
    }
}

/// The cache of the push the streams are on, shared by the ADS server's
/// streams and the debug server.
#[derive(Debug, Clone)]
pub struct PushCaches {
    push: watch::Receiver<Arc<PushContext>>,
    current: Arc<Mutex<Option<Arc<PushCache>>>>,
}

impl PushCaches {
    /// Caches for the pushes published on `push`.
    pub fn new(push: watch::Receiver<Arc<PushContext>>) -> PushCaches {
        PushCaches {
            push,
            current: Arc::default(),
        }
    }

    /// The cache of push `ctx`. The first stream on a new push makes its
    /// cache current; a stream still on an older push (it read the push
    /// just before a newer one came) gets a cache of its own rather than
    /// trading the current one away.
    pub fn for_push(&self, ctx: &Arc<PushContext>) -> Arc<PushCache> {
        let mut current = lock(&self.current);
        match current.as_ref() {
            Some(cache) if Arc::ptr_eq(&cache.ctx, ctx) => Arc::clone(cache),
            Some(cache) if cache.ctx.config.version > ctx.config.version => {
                tracing::debug!(
                    version = ctx.config.version,
                    "stream behind the current push"
                );
                Arc::new(PushCache::new(Arc::clone(ctx)))
            }
            _ => {
                let cache = Arc::new(PushCache::new(Arc::clone(ctx)));
                *current = Some(Arc::clone(&cache));
                cache
            }
        }
    }

    /// The cache of the latest push.
    pub fn latest(&self) -> Arc<PushCache> {
        let ctx = Arc::clone(&self.push.borrow());
        self.for_push(&ctx)
    }
}

#[cfg(test)]
mod tests;

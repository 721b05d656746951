//! The push queue: config snapshots from the source are debounced, joined
//! with the registry built from them and the indexes every translation
//! looks things up in, and published as one immutable [`PushContext`] that
//! every ADS stream follows. A push context is a config version: what is
//! computed from it (indexes here, shared resources in `xds/cache.rs`) is
//! never stale.
//!
//! ```text
//!  source ──watch<ConfigSnapshot>──► debounce ──► PushContext::new ──watch<PushContext>──► xds/ (cache, streams)
//!                                                   Registry::build, index.rs
//! ```

pub mod delegate;
pub mod destination;
pub mod index;
pub mod sidecar;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use self::index::PushIndex;
use crate::registry::Registry;
use crate::source::ConfigSnapshot;

/// Everything a push is computed from: the config, the registry made from
/// it and their indexes, replaced together.
#[derive(Debug)]
pub struct PushContext {
    /// The config snapshot.
    pub config: Arc<ConfigSnapshot>,
    /// Services and endpoints derived from it.
    pub registry: Registry,
    /// Lookups by host, gateway, selector and address (`index.rs`).
    index: PushIndex,
    /// When the push context was made (ms since the Unix epoch): the start
    /// of the push, as `/debug/pushz` reports it.
    pub created_unix_ms: u64,
}

impl PushContext {
    /// Build the registry and the indexes for a snapshot.
    pub fn new(config: Arc<ConfigSnapshot>) -> Self {
        let registry = Registry::build(&config);
        PushContext::with_registry(config, registry)
    }

    /// A push context of a snapshot and the registry already built from
    /// it (tools and tests that hold both).
    pub fn with_registry(config: Arc<ConfigSnapshot>, registry: Registry) -> Self {
        let index = PushIndex::build(&config, &registry);
        PushContext {
            config,
            registry,
            index,
            created_unix_ms: unix_ms(SystemTime::now()),
        }
    }

    /// The version label sent as `version_info`.
    pub fn version(&self) -> String {
        self.config.version.to_string()
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Publish a push context for the snapshots on `input`, once `delay` has
/// passed without a newer one (at most `10 * delay` after the first change,
/// so a steady trickle of edits still gets pushed). Ends on `shutdown` or
/// when the source goes away.
pub async fn debounce(
    mut input: watch::Receiver<Arc<ConfigSnapshot>>,
    output: watch::Sender<Arc<PushContext>>,
    delay: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = input.changed() => if changed.is_err() { return },
            _ = crate::drained(&mut shutdown) => return,
        }
        let first = Instant::now();
        let max_wait = delay * 10;
        loop {
            let quiet = tokio::time::sleep(delay);
            tokio::select! {
                _ = quiet => break,
                changed = input.changed() => {
                    if changed.is_err() || first.elapsed() >= max_wait {
                        break;
                    }
                }
                _ = crate::drained(&mut shutdown) => return,
            }
        }
        let config = input.borrow_and_update().clone();
        let version = config.version;
        let ctx = Arc::new(PushContext::new(config));
        tracing::info!(
            version,
            services = ctx.registry.services.len(),
            "pushing config"
        );
        output.send_replace(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(version: u64) -> Arc<ConfigSnapshot> {
        Arc::new(ConfigSnapshot {
            version,
            ..Default::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_become_one_push() {
        let (in_tx, in_rx) = watch::channel(snapshot(0));
        let (out_tx, mut out_rx) = watch::channel(Arc::new(PushContext::new(snapshot(0))));
        let (_stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(debounce(in_rx, out_tx, Duration::from_millis(100), stop_rx));
        for v in 1..=5 {
            in_tx.send_replace(snapshot(v));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out_rx.changed().await.unwrap();
        assert_eq!(out_rx.borrow_and_update().config.version, 5);
        // Nothing more comes without another change.
        let more = tokio::time::timeout(Duration::from_secs(5), out_rx.changed()).await;
        assert!(more.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_trickle_is_still_pushed() {
        let (in_tx, in_rx) = watch::channel(snapshot(0));
        let (out_tx, out_rx) = watch::channel(Arc::new(PushContext::new(snapshot(0))));
        let (_stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(debounce(in_rx, out_tx, Duration::from_millis(100), stop_rx));
        let start = Instant::now();
        let mut v = 0;
        while !out_rx.has_changed().unwrap() {
            v += 1;
            in_tx.send_replace(snapshot(v));
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(v < 100, "never pushed");
        }
        assert!(start.elapsed() <= Duration::from_millis(1100));
    }
}

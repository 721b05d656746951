//! mesh-pilot: the control plane. Config sources feed a versioned store,
//! the push queue debounces changes, the translator turns config and
//! registry into Istio-shaped Envoy v3 resources per proxy, and the ADS
//! server sends them (DESIGN.md, "Control plane").
//!
//! ```text
//!  source/ ──watch<ConfigSnapshot>──► push.rs (debounce, registry/) ──watch<PushContext>──►
//!      xds/server.rs: per stream translate/, packed ──► xds/connection.rs (nonce, ACK/NACK) ──► proxy
//!  debug.rs: /debug/configz (source), /debug/syncz (streams)
//!
//!  imports point one way: source ◄─ registry ◄─ push ◄─ xds ─► translate; debug ─► xds
//! ```

pub mod debug;
pub mod error;
pub mod mesh_config;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod source;
pub mod translate;
pub mod xds;

/// Resolves once the drain signal (`true` on the shutdown channel) is
/// given, or its sender is gone. Every long-running task selects on it.
pub async fn drained(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across awaits.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

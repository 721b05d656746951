//! mesh-pilot: the control plane. Config sources feed a versioned store,
//! the push queue debounces changes into push contexts (config, registry,
//! indexes), the translator turns a push context into Istio-shaped Envoy v3
//! resources, and the ADS server packs and sends them, building what
//! proxies share once per push (DESIGN.md, "Control plane").
//!
//! ```text
//!  source/ ──watch<ConfigSnapshot>──► push/ (debounce; registry/, push/index.rs) ──watch<PushContext>──►
//!      xds/cache.rs: per push, shared families once per scope key ─┐  translate/ (pure: push
//!      xds/server.rs: per stream, the proxy's own + shared Arcs ───┴─ context + scope → Envoy)
//!      ──► xds/connection.rs (nonce, ACK/NACK) ──► proxy
//!  debug.rs: /debug/configz (source), /debug/pushz (xds cache), /debug/syncz (streams)
//!
//!  imports point one way: source ◄─ registry ◄─ push ◄─ translate ◄─ xds ◄─ debug
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

//! The ADS edge of the pilot: the last stage of the flow
//! (translator -> ADS server -> proxies). Envoy protobuf types live here and
//! in `translate/` only; resources are packed for the wire here.
//!
//! ```text
//!  push context (watch) ──► cache.rs: the push's PushCache ── shared families, once per
//!                              │ Resources of one proxy       push and scope key, packed
//!                              │ (Arcs of shared sets)        (resources.rs: Set, Packed)
//!  request ─► wire.rs Requests ─► server.rs stream task ─► Connection (SotW) or
//!                                                          DeltaConnection (delta):
//!                                                          nonce / ACK / NACK, set diffs
//!  response ◄─ wire.rs WireBody (frames of shared bytes) ◄─┘
//!         SyncTable (/debug/syncz), PushCache::stats (/debug/pushz)
//! ```

pub mod cache;
pub mod connection;
pub mod delta;
pub mod node;
pub mod resources;
pub mod server;
pub mod wire;

pub use mesh_api::names::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
pub use resources::{Packed, Resources};
pub use server::DEFAULT_MAX_STREAMS_PER_PEER;

/// Istio's push order: clusters before the endpoints they need, listeners
/// before the routes they name, so Envoy never warms on a missing piece.
pub const PUSH_ORDER: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

/// Whether a type is always sent whole (SotW wildcard), whatever names the
/// proxy asks for.
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == CLUSTER_TYPE || type_url == LISTENER_TYPE
}

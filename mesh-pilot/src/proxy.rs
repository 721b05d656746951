//! The proxy model: who is asking for config. `xds/node.rs` turns the Envoy
//! `Node` of an ADS stream into a [`Proxy`]; the translator reads only this.
//!
//! A proxy is the node of the wire contract, [`mesh_api::node::Node`]: the
//! one definition mesh-proxy builds its `Node` from, so both sides agree on
//! the id grammar, the metadata keys and the namespace rule.

pub use mesh_api::node::{InterceptionMode, Node as Proxy, NodeMetadata, ProxyType};

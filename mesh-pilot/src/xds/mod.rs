//! The ADS edge of the pilot: the last stage of the flow
//! (translator -> ADS server -> proxies). Envoy protobuf types live here and
//! in `translate/` only; whole resources are packed for the wire here.
//!
//! ```text
//!  push context (watch) ──► per stream: translate(config, registry, proxy)
//!                                     │ pack (Resources::pack) + hash per type
//!  DiscoveryRequest ──► Connection (nonce / ACK / NACK) ──► DiscoveryResponse
//!                                     │
//!                               SyncTable (/debug/syncz)
//! ```

pub mod connection;
pub mod node;
pub mod server;

use std::collections::BTreeMap;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use crate::translate::Output;

pub use mesh_api::names::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

/// Istio's push order: clusters before the endpoints they need, listeners
/// before the routes they name, so Envoy never warms on a missing piece.
pub const PUSH_ORDER: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

/// Whether a type is always sent whole (SotW wildcard), whatever names the
/// proxy asks for.
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == CLUSTER_TYPE || type_url == LISTENER_TYPE
}

/// Generated resources of one proxy, packed, by type URL then resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// type URL -> resource name -> packed resource.
    pub by_type: BTreeMap<&'static str, BTreeMap<String, Any>>,
}

impl Resources {
    /// Pack the translator's output.
    pub fn pack(out: Output) -> Resources {
        let mut by_type: BTreeMap<&'static str, BTreeMap<String, Any>> = BTreeMap::new();
        for t in PUSH_ORDER {
            by_type.insert(t, BTreeMap::new());
        }
        let mut put = |t: &'static str, name: String, any: Any| {
            by_type.entry(t).or_default().insert(name, any);
        };
        for c in out.clusters {
            put(CLUSTER_TYPE, c.name.clone(), any(&c));
        }
        for e in out.endpoints {
            put(ENDPOINT_TYPE, e.cluster_name.clone(), any(&e));
        }
        for l in out.listeners {
            put(LISTENER_TYPE, l.name.clone(), any(&l));
        }
        for r in out.routes {
            put(ROUTE_TYPE, r.name.clone(), any(&r));
        }
        Resources { by_type }
    }
}

/// Pack a message into `Any` with Envoy's canonical type URL.
fn any<T: Message + Name>(msg: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: msg.encode_to_vec(),
    }
}

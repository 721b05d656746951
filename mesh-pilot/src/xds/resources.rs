//! Packed resources: Envoy messages encoded once into the `Any` a
//! `DiscoveryResponse` carries, each with a hash of its content taken when
//! it is packed. A proxy's [`Resources`] hold `Arc`s of packed resources, so
//! the streams of one push share the bytes of what they share, and a stream
//! tells what changed by comparing hashes, not bytes.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use super::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE};
use crate::translate::Output;

/// One resource, packed.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// The resource as sent.
    pub any: Any,
    /// A hash of `any` (type URL and bytes).
    pub hash: u64,
}

impl Packed {
    /// Pack a message with Envoy's canonical type URL.
    pub fn new<T: Message + Name>(msg: &T) -> Packed {
        Packed::from_any(Any {
            type_url: T::type_url(),
            value: msg.encode_to_vec(),
        })
    }

    /// A packed resource of an `Any` already made.
    pub fn from_any(any: Any) -> Packed {
        let mut h = DefaultHasher::new();
        any.type_url.hash(&mut h);
        any.value.hash(&mut h);
        Packed {
            hash: h.finish(),
            any,
        }
    }
}

/// Packed resources of one type, by resource name.
pub type ByName = BTreeMap<Arc<str>, Arc<Packed>>;

/// Pack `items`, each under the name `name` gives it.
pub fn pack_all<T: Message + Name>(items: &[T], name: impl Fn(&T) -> &str) -> ByName {
    items
        .iter()
        .map(|item| (Arc::from(name(item)), Arc::new(Packed::new(item))))
        .collect()
}

/// Everything one proxy is sent, packed, by type URL then resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// type URL -> resource name -> packed resource.
    pub by_type: BTreeMap<&'static str, ByName>,
}

impl Resources {
    /// No resources yet, every served type present.
    pub fn new() -> Resources {
        Resources {
            by_type: PUSH_ORDER.iter().map(|t| (*t, ByName::new())).collect(),
        }
    }

    /// Pack a translator output.
    pub fn pack(out: &Output) -> Resources {
        let mut r = Resources::new();
        r.add(CLUSTER_TYPE, &pack_all(&out.clusters, |c| &c.name));
        r.add(
            ENDPOINT_TYPE,
            &pack_all(&out.endpoints, |e| &e.cluster_name),
        );
        r.add(LISTENER_TYPE, &pack_all(&out.listeners, |l| &l.name));
        r.add(ROUTE_TYPE, &pack_all(&out.routes, |r| &r.name));
        r
    }

    /// Add a set of packed resources of one type (sharing, not copying,
    /// them). Names are unique across what one proxy is sent.
    pub fn add(&mut self, type_url: &'static str, set: &ByName) {
        let all = self.by_type.entry(type_url).or_default();
        all.extend(set.iter().map(|(k, v)| (Arc::clone(k), Arc::clone(v))));
    }
}

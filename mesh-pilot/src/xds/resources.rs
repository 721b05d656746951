//! Packed resources: Envoy messages encoded once into the `Any` a
//! `DiscoveryResponse` carries, each with a hash of its content taken when
//! it is packed. Resources are grouped in [`Set`]s (one shared family of a
//! push, or one proxy's own resources of a type), each with a hash of its
//! whole content. A proxy's [`Resources`] are a list of `Arc`s of sets per
//! type: the streams of one push share the sets they share, building a
//! proxy's view copies no resource and no name, and a stream tells what
//! changed by comparing set hashes first and resource hashes only inside
//! a set that changed.
//!
//! ```text
//!  Resources ─ type URL ─► [Arc<Set>, Arc<Set>, ...]   (shared families, then own)
//!  Set: name ─► Arc<Packed { any, hash }>, hash of all (name, hash) pairs, id
//!       changes_since(previous set) ─► names added or changed, names removed
//! ```

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, DiscoveryResponse, Resource,
};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use super::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, PUSH_ORDER, ROUTE_TYPE};
use crate::translate::Output;

/// One resource, packed.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The resource as sent.
    pub any: Any,
    /// A hash of `any` (type URL and bytes).
    pub hash: u64,
    /// `any` encoded as one entry of `DiscoveryResponse.resources` (field
    /// 2), so a state-of-the-world response is written from these bytes,
    /// shared by every stream, without encoding anything again
    /// (`wire.rs`).
    pub wire: Bytes,
    /// `any` as one entry of `DeltaDiscoveryResponse.resources` (a
    /// `Resource` with its name and version), made the first time a delta
    /// stream sends it.
    delta_wire: OnceLock<Bytes>,
}

impl PartialEq for Packed {
    fn eq(&self, other: &Packed) -> bool {
        self.hash == other.hash && self.any == other.any
    }
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
        let wire = DiscoveryResponse {
            resources: vec![any.clone()],
            ..Default::default()
        }
        .encode_to_vec();
        Packed {
            hash: h.finish(),
            any,
            wire: Bytes::from(wire),
            delta_wire: OnceLock::new(),
        }
    }

    /// The resource's version in delta xDS: its content hash.
    pub fn version(&self) -> String {
        format!("{:016x}", self.hash)
    }

    /// The resource as one `DeltaDiscoveryResponse.resources` entry named
    /// `name` (a resource has one name: the key of its set).
    pub fn delta_wire(&self, name: &str) -> &Bytes {
        self.delta_wire.get_or_init(|| {
            let resource = Resource {
                name: name.to_string(),
                version: self.version(),
                resource: Some(self.any.clone()),
                ..Default::default()
            };
            let msg = DeltaDiscoveryResponse {
                resources: vec![resource],
                ..Default::default()
            };
            Bytes::from(msg.encode_to_vec())
        })
    }
}

/// Packed resources of one type, by resource name.
pub type ByName = BTreeMap<Arc<str>, Arc<Packed>>;

/// Ids of sets: unique within the process, so a stream can tell "the very
/// set I sent last" from "a set with the same content".
static NEXT_SET_ID: AtomicU64 = AtomicU64::new(1);

/// A group of packed resources of one type, by name, with a hash of its
/// whole content.
#[derive(Debug)]
pub struct Set {
    items: ByName,
    hash: u64,
    id: u64,
    /// The last [`Set::changes_from`] answer, by the older set's id: every
    /// stream of a push diffs against the same older set, once.
    memo: Mutex<Option<(u64, Arc<Changes>)>>,
}

/// What differs between two sets of the same family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Names in the newer set that are new or whose content changed.
    pub changed: Vec<Arc<str>>,
    /// Names only the older set has.
    pub removed: Vec<Arc<str>>,
}

impl Set {
    /// A set of packed resources.
    pub fn new(items: ByName) -> Set {
        let mut h = DefaultHasher::new();
        for (name, packed) in &items {
            name.hash(&mut h);
            packed.hash.hash(&mut h);
        }
        Set {
            items,
            hash: h.finish(),
            id: NEXT_SET_ID.fetch_add(1, Ordering::Relaxed),
            memo: Mutex::new(None),
        }
    }

    /// Pack `items`, each under the name `name` gives it.
    pub fn pack<T: Message + Name>(items: &[T], name: impl Fn(&T) -> &str) -> Set {
        Set::new(
            items
                .iter()
                .map(|item| (Arc::from(name(item)), Arc::new(Packed::new(item))))
                .collect(),
        )
    }

    /// The hash of every name and content in the set.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// This set's process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The resource called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Packed>> {
        self.items.get(name)
    }

    /// Every resource, by name.
    pub fn items(&self) -> &ByName {
        &self.items
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// What changed from `older` to this set: one merge walk over both
    /// (names are sorted), comparing content hashes.
    pub fn changes_since(&self, older: &Set) -> Changes {
        let mut changes = Changes::default();
        if self.hash == older.hash {
            return changes;
        }
        let mut old = older.items.iter().peekable();
        for (name, packed) in &self.items {
            while let Some((o, _)) = old.next_if(|(o, _)| *o < name) {
                changes.removed.push(Arc::clone(o));
            }
            match old.next_if(|(o, _)| *o == name) {
                Some((_, p)) if p.hash == packed.hash => {}
                _ => changes.changed.push(Arc::clone(name)),
            }
        }
        changes.removed.extend(old.map(|(o, _)| Arc::clone(o)));
        changes
    }
}

impl Set {
    /// [`Set::changes_since`] `older`, shared: computed by the first
    /// stream that asks and kept for the others.
    pub fn changes_from(&self, older: &Set) -> Arc<Changes> {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        match &*memo {
            Some((id, changes)) if *id == older.id => Arc::clone(changes),
            _ => {
                let changes = Arc::new(self.changes_since(older));
                *memo = Some((older.id, Arc::clone(&changes)));
                changes
            }
        }
    }
}

/// Pack `items` into a set, each under the name `name` gives it.
pub fn pack_all<T: Message + Name>(items: &[T], name: impl Fn(&T) -> &str) -> Set {
    Set::pack(items, name)
}

/// Everything one proxy is sent: per type URL, the sets it is made of.
/// Names are unique across the sets of one type.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    by_type: BTreeMap<&'static str, Vec<Arc<Set>>>,
}

impl Resources {
    /// No resources yet, every served type present.
    pub fn new() -> Resources {
        Resources {
            by_type: PUSH_ORDER.iter().map(|t| (*t, Vec::new())).collect(),
        }
    }

    /// Pack a translator output, one set per type.
    pub fn pack(out: &Output) -> Resources {
        let mut r = Resources::new();
        r.add(
            CLUSTER_TYPE,
            Arc::new(Set::pack(&out.clusters, |c| &c.name)),
        );
        r.add(
            ENDPOINT_TYPE,
            Arc::new(Set::pack(&out.endpoints, |e| &e.cluster_name)),
        );
        r.add(
            LISTENER_TYPE,
            Arc::new(Set::pack(&out.listeners, |l| &l.name)),
        );
        r.add(ROUTE_TYPE, Arc::new(Set::pack(&out.routes, |r| &r.name)));
        r
    }

    /// Add a set of one type (sharing, not copying, it).
    pub fn add(&mut self, type_url: &'static str, set: Arc<Set>) {
        self.by_type.entry(type_url).or_default().push(set);
    }

    /// Whether `type_url` is served at all.
    pub fn serves(&self, type_url: &str) -> bool {
        self.by_type.contains_key(type_url)
    }

    /// The sets of a type, in the order they were added.
    pub fn sets(&self, type_url: &str) -> &[Arc<Set>] {
        self.by_type.get(type_url).map_or(&[], Vec::as_slice)
    }

    /// The resource of a type called `name`.
    pub fn get(&self, type_url: &str, name: &str) -> Option<&Arc<Packed>> {
        self.sets(type_url).iter().find_map(|s| s.get(name))
    }

    /// `name` as an `Arc` shared with the set that has a resource of that
    /// name (a new one if none has): streams keep thousands of subscribed
    /// names each, and interned they cost a pointer apiece.
    pub fn intern(&self, type_url: &str, name: &str) -> Arc<str> {
        let shared = self
            .sets(type_url)
            .iter()
            .find_map(|s| s.items.get_key_value(name));
        shared.map_or_else(|| Arc::from(name), |(k, _)| Arc::clone(k))
    }

    /// [`Resources::intern`] of many names. Proxies send their name lists
    /// sorted, so when a type has one set this is a single merge walk of
    /// the list and the set, not a tree lookup per name.
    pub fn intern_all(&self, type_url: &str, names: &[String]) -> BTreeSet<Arc<str>> {
        let sorted = names.windows(2).all(|w| w[0] <= w[1]);
        let [set] = self.sets(type_url) else {
            return names.iter().map(|n| self.intern(type_url, n)).collect();
        };
        if !sorted {
            return names.iter().map(|n| self.intern(type_url, n)).collect();
        }
        let mut items = set.items.keys().peekable();
        let mut out = BTreeSet::new();
        for name in names {
            while items.next_if(|k| &***k < name.as_str()).is_some() {}
            match items.peek() {
                Some(k) if &***k == name.as_str() => out.insert(Arc::clone(k)),
                _ => out.insert(Arc::from(name.as_str())),
            };
        }
        out
    }

    /// The resources of a type called `names` (those that exist), in name
    /// order: one merge walk when the type has one set, as EDS and RDS do.
    pub fn named(&self, type_url: &str, names: &BTreeSet<Arc<str>>) -> Vec<Arc<Packed>> {
        let [set] = self.sets(type_url) else {
            let found = names.iter().filter_map(|n| self.get(type_url, n));
            return found.cloned().collect();
        };
        let mut items = set.items.iter().peekable();
        let mut out = Vec::with_capacity(names.len().min(set.len()));
        for name in names {
            while items.next_if(|(k, _)| ***k < **name).is_some() {}
            if let Some((_, p)) = items.next_if(|(k, _)| ***k == **name) {
                out.push(Arc::clone(p));
            }
        }
        out
    }

    /// Every resource of a type, as (name, packed).
    pub fn iter(&self, type_url: &str) -> impl Iterator<Item = (&Arc<str>, &Arc<Packed>)> {
        self.sets(type_url).iter().flat_map(|s| s.items.iter())
    }

    /// A hash of a type's whole content (the hashes of its sets, in order).
    pub fn hash(&self, type_url: &str) -> u64 {
        let mut h = DefaultHasher::new();
        for s in self.sets(type_url) {
            s.hash.hash(&mut h);
        }
        h.finish()
    }

    /// Per type, every resource by name (for comparing two views).
    pub fn flatten(&self) -> BTreeMap<&'static str, BTreeMap<&str, &Packed>> {
        self.by_type
            .keys()
            .map(|t| {
                let all = self.iter(t).map(|(n, p)| (&**n, &**p)).collect();
                (*t, all)
            })
            .collect()
    }
}

/// Two views are equal when they send the same resources under the same
/// names, however they are grouped into sets.
impl PartialEq for Resources {
    fn eq(&self, other: &Resources) -> bool {
        self.flatten() == other.flatten()
    }
}

/// A view of one set per type, each resource a one-byte `Any` (for the
/// protocol tests of `connection.rs` and `delta.rs`).
#[cfg(test)]
pub(crate) fn test_view(pairs: &[(&'static str, &str, u8)]) -> Arc<Resources> {
    let mut by_type: BTreeMap<&'static str, ByName> = BTreeMap::new();
    for (t, name, content) in pairs {
        let packed = Packed::from_any(Any {
            type_url: t.to_string(),
            value: vec![*content],
        });
        by_type
            .entry(t)
            .or_default()
            .insert(Arc::from(*name), Arc::new(packed));
    }
    let mut r = Resources::new();
    for t in PUSH_ORDER {
        r.add(t, Arc::new(Set::new(by_type.remove(t).unwrap_or_default())));
    }
    Arc::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, u8)]) -> Set {
        Set::new(
            pairs
                .iter()
                .map(|(n, v)| {
                    let any = Any {
                        type_url: "t".into(),
                        value: vec![*v],
                    };
                    (Arc::from(*n), Arc::new(Packed::from_any(any)))
                })
                .collect(),
        )
    }

    fn names(v: &[Arc<str>]) -> Vec<&str> {
        v.iter().map(|n| &**n).collect()
    }

    #[test]
    fn changes_are_found_in_one_walk() {
        let old = set(&[("a", 1), ("b", 2), ("d", 4), ("f", 6)]);
        let new = set(&[("b", 2), ("c", 3), ("d", 40), ("g", 7)]);
        let c = new.changes_since(&old);
        assert_eq!(names(&c.changed), ["c", "d", "g"]);
        assert_eq!(names(&c.removed), ["a", "f"]);
        let same = set(&[("a", 1), ("b", 2), ("d", 4), ("f", 6)]);
        assert_eq!(same.changes_since(&old), Changes::default());
        assert_eq!(same.hash(), old.hash());
        assert_ne!(same.id(), old.id());
        let empty = set(&[]);
        assert_eq!(
            names(&empty.changes_since(&old).removed),
            ["a", "b", "d", "f"]
        );
        assert_eq!(
            names(&old.changes_since(&empty).changed),
            ["a", "b", "d", "f"]
        );
    }

    #[test]
    fn interning_shares_the_sets_names_sorted_or_not() {
        let mut r = Resources::new();
        r.add(
            ENDPOINT_TYPE,
            Arc::new(set(&[("a", 1), ("c", 2), ("e", 3)])),
        );
        let asked: Vec<String> = ["a", "b", "c", "c", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let set_a = Arc::clone(r.sets(ENDPOINT_TYPE)[0].items().keys().next().unwrap());
        for names in [asked.clone(), asked.iter().rev().cloned().collect()] {
            let interned = r.intern_all(ENDPOINT_TYPE, &names);
            let got: Vec<&str> = interned.iter().map(|n| &**n).collect();
            assert_eq!(got, ["a", "b", "c", "z"]);
            assert!(
                Arc::ptr_eq(interned.first().unwrap(), &set_a),
                "shared, not copied"
            );
        }
        let wanted = r.intern_all(ENDPOINT_TYPE, &asked);
        let found: Vec<u8> = r
            .named(ENDPOINT_TYPE, &wanted)
            .iter()
            .map(|p| p.any.value[0])
            .collect();
        assert_eq!(found, [1, 2], "a and c exist, b and z do not");
    }

    #[test]
    fn views_compare_by_content_not_grouping() {
        let mut one = Resources::new();
        one.add(CLUSTER_TYPE, Arc::new(set(&[("a", 1), ("b", 2)])));
        let mut two = Resources::new();
        two.add(CLUSTER_TYPE, Arc::new(set(&[("b", 2)])));
        two.add(CLUSTER_TYPE, Arc::new(set(&[("a", 1)])));
        assert!(one == two);
        assert_eq!(two.get(CLUSTER_TYPE, "a").unwrap().any.value, [1]);
        assert_ne!(one.hash(CLUSTER_TYPE), two.hash(CLUSTER_TYPE));
    }
}

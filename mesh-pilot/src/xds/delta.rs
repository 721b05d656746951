//! One incremental (delta) ADS stream's protocol state, as Envoy speaks it
//! with `api_type: DELTA_GRPC`. Pure, like `connection.rs`: requests and
//! pushes in, responses out.
//!
//! Per type, the stream keeps what the proxy subscribed (CDS and LDS as
//! wildcards unless it names resources, EDS and RDS by name) and, as in
//! state of the world, the `Arc`s of the sets it last sent from. A push
//! sends only the resources whose content changed and the names that were
//! removed, found by diffing the old sets against the new (once per push
//! and set, shared by every stream). A proxy's requests carry only
//! changes to its subscriptions, not its whole name list, so an ACK costs
//! nothing to read. Each resource's version is its content hash.
//!
//! ```text
//!  DeltaDiscoveryRequest ─► subscribe / unsubscribe / ACK / NACK ─► DeltaOutgoing (new names)
//!  push (Resources) ─► per type: sets diff ─► changed ∩ subscribed, removed ∩ subscribed
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};

use super::connection::{bounded, changed_names, Nack, SyncStatus, MAX_ECHO, MAX_NACK_REASON};
use super::resources::{Packed, Set};
use super::{is_wildcard_type, Resources, PUSH_ORDER};

/// The name Envoy uses to subscribe to everything explicitly.
const WILDCARD: &str = "*";

/// A delta response decided but not yet encoded (see `Outgoing`).
#[derive(Debug, Clone)]
pub struct DeltaOutgoing {
    /// `system_version_info`: the push version.
    pub system_version_info: String,
    /// Added or changed resources, by name.
    pub resources: Vec<(Arc<str>, Arc<Packed>)>,
    /// Names the proxy should drop.
    pub removed: Vec<String>,
    /// The type URL.
    pub type_url: String,
    /// The nonce.
    pub nonce: String,
}

impl DeltaOutgoing {
    /// The response on the wire.
    pub fn into_response(self) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            system_version_info: self.system_version_info,
            resources: self
                .resources
                .iter()
                .map(|(name, p)| Resource {
                    name: name.to_string(),
                    version: p.version(),
                    resource: Some(p.any.clone()),
                    ..Default::default()
                })
                .collect(),
            removed_resources: self.removed,
            type_url: self.type_url,
            nonce: self.nonce,
            ..Default::default()
        }
    }
}

#[derive(Debug, Default)]
struct Watch {
    /// Everything of the type (Envoy's wildcard subscription).
    wildcard: bool,
    /// Names subscribed explicitly.
    names: BTreeSet<Arc<str>>,
    /// The sets the proxy's resources of this type came from; `None`
    /// until the first response.
    sets: Option<Vec<Arc<Set>>>,
    /// Nonce of the last response, and its push version.
    last: Option<(String, String)>,
    acked: Option<String>,
    sent: Option<String>,
}

impl Watch {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// Protocol state of one delta ADS stream.
#[derive(Debug)]
pub struct DeltaConnection {
    node_id: String,
    resources: Arc<Resources>,
    version: String,
    watches: BTreeMap<String, Watch>,
    nonces: u64,
    last_nack: Option<Nack>,
}

impl DeltaConnection {
    /// A stream for `node_id`, starting from the proxy's current resources.
    pub fn new(node_id: String, resources: Arc<Resources>, version: String) -> Self {
        DeltaConnection {
            node_id,
            resources,
            version,
            watches: BTreeMap::new(),
            nonces: 0,
            last_nack: None,
        }
    }

    /// Handle one request; `Some` is the response to send.
    pub fn on_request(&mut self, req: &DeltaDiscoveryRequest) -> Option<DeltaOutgoing> {
        let type_url = req.type_url.as_str();
        if !self.resources.serves(type_url) {
            tracing::debug!(node = %self.node_id, type_url, "ignoring delta request for an unserved type");
            return None;
        }
        let first = !self.watches.contains_key(type_url);
        let watch = self.watches.entry(type_url.to_string()).or_default();
        if !req.response_nonce.is_empty() {
            match &watch.last {
                Some((nonce, version)) if *nonce == req.response_nonce => {
                    if let Some(err) = &req.error_detail {
                        let reason = bounded(&err.message, MAX_NACK_REASON);
                        tracing::warn!(node = %self.node_id, type_url, %version, %reason, "NACK");
                        self.last_nack = Some(Nack {
                            type_url: type_url.to_string(),
                            version: version.clone(),
                            nonce: bounded(&req.response_nonce, MAX_ECHO),
                            reason,
                        });
                    } else {
                        watch.acked = Some(version.clone());
                    }
                }
                // A stale nonce still carries subscription changes.
                _ => {}
            }
        }
        // Envoy's first request of CDS or LDS with no names is a wildcard.
        if first && req.resource_names_subscribe.is_empty() && is_wildcard_type(type_url) {
            watch.wildcard = true;
        }
        let mut added = Vec::new();
        for name in &req.resource_names_subscribe {
            if name == WILDCARD {
                if !watch.wildcard {
                    added.push(WILDCARD.to_string());
                }
                watch.wildcard = true;
            } else if watch.names.insert(self.resources.intern(type_url, name)) && !watch.wildcard {
                added.push(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == WILDCARD {
                watch.wildcard = false;
            } else {
                watch.names.remove(name.as_str());
            }
        }
        let sets = self.resources.sets(type_url).to_vec();
        if watch.sets.is_none() {
            // First response of the type: everything subscribed, less
            // what the proxy says it already has (after a reconnect).
            let have = &req.initial_resource_versions;
            let picked: Vec<(Arc<str>, Arc<Packed>)> = self
                .resources
                .iter(type_url)
                .filter(|(n, p)| {
                    watch.wants(n) && have.get(&***n).is_none_or(|v| *v != p.version())
                })
                .map(|(n, p)| (Arc::clone(n), Arc::clone(p)))
                .collect();
            watch.sets = Some(sets);
            return Some(self.record(type_url, picked, Vec::new()));
        }
        // Newly subscribed names get their current resource (wildcard:
        // everything); names that do not exist get nothing, as in Envoy.
        if added.is_empty() {
            return None;
        }
        let picked: Vec<(Arc<str>, Arc<Packed>)> = if added.iter().any(|n| n == WILDCARD) {
            self.resources
                .iter(type_url)
                .map(|(n, p)| (Arc::clone(n), Arc::clone(p)))
                .collect()
        } else {
            added
                .iter()
                .filter_map(|n| {
                    let p = self.resources.get(type_url, n)?;
                    Some((Arc::from(n.as_str()), Arc::clone(p)))
                })
                .collect()
        };
        if picked.is_empty() {
            return None;
        }
        Some(self.record(type_url, picked, Vec::new()))
    }

    /// New resources for this proxy: per subscribed type, in push order,
    /// the resources that changed and the names that went away.
    pub fn on_push(&mut self, resources: Arc<Resources>, version: String) -> Vec<DeltaOutgoing> {
        self.resources = resources;
        self.version = version;
        let mut out = Vec::new();
        for type_url in PUSH_ORDER {
            let new_sets = self.resources.sets(type_url).to_vec();
            let Some(watch) = self.watches.get_mut(type_url) else {
                continue;
            };
            let Some(old_sets) = watch.sets.replace(new_sets.clone()) else {
                continue;
            };
            let (changed, removed) = match changed_names(&old_sets, &new_sets) {
                Some(changed) => (changed, removed_names(&old_sets, &new_sets)),
                // Other families: resend everything, drop what is gone.
                None => {
                    let now: BTreeSet<&str> = new_sets
                        .iter()
                        .flat_map(|s| s.items().keys())
                        .map(|n| &**n)
                        .collect();
                    let gone = old_sets
                        .iter()
                        .flat_map(|s| s.items().keys())
                        .filter(|n| !now.contains(&***n))
                        .cloned()
                        .collect();
                    let all = new_sets
                        .iter()
                        .flat_map(|s| s.items().keys())
                        .cloned()
                        .collect();
                    (all, gone)
                }
            };
            let picked: Vec<(Arc<str>, Arc<Packed>)> = changed
                .into_iter()
                .filter(|n| watch.wants(n))
                .filter_map(|n| {
                    let p = new_sets.iter().find_map(|s| s.get(&n))?;
                    Some((n, Arc::clone(p)))
                })
                .collect();
            let removed: Vec<String> = removed
                .into_iter()
                .filter(|n| watch.wants(n))
                .map(|n| n.to_string())
                .collect();
            if picked.is_empty() && removed.is_empty() {
                continue;
            }
            out.push(self.record(type_url, picked, removed));
        }
        out
    }

    /// The state for `/debug/syncz`.
    pub fn status(&self, connected: bool) -> SyncStatus {
        let per_type = self
            .watches
            .iter()
            .map(|(t, w)| (t.as_str(), w.acked.as_deref(), w.sent.as_deref()));
        SyncStatus::of(&self.node_id, connected, per_type, &self.last_nack)
    }

    fn record(
        &mut self,
        type_url: &str,
        resources: Vec<(Arc<str>, Arc<Packed>)>,
        removed: Vec<String>,
    ) -> DeltaOutgoing {
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let watch = self.watches.entry(type_url.to_string()).or_default();
        watch.last = Some((nonce.clone(), self.version.clone()));
        watch.sent = Some(self.version.clone());
        DeltaOutgoing {
            system_version_info: self.version.clone(),
            resources,
            removed,
            type_url: type_url.to_string(),
            nonce,
        }
    }
}

/// Names in the sets `old` that the sets `new` (of the same families)
/// no longer have.
fn removed_names(old: &[Arc<Set>], new: &[Arc<Set>]) -> Vec<Arc<str>> {
    old.iter()
        .zip(new)
        .filter(|(o, n)| o.id() != n.id() && o.hash() != n.hash())
        .flat_map(|(o, n)| n.changes_from(o).removed.clone())
        .collect()
}

#[cfg(test)]
mod tests;

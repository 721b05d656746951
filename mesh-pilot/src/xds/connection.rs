//! One ADS stream's protocol state: subscriptions, nonces, ACKs and NACKs
//! (state of the world). Pure: requests and pushes in, responses out; the
//! server task does the I/O.
//!
//! Rules (Istio's `shouldRespond`, per type URL):
//! - a request without a nonce subscribes (or re-subscribes after a
//!   reconnect) and is always answered; so is one carrying a nonce for a
//!   type this stream has not sent yet (a proxy reconnecting with the nonce
//!   of its previous stream, possibly to another pilot);
//! - a request whose nonce is not the last one sent is stale and ignored;
//! - the last nonce with `error_detail` is a NACK: recorded, not answered;
//!   the proxy stays on its old version and the same content is not resent;
//! - the last nonce without error is an ACK; it is answered only when the
//!   requested set of names changed (EDS/RDS; order does not matter);
//! - a push answers only the types whose content for this proxy changed.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use serde::Serialize;

use super::resources::Packed;
use super::{is_wildcard_type, Resources, PUSH_ORDER};

/// A NACK as shown in `/debug/syncz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nack {
    /// The rejected type.
    pub type_url: String,
    /// The version that was rejected.
    pub version: String,
    /// The nonce of the rejected response.
    pub nonce: String,
    /// `error_detail.message` as the proxy sent it.
    pub reason: String,
}

/// The sync state of one stream, as shown in `/debug/syncz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The node id of the proxy.
    pub node_id: String,
    /// False once the stream has ended.
    pub connected: bool,
    /// Type URL -> version the proxy last ACKed.
    pub acked: BTreeMap<String, String>,
    /// Type URL -> version last sent.
    pub sent: BTreeMap<String, String>,
    /// The most recent NACK on any type.
    pub last_nack: Option<Nack>,
}

#[derive(Debug, Clone)]
struct Sent {
    version: String,
    nonce: String,
    hash: u64,
}

#[derive(Debug, Default)]
struct Watch {
    /// Requested names; empty means all (and wildcard types ignore them).
    names: Vec<String>,
    sent: Option<Sent>,
    acked: Option<String>,
}

/// Protocol state of one ADS stream.
#[derive(Debug)]
pub struct Connection {
    node_id: String,
    resources: Arc<Resources>,
    version: String,
    watches: BTreeMap<String, Watch>,
    nonces: u64,
    last_nack: Option<Nack>,
}

impl Connection {
    /// A stream for `node_id`, starting from the proxy's current resources.
    pub fn new(node_id: String, resources: Arc<Resources>, version: String) -> Self {
        Connection {
            node_id,
            resources,
            version,
            watches: BTreeMap::new(),
            nonces: 0,
            last_nack: None,
        }
    }

    /// Handle one request from the proxy; `Some` is the response to send.
    pub fn on_request(&mut self, req: &DiscoveryRequest) -> Option<DiscoveryResponse> {
        let type_url = req.type_url.as_str();
        if !self.resources.by_type.contains_key(type_url) {
            tracing::debug!(node = %self.node_id, type_url, "ignoring request for an unserved type");
            return None;
        }
        let watch = self.watches.entry(type_url.to_string()).or_default();
        if req.response_nonce.is_empty() || watch.sent.is_none() {
            watch.names = req.resource_names.clone();
            return Some(self.respond(type_url));
        }
        let last_nonce = watch.sent.as_ref().map(|s| s.nonce.as_str());
        if last_nonce != Some(req.response_nonce.as_str()) {
            tracing::debug!(node = %self.node_id, type_url, nonce = %req.response_nonce, "stale nonce ignored");
            return None;
        }
        if let Some(err) = &req.error_detail {
            let version = watch
                .sent
                .as_ref()
                .map(|s| s.version.clone())
                .unwrap_or_default();
            tracing::warn!(node = %self.node_id, type_url, %version, reason = %err.message, "NACK");
            self.last_nack = Some(Nack {
                type_url: type_url.to_string(),
                version,
                nonce: req.response_nonce.clone(),
                reason: err.message.clone(),
            });
            return None;
        }
        watch.acked = Some(req.version_info.clone());
        if !is_wildcard_type(type_url) && !same_names(&watch.names, &req.resource_names) {
            watch.names = req.resource_names.clone();
            return Some(self.respond(type_url));
        }
        None
    }

    /// New resources for this proxy: responses, in push order, for the
    /// subscribed types whose content changed since last sent.
    pub fn on_push(
        &mut self,
        resources: Arc<Resources>,
        version: String,
    ) -> Vec<DiscoveryResponse> {
        self.resources = resources;
        self.version = version;
        let mut out = Vec::new();
        for type_url in PUSH_ORDER {
            let Some(watch) = self.watches.get(type_url) else {
                continue;
            };
            let (_, hash) = self.select(type_url, &watch.names);
            if watch.sent.as_ref().map(|s| s.hash) != Some(hash) {
                out.push(self.respond(type_url));
            }
        }
        out
    }

    /// The state for `/debug/syncz`.
    pub fn status(&self, connected: bool) -> SyncStatus {
        let mut acked = BTreeMap::new();
        let mut sent = BTreeMap::new();
        for (t, w) in &self.watches {
            if let Some(v) = &w.acked {
                acked.insert(t.clone(), v.clone());
            }
            if let Some(s) = &w.sent {
                sent.insert(t.clone(), s.version.clone());
            }
        }
        SyncStatus {
            node_id: self.node_id.clone(),
            connected,
            acked,
            sent,
            last_nack: self.last_nack.clone(),
        }
    }

    /// The resources of a type this proxy gets, and their content hash
    /// (from each resource's hash, taken when it was packed).
    fn select(&self, type_url: &str, names: &[String]) -> (Vec<&Any>, u64) {
        let picked: Vec<(&Arc<str>, &Arc<Packed>)> = match self.resources.by_type.get(type_url) {
            None => Vec::new(),
            Some(all) if is_wildcard_type(type_url) || names.is_empty() => all.iter().collect(),
            Some(all) => {
                let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
                names.sort_unstable();
                names.dedup();
                names
                    .into_iter()
                    .filter_map(|n| all.get_key_value(n))
                    .collect()
            }
        };
        let mut h = DefaultHasher::new();
        for (name, packed) in &picked {
            name.hash(&mut h);
            packed.hash.hash(&mut h);
        }
        (
            picked.into_iter().map(|(_, p)| &p.any).collect(),
            h.finish(),
        )
    }

    fn respond(&mut self, type_url: &str) -> DiscoveryResponse {
        let names = self
            .watches
            .get(type_url)
            .map(|w| w.names.clone())
            .unwrap_or_default();
        let (picked, hash) = self.select(type_url, &names);
        let resources = picked.into_iter().cloned().collect();
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let version = self.version.clone();
        let watch = self.watches.entry(type_url.to_string()).or_default();
        watch.sent = Some(Sent {
            version: version.clone(),
            nonce: nonce.clone(),
            hash,
        });
        DiscoveryResponse {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        }
    }
}

/// Whether two lists of resource names ask for the same set.
fn same_names(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

#[cfg(test)]
mod tests;

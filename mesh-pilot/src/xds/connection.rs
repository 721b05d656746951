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
//! - a push answers only the types whose content for this proxy changed;
//!   CDS and LDS are sent whole (SotW wildcard types), EDS and RDS only
//!   with the resources that changed (Envoy updates the named ones and
//!   keeps the rest, as with Istio's incremental EDS), so one endpoint's
//!   change sends one `ClusterLoadAssignment`, not all of them.
//!
//! What a stream sent is remembered as the `Arc`s of the sets it came from
//! (`resources.rs`), not as copies: a push compares set ids and hashes,
//! and walks (once per push, shared) only the sets that changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::resources::Packed;
use serde::Serialize;

use super::resources::Set;
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

impl SyncStatus {
    /// The status of a stream from, per type, the version last ACKed and
    /// the version last sent (either protocol).
    pub fn of<'a>(
        node_id: &str,
        connected: bool,
        per_type: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
        last_nack: &Option<Nack>,
    ) -> SyncStatus {
        let mut acked = BTreeMap::new();
        let mut sent = BTreeMap::new();
        for (t, a, s) in per_type {
            if let Some(v) = a {
                acked.insert(t.to_string(), v.to_string());
            }
            if let Some(v) = s {
                sent.insert(t.to_string(), v.to_string());
            }
        }
        SyncStatus {
            node_id: node_id.to_string(),
            connected,
            acked,
            sent,
            last_nack: last_nack.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Sent {
    version: String,
    nonce: String,
    /// The type's whole content hash ([`Resources::hash`]) when last sent.
    hash: u64,
    /// The sets what the proxy has came from.
    sets: Vec<Arc<Set>>,
}

#[derive(Debug, Default)]
struct Watch {
    /// Requested names, sorted and deduplicated; empty means all (and
    /// wildcard types ignore them).
    names: BTreeSet<Arc<str>>,
    sent: Option<Sent>,
    acked: Option<String>,
}

/// A response decided but not yet encoded: its resources are `Arc`s of
/// the push's packed resources. The server turns it into a
/// [`DiscoveryResponse`] (copying the bytes) only when the stream's
/// transport takes it, so a stream with responses queued holds no copies.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `version_info`.
    pub version_info: String,
    /// The resources, as packed.
    pub resources: Vec<Arc<Packed>>,
    /// The type URL.
    pub type_url: String,
    /// The nonce.
    pub nonce: String,
}

impl Outgoing {
    /// The response on the wire.
    pub fn into_response(self) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: self.version_info,
            resources: self.resources.iter().map(|p| p.any.clone()).collect(),
            type_url: self.type_url,
            nonce: self.nonce,
            ..Default::default()
        }
    }
}

/// What a push sends of one type.
enum Push {
    Nothing,
    Whole,
    Changed(Vec<Arc<str>>),
}

/// Longest NACK reason kept and logged, in bytes (Envoy's are a line or
/// a few; a proxy could send megabytes).
pub const MAX_NACK_REASON: usize = 1024;

/// Longest echo of ours (a version or nonce a proxy sends back) kept.
pub const MAX_ECHO: usize = 128;

/// `text` cut to at most `max` bytes (at a character boundary), with how
/// long it was when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
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
    pub fn on_request(&mut self, req: &DiscoveryRequest) -> Option<Outgoing> {
        let type_url = req.type_url.as_str();
        if !self.resources.serves(type_url) {
            tracing::debug!(node = %self.node_id, type_url, "ignoring request for an unserved type");
            return None;
        }
        let watch = self.watches.entry(type_url.to_string()).or_default();
        if req.response_nonce.is_empty() || watch.sent.is_none() {
            watch.names = intern_all(&self.resources, type_url, &req.resource_names);
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
            let reason = bounded(&err.message, MAX_NACK_REASON);
            tracing::warn!(node = %self.node_id, type_url, %version, %reason, "NACK");
            self.last_nack = Some(Nack {
                type_url: type_url.to_string(),
                version,
                nonce: bounded(&req.response_nonce, MAX_ECHO),
                reason,
            });
            return None;
        }
        watch.acked = Some(bounded(&req.version_info, MAX_ECHO));
        if !is_wildcard_type(type_url) && !same_names(&watch.names, &req.resource_names) {
            watch.names = intern_all(&self.resources, type_url, &req.resource_names);
            return Some(self.respond(type_url));
        }
        None
    }

    /// New resources for this proxy: responses, in push order, for the
    /// subscribed types whose content changed since last sent (whole for
    /// CDS and LDS, the changed resources only for EDS and RDS).
    pub fn on_push(&mut self, resources: Arc<Resources>, version: String) -> Vec<Outgoing> {
        self.resources = resources;
        self.version = version;
        let mut out = Vec::new();
        for type_url in PUSH_ORDER {
            match self.push_of(type_url) {
                Push::Nothing => {}
                Push::Whole => out.push(self.respond(type_url)),
                Push::Changed(names) => out.push(self.respond_with(type_url, &names)),
            }
        }
        out
    }

    /// What a push sends of `type_url`. When nothing of what the proxy
    /// subscribed changed, the sets it has are moved on to the new ones
    /// (same content, or changes only to names it did not ask for).
    fn push_of(&mut self, type_url: &str) -> Push {
        let hash = self.resources.hash(type_url);
        let sets = self.resources.sets(type_url);
        let Some(watch) = self.watches.get_mut(type_url) else {
            return Push::Nothing;
        };
        let Some(sent) = &mut watch.sent else {
            return Push::Nothing;
        };
        if sent.hash == hash {
            sent.sets = sets.to_vec();
            return Push::Nothing;
        }
        if is_wildcard_type(type_url) {
            return Push::Whole;
        }
        let Some(changed) = changed_names(&sent.sets, sets) else {
            return Push::Whole;
        };
        let subscribed = &watch.names;
        let wanted: Vec<Arc<str>> = changed
            .into_iter()
            .filter(|n| subscribed.is_empty() || subscribed.contains(&**n))
            .collect();
        if wanted.is_empty() {
            sent.hash = hash;
            sent.sets = sets.to_vec();
            return Push::Nothing;
        }
        Push::Changed(wanted)
    }

    /// The state for `/debug/syncz`.
    pub fn status(&self, connected: bool) -> SyncStatus {
        let per_type = self.watches.iter().map(|(t, w)| {
            let sent = w.sent.as_ref().map(|s| s.version.as_str());
            (t.as_str(), w.acked.as_deref(), sent)
        });
        SyncStatus::of(&self.node_id, connected, per_type, &self.last_nack)
    }

    /// The resources of a type this proxy gets: all of a wildcard type,
    /// else those named. For EDS and RDS an empty list asks for nothing
    /// (the proxy unsubscribed from every name), never for everything.
    fn select(&self, type_url: &str, names: &BTreeSet<Arc<str>>) -> Vec<Arc<Packed>> {
        if is_wildcard_type(type_url) {
            return self
                .resources
                .iter(type_url)
                .map(|(_, p)| Arc::clone(p))
                .collect();
        }
        self.resources.named(type_url, names)
    }

    /// Send everything of a type this proxy gets.
    fn respond(&mut self, type_url: &str) -> Outgoing {
        let all = BTreeSet::new();
        let names = self.watches.get(type_url).map_or(&all, |w| &w.names);
        let resources = self.select(type_url, names);
        self.record_send(type_url, resources)
    }

    /// Send the resources of a type called `names` (those that exist).
    fn respond_with(&mut self, type_url: &str, names: &[Arc<str>]) -> Outgoing {
        let resources = names
            .iter()
            .filter_map(|n| self.resources.get(type_url, n))
            .cloned()
            .collect();
        self.record_send(type_url, resources)
    }

    fn record_send(&mut self, type_url: &str, resources: Vec<Arc<Packed>>) -> Outgoing {
        self.nonces += 1;
        let nonce = self.nonces.to_string();
        let version = self.version.clone();
        let sent = Sent {
            version: version.clone(),
            nonce: nonce.clone(),
            hash: self.resources.hash(type_url),
            sets: self.resources.sets(type_url).to_vec(),
        };
        self.watches.entry(type_url.to_string()).or_default().sent = Some(sent);
        Outgoing {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
        }
    }
}

/// Names added or changed from the sets `old` to the sets `new` of one
/// type, set by set; `None` when the two are not made of the same
/// families (then everything is resent).
pub(super) fn changed_names(old: &[Arc<Set>], new: &[Arc<Set>]) -> Option<Vec<Arc<str>>> {
    if old.len() != new.len() {
        return None;
    }
    let mut names = Vec::new();
    for (o, n) in old.iter().zip(new) {
        if o.id() == n.id() || o.hash() == n.hash() {
            continue;
        }
        names.extend(n.changes_from(o).changed.iter().cloned());
    }
    Some(names)
}

/// Whether a request's names ask for the set `current`. A proxy repeats
/// its whole list with every ACK (thousands of EDS names), usually in the
/// same sorted order: that case is one walk, with no set built.
fn same_names(current: &BTreeSet<Arc<str>>, asked: &[String]) -> bool {
    let in_order =
        asked.len() == current.len() && asked.iter().zip(current).all(|(a, b)| **a == **b);
    in_order
        || current
            .iter()
            .map(|n| &**n)
            .eq(asked.iter().map(String::as_str).collect::<BTreeSet<_>>())
}

/// Requested names, interned (`Resources::intern`).
fn intern_all(resources: &Resources, type_url: &str, names: &[String]) -> BTreeSet<Arc<str>> {
    names
        .iter()
        .map(|n| resources.intern(type_url, n))
        .collect()
}

#[cfg(test)]
mod tests;

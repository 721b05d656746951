//! xDS stage, protocol: the state-of-the-world ADS state machine, without
//! any networking. The client feeds it each `DiscoveryResponse`; it converts
//! the resources, builds the next [`Snapshot`] whole, checks it, publishes
//! it, and answers with the requests to send (ACK or NACK, then any
//! subscription change).
//!
//! ```text
//! response(type T) ─► convert every resource ─► snapshot' = snapshot with T replaced
//!                          │ all ok                      │ cross-resource check ok
//!                          ▼                             ▼
//!                   NACK(previous version)      publish, ACK(version), resubscribe EDS/RDS
//! ```
//!
//! CDS and LDS responses carry the whole set of their type and replace it.
//! EDS and RDS responses update the resources they name (Envoy's
//! semantics, which lets a control plane send only what changed); those no
//! longer subscribed are dropped when CDS or LDS changes the subscription,
//! and resources of a response that were never subscribed are not kept: an
//! empty EDS or RDS name list means none, never all.
//!
//! Listeners warm before they are published (`warming.rs`): the snapshot
//! only ever holds listeners whose routes and endpoints have arrived (or
//! whose warming timed out), or the older version of one that is warming.
//!
//! As in Envoy, the node goes only on the first request of each stream.

#[cfg(test)]
mod tests;
mod warming;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster as XdsCluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as XdsListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use prost::Name;

use crate::model::{
    Cluster, Discovery, Listener, LoadAssignment, RouteConfig, Snapshot, SnapshotStore,
};
use crate::xds::convert::{dangling_clusters, unpack};
use crate::xds::error::{ConvertError, ResourceError};
use crate::xds::resource_type::ResourceType;
use crate::xds::status::{Nack, XdsStatus};

pub use warming::{is_warm, WARMING_TIMEOUT};

/// Per-type protocol state.
#[derive(Debug, Default, Clone)]
struct TypeState {
    /// Last accepted `version_info` (empty before the first ACK).
    version: String,
    /// Nonce of the last response received on this stream.
    nonce: String,
    /// Subscribed names (EDS, RDS); CDS and LDS are wildcard.
    names: BTreeSet<String>,
    /// A request for this type was sent on the current stream.
    requested: bool,
}

/// The ADS state machine of one proxy; survives reconnects.
#[derive(Debug)]
pub struct AdsState {
    node: Node,
    store: Arc<SnapshotStore>,
    status: Arc<XdsStatus>,
    snapshot: Arc<Snapshot>,
    types: BTreeMap<ResourceType, TypeState>,
    warming: warming::Warming,
    /// A print of each accepted cluster's encoding: a cluster sent again
    /// unchanged keeps its model (and with it its connection pools).
    cluster_prints: BTreeMap<String, Print>,
    /// The node went out on the current stream.
    node_sent: bool,
}

impl AdsState {
    /// A state that publishes into `store` and reports into `status`.
    pub fn new(node: Node, store: Arc<SnapshotStore>, status: Arc<XdsStatus>) -> Self {
        let snapshot = store.load();
        let types = ResourceType::ALL
            .into_iter()
            .map(|t| (t, TypeState::default()))
            .collect();
        let warming = warming::Warming::new(snapshot.listeners.clone());
        Self {
            node,
            store,
            status,
            snapshot,
            types,
            warming,
            cluster_prints: BTreeMap::new(),
            node_sent: false,
        }
    }

    /// The requests that open a new stream: wildcard CDS and LDS, and EDS
    /// and RDS for the names the current snapshot needs. Versions are the
    /// last accepted ones, so pilot can skip what the proxy already has.
    pub fn start_stream(&mut self) -> Vec<DiscoveryRequest> {
        self.node_sent = false;
        let mut out = Vec::new();
        for ty in ResourceType::ALL {
            let ts = self.ts(ty);
            ts.nonce.clear();
            ts.requested = ty.is_whole_set() || !ts.names.is_empty();
            if ts.requested {
                out.push(self.request(ty, None));
            }
        }
        out
    }

    /// Applies one response; returns the requests to send, in order.
    pub fn handle(&mut self, resp: DiscoveryResponse) -> Vec<DiscoveryRequest> {
        let Some(ty) = ResourceType::from_type_url(&resp.type_url) else {
            tracing::warn!(type_url = %resp.type_url, "response of a type the proxy did not ask for");
            return vec![DiscoveryRequest {
                node: self.node_once(),
                type_url: resp.type_url.clone(),
                response_nonce: resp.nonce.clone(),
                error_detail: Some(error_status(format!("unsupported type {}", resp.type_url))),
                ..DiscoveryRequest::default()
            }];
        };
        self.ts(ty).nonce = resp.nonce.clone();
        match self.build(ty, &resp) {
            Ok((snapshot, prints)) => {
                if let Some(prints) = prints {
                    self.cluster_prints = prints;
                }
                self.accept(ty, &resp, snapshot)
            }
            Err(errors) => {
                let reason = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n");
                tracing::warn!(type_url = %resp.type_url, version = %resp.version_info, %reason, "NACK");
                self.status.record_nack(Nack {
                    type_url: resp.type_url.clone(),
                    version: resp.version_info.clone(),
                    nonce: resp.nonce.clone(),
                    reason: reason.clone(),
                });
                vec![self.request(ty, Some(reason))]
            }
        }
    }

    fn accept(
        &mut self,
        ty: ResourceType,
        resp: &DiscoveryResponse,
        snapshot: Snapshot,
    ) -> Vec<DiscoveryRequest> {
        tracing::info!(
            type_url = %resp.type_url,
            version = %resp.version_info,
            resources = resp.resources.len(),
            "ACK"
        );
        if ty == ResourceType::Listener {
            self.warming.wanted = snapshot.listeners.clone();
        }
        self.ts(ty).version = resp.version_info.clone();
        self.status
            .record_ack(resp.type_url.as_str(), &resp.version_info);
        self.publish_warm(snapshot);
        let mut out = vec![self.request(ty, None)];
        // A new CDS can change which EDS names are needed; any response can
        // (through warming) change which listeners serve, hence RDS names.
        if ty == ResourceType::Cluster {
            let names = eds_names(&self.snapshot);
            out.extend(self.resubscribe(ResourceType::Endpoint, names));
        }
        let names = self.needed_routes();
        out.extend(self.resubscribe(ResourceType::Route, names));
        out
    }

    /// The request that changes the subscription of `ty` to `names`, if
    /// that is a change worth sending.
    fn resubscribe(
        &mut self,
        ty: ResourceType,
        names: BTreeSet<String>,
    ) -> Option<DiscoveryRequest> {
        let ts = self.ts(ty);
        // Envoy's rule: an empty list after a non-empty one unsubscribes;
        // never send an empty first request, which would mean wildcard.
        if ts.names != names && (ts.requested || !names.is_empty()) {
            ts.names = names;
            ts.requested = true;
            Some(self.request(ty, None))
        } else {
            ts.names = names;
            None
        }
    }

    /// Converts every resource of `resp` and builds the snapshot it leads
    /// to (with, for CDS, the clusters' prints).
    fn build(
        &self,
        ty: ResourceType,
        resp: &DiscoveryResponse,
    ) -> Result<(Snapshot, Option<Prints>), Vec<ResourceError>> {
        let mut prints = None;
        let mut next = (*self.snapshot).clone();
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        match ty {
            ResourceType::Listener => {
                let new = convert_all::<XdsListener, Listener>(
                    ty,
                    resp,
                    |l| &l.name,
                    |l| l.name.clone(),
                    &mut errors,
                    None,
                );
                names.extend(new.keys().cloned());
                next.listeners = new;
            }
            ResourceType::Route => {
                let new = convert_all::<RouteConfiguration, RouteConfig>(
                    ty,
                    resp,
                    |r| &r.name,
                    |r| r.name.clone(),
                    &mut errors,
                    None,
                );
                let new = self.subscribed_only(ty, new);
                names.extend(new.keys().cloned());
                next.route_configs.extend(new);
            }
            ResourceType::Cluster => {
                let mut new_prints = BTreeMap::new();
                let mut clusters = convert_all::<XdsCluster, Cluster>(
                    ty,
                    resp,
                    |c| &c.name,
                    |c| c.name.clone(),
                    &mut errors,
                    Some(&mut new_prints),
                );
                // As Envoy skips unmodified clusters: one sent again as it
                // was stays the same model, so its pools keep their
                // connections; a changed one is a new model, whose pools
                // start afresh (connections made under the old limits and
                // settings are not reused).
                for (name, cluster) in &mut clusters {
                    let same = new_prints.contains_key(name)
                        && self.cluster_prints.get(name) == new_prints.get(name);
                    if let Some(old) = self.snapshot.clusters.get(name).filter(|_| same) {
                        *cluster = old.clone();
                    }
                }
                next.clusters = clusters;
                prints = Some(new_prints);
                let keep = eds_names(&next);
                next.endpoints.retain(|name, _| keep.contains(name));
            }
            ResourceType::Endpoint => {
                let new = convert_all::<ClusterLoadAssignment, LoadAssignment>(
                    ty,
                    resp,
                    |c| &c.cluster_name,
                    |c| c.cluster_name.clone(),
                    &mut errors,
                    None,
                );
                let new = self.subscribed_only(ty, new);
                next.endpoints.extend(new);
            }
        }
        if errors.is_empty() {
            for (kind, name, error) in dangling_clusters(&next) {
                if kind == ty.kind() && names.contains(&name) {
                    errors.push(ResourceError { kind, name, error });
                }
            }
        }
        if errors.is_empty() {
            Ok((next, prints))
        } else {
            Err(errors)
        }
    }

    /// A request for `ty`: an ACK (or first request) when `error` is `None`,
    /// else a NACK carrying the previous good version.
    fn request(&mut self, ty: ResourceType, error: Option<String>) -> DiscoveryRequest {
        let ts = self.types.get(&ty).cloned().unwrap_or_default();
        DiscoveryRequest {
            version_info: ts.version,
            node: self.node_once(),
            resource_names: ts.names.into_iter().collect(),
            type_url: ty.type_url().to_owned(),
            response_nonce: ts.nonce,
            error_detail: error.map(error_status),
            ..DiscoveryRequest::default()
        }
    }

    /// The node for the stream's first request, `None` after it (Envoy
    /// sends it once; pilot reads it from the first request only).
    fn node_once(&mut self) -> Option<Node> {
        if std::mem::replace(&mut self.node_sent, true) {
            None
        } else {
            Some(self.node.clone())
        }
    }

    /// Publish `next` with its listeners resolved by warming, route configs
    /// no listener needs dropped, and the warming state reported.
    fn publish_warm(&mut self, mut next: Snapshot) {
        next.listeners =
            self.warming
                .resolve(&next, &self.snapshot.listeners, tokio::time::Instant::now());
        let keep = warming::rds_names(self.warming.wanted.values().chain(next.listeners.values()));
        next.route_configs.retain(|name, _| keep.contains(name));
        // This client is the store's only writer, so what it loads back is
        // exactly what it published.
        self.store.publish(next);
        self.snapshot = self.store.load();
        self.status
            .set_warming(self.warming.pending().cloned().collect());
    }

    /// When a warming listener times out, if one is warming: the client
    /// calls [`AdsState::expire_warming`] then.
    pub fn warming_deadline(&self) -> Option<tokio::time::Instant> {
        self.warming.deadline()
    }

    /// Serve the listeners that warmed for [`WARMING_TIMEOUT`] as they
    /// are; returns the subscription change to send, if any.
    pub fn expire_warming(&mut self) -> Vec<DiscoveryRequest> {
        if !self.warming.expire(tokio::time::Instant::now()) {
            return Vec::new();
        }
        let next = (*self.snapshot).clone();
        self.publish_warm(next);
        let names = self.needed_routes();
        self.resubscribe(ResourceType::Route, names)
            .into_iter()
            .collect()
    }

    /// RDS names the wanted and the published listeners need.
    fn needed_routes(&self) -> BTreeSet<String> {
        warming::rds_names(
            self.warming
                .wanted
                .values()
                .chain(self.snapshot.listeners.values()),
        )
    }

    /// The resources of an EDS or RDS response this proxy subscribed to;
    /// the rest are not kept (an empty subscription is none, not all).
    fn subscribed_only<M>(
        &self,
        ty: ResourceType,
        mut resources: BTreeMap<String, Arc<M>>,
    ) -> BTreeMap<String, Arc<M>> {
        let subscribed = self.types.get(&ty).map(|ts| &ts.names);
        resources.retain(|name, _| {
            let keep = subscribed.is_some_and(|names| names.contains(name));
            if !keep {
                tracing::debug!(type_url = ty.type_url(), %name, "not subscribed; not kept");
            }
            keep
        });
        resources
    }

    fn ts(&mut self, ty: ResourceType) -> &mut TypeState {
        self.types.entry(ty).or_default()
    }
}

/// `google.rpc.Status` with code INVALID_ARGUMENT, as Envoy NACKs.
fn error_status(message: String) -> Status {
    Status {
        code: tonic::Code::InvalidArgument as i32,
        message,
        details: Vec::new(),
    }
}

/// Decodes and converts every resource; failures go to `errors`.
fn convert_all<P, M>(
    ty: ResourceType,
    resp: &DiscoveryResponse,
    name_of: fn(&P) -> &String,
    key: fn(&M) -> String,
    errors: &mut Vec<ResourceError>,
    mut prints: Option<&mut BTreeMap<String, Print>>,
) -> BTreeMap<String, Arc<M>>
where
    P: prost::Message + Name + Default,
    M: for<'a> TryFrom<&'a P, Error = ConvertError>,
{
    let mut out = BTreeMap::new();
    for (i, any) in resp.resources.iter().enumerate() {
        let proto = match decode::<P>(ty, any) {
            Ok(p) => p,
            Err(error) => {
                let name = format!("#{i}");
                errors.push(ResourceError {
                    kind: ty.kind(),
                    name,
                    error,
                });
                continue;
            }
        };
        let name = name_of(&proto).clone();
        let reject = |error| ResourceError {
            kind: ty.kind(),
            name: if name.is_empty() {
                format!("#{i}")
            } else {
                name.clone()
            },
            error,
        };
        match M::try_from(&proto) {
            Ok(m) if out.contains_key(&key(&m)) => errors.push(reject(ConvertError::invalid(
                "name",
                "duplicate in response",
            ))),
            Ok(m) => {
                if let Some(prints) = prints.as_deref_mut() {
                    prints.insert(key(&m), Print::of(&any.value));
                }
                out.insert(key(&m), Arc::new(m));
            }
            Err(error) => errors.push(reject(error)),
        }
    }
    out
}

/// The prints of a CDS response's clusters, by name.
type Prints = BTreeMap<String, Print>;

/// A 128-bit print of a resource's encoding (two keyed 64-bit hashes), to
/// tell a resource sent again unchanged from a changed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print(u64, u64);

impl Print {
    fn of(bytes: &[u8]) -> Print {
        use std::hash::{Hash, Hasher};
        let half = |key: u8| {
            let mut h = std::hash::DefaultHasher::new();
            key.hash(&mut h);
            bytes.hash(&mut h);
            h.finish()
        };
        Print(half(0), half(1))
    }
}

fn decode<P: prost::Message + Name + Default>(
    ty: ResourceType,
    any: &Any,
) -> Result<P, ConvertError> {
    if any.type_url != ty.type_url() {
        return Err(ConvertError::invalid(
            "type_url",
            format!("{} in a {} response", any.type_url, ty.type_url()),
        ));
    }
    unpack(any)
}

/// EDS names the snapshot's clusters need.
pub fn eds_names(snapshot: &Snapshot) -> BTreeSet<String> {
    snapshot
        .clusters
        .values()
        .filter_map(|c| match &c.discovery {
            Discovery::Eds { service_name } => Some(service_name.clone()),
            _ => None,
        })
        .collect()
}

/// RDS names the snapshot's listeners need.
pub fn rds_names(snapshot: &Snapshot) -> BTreeSet<String> {
    warming::rds_names(snapshot.listeners.values())
}

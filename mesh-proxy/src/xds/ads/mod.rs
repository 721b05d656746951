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
//! longer subscribed are dropped when CDS or LDS changes the subscription.

#[cfg(test)]
mod tests;

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
    Cluster, Discovery, Listener, LoadAssignment, NetworkFilter, RouteConfig, RouteSource,
    Snapshot, SnapshotStore,
};
use crate::xds::convert::{dangling_clusters, unpack};
use crate::xds::error::{ConvertError, ResourceError};
use crate::xds::resource_type::ResourceType;
use crate::xds::status::{Nack, XdsStatus};

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
}

impl AdsState {
    /// A state that publishes into `store` and reports into `status`.
    pub fn new(node: Node, store: Arc<SnapshotStore>, status: Arc<XdsStatus>) -> Self {
        let snapshot = store.load();
        let types = ResourceType::ALL
            .into_iter()
            .map(|t| (t, TypeState::default()))
            .collect();
        Self {
            node,
            store,
            status,
            snapshot,
            types,
        }
    }

    /// The requests that open a new stream: wildcard CDS and LDS, and EDS
    /// and RDS for the names the current snapshot needs. Versions are the
    /// last accepted ones, so pilot can skip what the proxy already has.
    pub fn start_stream(&mut self) -> Vec<DiscoveryRequest> {
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
                node: Some(self.node.clone()),
                type_url: resp.type_url.clone(),
                response_nonce: resp.nonce.clone(),
                error_detail: Some(error_status(format!("unsupported type {}", resp.type_url))),
                ..DiscoveryRequest::default()
            }];
        };
        self.ts(ty).nonce = resp.nonce.clone();
        match self.build(ty, &resp) {
            Ok(snapshot) => self.accept(ty, &resp, snapshot),
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
        // This client is the store's only writer, so what it loads back is
        // exactly what it published.
        self.store.publish(snapshot);
        self.snapshot = self.store.load();
        self.ts(ty).version = resp.version_info.clone();
        self.status
            .record_ack(resp.type_url.as_str(), &resp.version_info);
        let mut out = vec![self.request(ty, None)];
        // A new CDS or LDS can change which EDS or RDS names are needed.
        let dependent = match ty {
            ResourceType::Cluster => Some((ResourceType::Endpoint, eds_names(&self.snapshot))),
            ResourceType::Listener => Some((ResourceType::Route, rds_names(&self.snapshot))),
            _ => None,
        };
        if let Some((dep, names)) = dependent {
            let ts = self.ts(dep);
            // Envoy's rule: an empty list after a non-empty one unsubscribes;
            // never send an empty first request, which would mean wildcard.
            if ts.names != names && (ts.requested || !names.is_empty()) {
                ts.names = names;
                ts.requested = true;
                out.push(self.request(dep, None));
            } else {
                ts.names = names;
            }
        }
        out
    }

    /// Converts every resource of `resp` and builds the snapshot it leads to.
    fn build(
        &self,
        ty: ResourceType,
        resp: &DiscoveryResponse,
    ) -> Result<Snapshot, Vec<ResourceError>> {
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
                );
                names.extend(new.keys().cloned());
                next.listeners = new;
                let keep = rds_names(&next);
                next.route_configs.retain(|name, _| keep.contains(name));
            }
            ResourceType::Route => {
                let new = convert_all::<RouteConfiguration, RouteConfig>(
                    ty,
                    resp,
                    |r| &r.name,
                    |r| r.name.clone(),
                    &mut errors,
                );
                names.extend(new.keys().cloned());
                next.route_configs.extend(new);
            }
            ResourceType::Cluster => {
                next.clusters = convert_all::<XdsCluster, Cluster>(
                    ty,
                    resp,
                    |c| &c.name,
                    |c| c.name.clone(),
                    &mut errors,
                );
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
                );
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
            Ok(next)
        } else {
            Err(errors)
        }
    }

    /// A request for `ty`: an ACK (or first request) when `error` is `None`,
    /// else a NACK carrying the previous good version.
    fn request(&self, ty: ResourceType, error: Option<String>) -> DiscoveryRequest {
        let ts = self.types.get(&ty).cloned().unwrap_or_default();
        DiscoveryRequest {
            version_info: ts.version,
            node: Some(self.node.clone()),
            resource_names: ts.names.into_iter().collect(),
            type_url: ty.type_url().to_owned(),
            response_nonce: ts.nonce,
            error_detail: error.map(error_status),
            ..DiscoveryRequest::default()
        }
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
                out.insert(key(&m), Arc::new(m));
            }
            Err(error) => errors.push(reject(error)),
        }
    }
    out
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
    snapshot
        .listeners
        .values()
        .flat_map(|l| l.filter_chains.iter().chain(&l.default_filter_chain))
        .filter_map(|fc| match &fc.filter {
            NetworkFilter::Http(hcm) => match &hcm.routes {
                RouteSource::Rds(name) => Some(name.clone()),
                RouteSource::Inline(_) => None,
            },
            NetworkFilter::Tcp(_) => None,
        })
        .collect()
}

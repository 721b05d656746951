//! xDS from the control plane: each input is a sequence of resources
//! (framed by `mesh_fuzz::records`; the kind byte picks Listener,
//! RouteConfiguration, Cluster or ClusterLoadAssignment), each sent to one
//! proxy's ADS state machine (`AdsState::handle`) as a response of its
//! type. That decodes it with prost, converts it to the model (`TryFrom`
//! in `xds::convert`), checks the snapshot across resources (dangling
//! clusters, warming) and publishes or NACKs it. A NACK is the expected
//! answer to a bad resource; a panic is a bug.

#![no_main]

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use libfuzzer_sys::fuzz_target;
use mesh_proxy::model::SnapshotStore;
use mesh_proxy::xds::ads::AdsState;
use mesh_proxy::xds::{ResourceType, XdsStatus};

/// Record kinds, in the order the seeds use them.
const KINDS: [ResourceType; 4] = [
    ResourceType::Listener,
    ResourceType::Route,
    ResourceType::Cluster,
    ResourceType::Endpoint,
];

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(SnapshotStore::new());
    let mut ads = AdsState::new(Node::default(), store, Arc::new(XdsStatus::new()));
    ads.start_stream();
    for (i, (kind, bytes)) in mesh_fuzz::records(data).enumerate().take(16) {
        let ty = KINDS[usize::from(kind) % KINDS.len()];
        let version = i.to_string();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            nonce: version,
            type_url: ty.type_url().to_owned(),
            resources: vec![Any {
                type_url: ty.type_url().to_owned(),
                value: bytes.to_vec(),
            }],
            ..Default::default()
        };
        let requests = ads.handle(response);
        assert!(!requests.is_empty(), "every response is ACKed or NACKed");
    }
});

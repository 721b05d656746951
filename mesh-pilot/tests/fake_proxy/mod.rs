//! A fake proxy on one ADS stream (a tonic client), for the in-process ADS
//! tests: subscribes the way Envoy does, ACKs and NACKs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use mesh_pilot::push::PushContext;
use mesh_pilot::source::snapshot_from_str;
use mesh_pilot::xds::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

/// A push context of `yaml` at `version`.
pub fn push_context(version: u64, yaml: &str) -> Arc<PushContext> {
    let mut snapshot = snapshot_from_str("test.yaml", yaml).expect("valid config");
    snapshot.version = version;
    Arc::new(PushContext::new(Arc::new(snapshot)))
}

/// A protobuf string value.
pub fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

/// A node with LABELS and other string metadata.
pub fn node(id: &str, labels: &[(&str, &str)], meta: &[(&str, &str)]) -> Node {
    let mut fields: HashMap<String, Value> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), string(v)))
        .collect();
    let labels = Struct {
        fields: labels
            .iter()
            .map(|(k, v)| (k.to_string(), string(v)))
            .collect(),
    };
    fields.insert(
        "LABELS".to_string(),
        Value {
            kind: Some(Kind::StructValue(labels)),
        },
    );
    Node {
        id: id.to_string(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

/// A fake proxy on one ADS stream.
pub struct FakeProxy {
    pub node: Node,
    pub tx: mpsc::Sender<DiscoveryRequest>,
    pub rx: tonic::Streaming<DiscoveryResponse>,
}

impl FakeProxy {
    pub async fn connect(addr: std::net::SocketAddr, node: Node) -> FakeProxy {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(16);
        let rx = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("open stream")
            .into_inner();
        FakeProxy { node, tx, rx }
    }

    pub async fn send(&self, type_url: &str, names: &[&str], version: &str, nonce: &str) {
        let req = DiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: type_url.to_string(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: version.to_string(),
            response_nonce: nonce.to_string(),
            ..Default::default()
        };
        self.tx.send(req).await.expect("send");
    }

    pub async fn ack(&self, resp: &DiscoveryResponse, names: &[&str]) {
        self.send(&resp.type_url, names, &resp.version_info, &resp.nonce)
            .await;
    }

    pub async fn nack(&self, resp: &DiscoveryResponse, good_version: &str, reason: &str) {
        let req = DiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: resp.type_url.clone(),
            version_info: good_version.to_string(),
            response_nonce: resp.nonce.clone(),
            error_detail: Some(Status {
                code: 3,
                message: reason.to_string(),
                details: vec![],
            }),
            ..Default::default()
        };
        self.tx.send(req).await.expect("send");
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("a response within 5s")
            .expect("stream ok")
            .expect("stream open")
    }

    /// Receive until a response of `type_url` comes (at most 8 responses).
    pub async fn recv_type(&mut self, type_url: &str) -> DiscoveryResponse {
        for _ in 0..8 {
            let resp = self.recv().await;
            if resp.type_url == type_url {
                return resp;
            }
        }
        panic!("no {type_url} among 8 responses");
    }

    pub async fn expect_silence(&mut self, what: &str) {
        let got = tokio::time::timeout(Duration::from_millis(400), self.rx.message()).await;
        if let Ok(Ok(Some(resp))) = got {
            panic!("{what}: unexpected push of {}", resp.type_url);
        }
    }

    /// Subscribe to everything the way Envoy does and ACK each response.
    pub async fn subscribe_all(&mut self, route_names: &[&str]) -> Vec<DiscoveryResponse> {
        self.send(CLUSTER_TYPE, &[], "", "").await;
        let cds = self.recv().await;
        assert_eq!(cds.type_url, CLUSTER_TYPE);
        self.ack(&cds, &[]).await;
        let eds_names: Vec<String> = cds
            .resources
            .iter()
            .filter_map(|a| {
                envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(a.value.as_slice())
                    .ok()
            })
            .filter(|c| c.eds_cluster_config.is_some())
            .map(|c| c.name)
            .collect();
        let eds_names: Vec<&str> = eds_names.iter().map(String::as_str).collect();
        self.send(ENDPOINT_TYPE, &eds_names, "", "").await;
        let eds = self.recv().await;
        assert_eq!(eds.type_url, ENDPOINT_TYPE);
        assert_eq!(eds.resources.len(), eds_names.len());
        self.ack(&eds, &eds_names).await;
        self.send(LISTENER_TYPE, &[], "", "").await;
        let lds = self.recv().await;
        assert_eq!(lds.type_url, LISTENER_TYPE);
        self.ack(&lds, &[]).await;
        self.send(ROUTE_TYPE, route_names, "", "").await;
        let rds = self.recv().await;
        assert_eq!(rds.type_url, ROUTE_TYPE);
        self.ack(&rds, route_names).await;
        vec![cds, eds, lds, rds]
    }
}

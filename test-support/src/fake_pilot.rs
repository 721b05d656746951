//! A fake pilot for data-plane tests: a tonic ADS server on a port of the
//! test's choosing that the test drives by hand, one [`PilotStream`] per
//! stream a proxy opens (requests in, responses out, nonces counted).

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// How long any single expected event may take.
pub const STEP: Duration = Duration::from_secs(10);

/// One ADS stream as the fake pilot sees it.
pub struct PilotStream {
    requests: mpsc::Receiver<DiscoveryRequest>,
    responses: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    nonce: u32,
}

impl PilotStream {
    /// The next request the proxy sends, or a failed test after [`STEP`].
    pub async fn recv(&mut self) -> DiscoveryRequest {
        tokio::time::timeout(STEP, self.requests.recv())
            .await
            .expect("timed out waiting for a request from the proxy")
            .expect("the proxy closed the stream")
    }

    /// The next request, or `None` once the proxy closed the stream.
    pub async fn recv_or_end(&mut self) -> Option<DiscoveryRequest> {
        self.requests.recv().await
    }

    /// Pushes a response; returns its nonce.
    pub async fn push(&mut self, type_url: &str, version: &str, resources: Vec<Any>) -> String {
        self.nonce += 1;
        let nonce = format!("n{}", self.nonce);
        let response = DiscoveryResponse {
            version_info: version.into(),
            resources,
            type_url: type_url.into(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        self.responses
            .send(Ok(response))
            .await
            .expect("stream gone");
        nonce
    }

    /// Pushes a response and returns the proxy's answer to it (ACK or NACK).
    pub async fn push_and_answer(
        &mut self,
        type_url: &str,
        version: &str,
        resources: Vec<Any>,
    ) -> DiscoveryRequest {
        let nonce = self.push(type_url, version, resources).await;
        let answer = self.recv().await;
        assert_eq!(answer.type_url, type_url, "answer to the {type_url} push");
        assert_eq!(
            answer.response_nonce, nonce,
            "answer carries the response nonce"
        );
        answer
    }

    /// Ends the stream with an error, as a pilot restart would.
    pub async fn fail(self) {
        let _ = self
            .responses
            .send(Err(Status::unavailable("pilot going away")))
            .await;
    }
}

struct FakePilot {
    streams: mpsc::Sender<PilotStream>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for FakePilot {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let mut inbound = request.into_inner();
        let (req_tx, requests) = mpsc::channel(64);
        let (responses, resp_rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                if req_tx.send(r).await.is_err() {
                    break;
                }
            }
        });
        let stream = PilotStream {
            requests,
            responses,
            nonce: 0,
        };
        self.streams
            .send(stream)
            .await
            .map_err(|_| Status::unavailable("test ended"))?;
        Ok(Response::new(ReceiverStream::new(resp_rx)))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented("delta xDS"))
    }
}

/// Start a fake pilot (an ADS server) on `address` until `shutdown`; each
/// stream a proxy opens arrives on the returned channel for the test to drive.
pub async fn start_pilot(
    address: &str,
    shutdown: CancellationToken,
) -> (SocketAddr, mpsc::Receiver<PilotStream>) {
    let (streams_tx, streams) = mpsc::channel(4);
    let pilot_listener = TcpListener::bind(address).await.unwrap();
    let pilot_addr = pilot_listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder().add_service(
        AggregatedDiscoveryServiceServer::new(FakePilot {
            streams: streams_tx,
        }),
    );
    tokio::spawn(async move {
        let incoming = TcpListenerStream::new(pilot_listener);
        let _ = server
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
            .await;
    });
    (pilot_addr, streams)
}

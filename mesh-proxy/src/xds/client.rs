//! xDS stage, transport: the ADS client. Keeps one state-of-the-world gRPC
//! stream open to pilot, hands each response to [`AdsState`] and sends what
//! it answers, and wakes it when a warming listener times out. When pilot goes away it reconnects with bounded exponential
//! backoff; the last good snapshot keeps serving meanwhile.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::model::SnapshotStore;
use crate::xds::ads::AdsState;
use crate::xds::error::XdsError;
use crate::xds::status::XdsStatus;
use mesh_api::node::Node;

/// First reconnect delay, and the delay after a session that got responses.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Requests queued for the stream; ACKs are sent one response at a time, so
/// a handful is plenty.
const REQUEST_QUEUE: usize = 16;
/// Pilot's full configuration can be large.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where pilot is and who this proxy is.
#[derive(Debug, Clone)]
pub struct XdsConfig {
    /// Pilot's ADS address, `host:port` or an `http://` URI.
    pub address: String,
    /// This proxy's identity and metadata.
    pub node: Node,
}

/// Runs the ADS client until `shutdown`, publishing snapshots into `store`.
///
/// Returns an error only for a configuration that can never work (a
/// malformed address); network failures are retried forever.
pub async fn run(
    config: XdsConfig,
    store: Arc<SnapshotStore>,
    status: Arc<XdsStatus>,
    shutdown: CancellationToken,
) -> Result<(), XdsError> {
    let endpoint = endpoint(&config.address)?;
    let mut state = AdsState::new(super::node::to_envoy(&config.node), store, status.clone());
    let mut delay = MIN_BACKOFF;
    loop {
        let mut progressed = false;
        let error = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            e = session(&endpoint, &mut state, &status, &mut progressed) => e,
        };
        status.set_connected(false);
        if progressed {
            delay = MIN_BACKOFF;
        }
        // Jitter keeps a fleet of proxies from reconnecting in lock step.
        let wait = delay.mul_f64(rand::rng().random_range(0.5..1.0));
        tracing::warn!(address = %config.address, %error, retry_in = ?wait, "xDS stream down");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

fn endpoint(address: &str) -> Result<Endpoint, XdsError> {
    let uri = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| XdsError::Address {
        address: address.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10)))
}

/// One ADS stream, from connect to failure. Sets `progressed` once pilot
/// has answered, so the caller can reset its backoff.
async fn session(
    endpoint: &Endpoint,
    state: &mut AdsState,
    status: &XdsStatus,
    progressed: &mut bool,
) -> XdsError {
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(source) => {
            return XdsError::Connect {
                address: endpoint.uri().to_string(),
                source,
            }
        }
    };
    let mut client = AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(REQUEST_QUEUE);
    for request in state.start_stream() {
        // At most four opening requests: they fit the empty queue.
        if tx.try_send(request).is_err() {
            return XdsError::Closed;
        }
    }
    let mut responses = match client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return XdsError::Stream(status),
    };
    status.set_connected(true);
    tracing::info!(address = %endpoint.uri(), "xDS stream open");
    loop {
        let warming = async {
            match state.warming_deadline() {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let message = tokio::select! {
            message = responses.message() => message,
            () = warming => {
                for request in state.expire_warming() {
                    if tx.send(request).await.is_err() {
                        return XdsError::Closed;
                    }
                }
                continue;
            }
        };
        let response = match message {
            Ok(Some(r)) => r,
            Ok(None) => return XdsError::Closed,
            Err(status) => return XdsError::Stream(status),
        };
        *progressed = true;
        for request in state.handle(response) {
            if tx.send(request).await.is_err() {
                return XdsError::Closed;
            }
        }
    }
}

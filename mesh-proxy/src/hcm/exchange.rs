//! The state of one request between the HCM's stages (HCM ─► request ─►
//! filters ─► router): the connection it came on, what the access log will
//! say about it, and what the filters left for the response.

use std::sync::Arc;

use http::header::HeaderMap;
use http::request::Parts;
use tokio_util::sync::CancellationToken;

use super::body::Replay;
use super::fault::ActiveFault;
use super::forwarded::Client;
use crate::access_log::StreamInfo;
use crate::data_plane::{DataPlane, Downstream};
use crate::model::HttpConnectionManager;

/// What a request handler needs from its connection.
#[derive(Debug)]
pub struct HttpConnection {
    /// Shared data plane state (snapshot store, clusters, pools).
    pub data_plane: Arc<DataPlane>,
    /// The connection manager of the chain this connection was accepted on.
    pub hcm: HttpConnectionManager,
    /// Addresses of the downstream connection.
    pub downstream: Downstream,
}

/// The request as the stages after routing see it.
pub struct Exchange<'a> {
    /// The connection.
    pub conn: &'a Arc<HttpConnection>,
    /// What the access log will say.
    pub info: StreamInfo,
    /// Who the client is.
    pub client: Client,
    /// A gRPC request (local replies in gRPC's shape).
    pub grpc: bool,
    /// The request head as it came (after the HCM's own header work), for
    /// the access log and header formatters.
    pub logged: Option<Parts>,
    /// Headers the CORS filter adds to the response.
    pub cors: Option<HeaderMap>,
    /// Held until the response is done (`max_active_faults`).
    pub fault: Option<ActiveFault>,
    /// The request body, for the bytes the log reports.
    pub body_stats: Option<Replay>,
    /// The connection's drain signal.
    pub drain: CancellationToken,
}

//! The ADS methods on the wire, without tonic's message encoder. tonic encodes each response into one buffer per stream that
//! keeps the capacity of the largest response for the stream's life (a
//! megabyte per proxy in a mesh of a thousand services), and copies every
//! resource into it. Here a response is written as gRPC frames straight
//! from the resources' pre-encoded bytes (`Packed::wire`, shared by every
//! stream): small pieces are gathered into chunks of [`CHUNK`] bytes, big
//! resources go out as they are, and the next response is taken from the
//! stream task only when the transport asks for more, so a stream holds at
//! most one chunk in flight. Delta responses are written the same way from
//! each resource's `Resource` encoding (`Packed::delta_wire`, made once).
//! Requests are decoded by tonic's `Streaming`.
//!
//! ```text
//!  POST .../StreamAggregatedResources ─► Streaming<DiscoveryRequest> ──► AdsStream<Connection>
//!  POST .../DeltaAggregatedResources  ─► Streaming<DeltaDiscoveryRequest> ► AdsStream<DeltaConnection>
//!              ◄─ WireBody: gRPC frames ◄─ Outgoing / DeltaOutgoing (Arcs of Packed) ◄─┘
//!  any other path ─► UNIMPLEMENTED
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};
use http_body::Frame;
use prost::Message;
use tokio::sync::mpsc;
use tonic::codec::{Codec, Streaming};
use tonic::server::NamedService;
use tonic::Status;
use tracing::Instrument;

use super::connection::{Connection, Outgoing};
use super::delta::{DeltaConnection, DeltaOutgoing};
use super::server::{AdsServer, Protocol};

const SERVICE: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
/// The state-of-the-world method's path.
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
/// The incremental method's path.
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
/// Gathered pieces are sent in chunks of about this many bytes.
pub const CHUNK: usize = 64 * 1024;
/// Largest request accepted (tonic's default).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// The ADS service of an [`AdsServer`].
#[derive(Clone)]
pub struct AdsService {
    server: AdsServer,
}

impl AdsService {
    /// The service of `server`.
    pub fn new(server: AdsServer) -> AdsService {
        AdsService { server }
    }

    /// Start a stream task of protocol `P` for `req`; its body.
    fn serve<P>(
        &self,
        req: http::Request<tonic::body::Body>,
        kind: &'static str,
    ) -> WireBody<P::Out>
    where
        P: Protocol,
        P::Out: Framed,
    {
        let peer = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|i| i.remote_addr());
        let mut codec = tonic_prost::ProstCodec::<P::Req, P::Req>::default();
        let requests =
            Streaming::new_request(codec.decoder(), req.into_body(), None, Some(MAX_REQUEST));
        let (stream, rx) = self.server.stream::<P>();
        let span = tracing::info_span!("ads", kind, id = stream.id, peer = ?peer);
        tokio::spawn(stream.run(requests).instrument(span));
        WireBody::new(rx)
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for AdsService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let body = match req.uri().path() {
            SOTW_PATH => tonic::body::Body::new(self.serve::<Connection>(req, "sotw")),
            DELTA_PATH => tonic::body::Body::new(self.serve::<DeltaConnection>(req, "delta")),
            other => {
                let status = Status::unimplemented(format!("no method {other}"));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(body)
            .unwrap_or_else(|_| http::Response::new(tonic::body::Body::empty()));
        Box::pin(async move { Ok(response) })
    }
}

/// A response that can be written as gRPC frames of shared bytes.
pub trait Framed: Send + 'static {
    /// The message's chunks (see [`frame`]).
    fn frame(&self) -> VecDeque<Bytes>;
}

impl Framed for Outgoing {
    fn frame(&self) -> VecDeque<Bytes> {
        // Protobuf fields may come in any order: the strings first, then
        // one `resources` entry per resource.
        let head = DiscoveryResponse {
            version_info: self.version_info.clone(),
            type_url: self.type_url.clone(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        frame(head, self.resources.iter().map(|p| &p.wire))
    }
}

impl Framed for DeltaOutgoing {
    fn frame(&self) -> VecDeque<Bytes> {
        let head = DeltaDiscoveryResponse {
            system_version_info: self.system_version_info.clone(),
            type_url: self.type_url.clone(),
            nonce: self.nonce.clone(),
            removed_resources: self.removed.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        frame(head, self.resources.iter().map(|(n, p)| p.delta_wire(n)))
    }
}

/// One gRPC frame as chunks: the 5-byte prefix and the message's head
/// gathered with the pieces up to [`CHUNK`] bytes, pieces larger than that
/// as they are (shared, not copied).
pub fn frame<'a>(
    head: Vec<u8>,
    pieces: impl Iterator<Item = &'a Bytes> + Clone,
) -> VecDeque<Bytes> {
    let len = head.len() + pieces.clone().map(Bytes::len).sum::<usize>();
    let mut chunks = VecDeque::new();
    let mut buf = BytesMut::with_capacity(CHUNK.min(5 + len));
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    buf.put_slice(&head);
    for piece in pieces {
        if piece.len() >= CHUNK {
            if !buf.is_empty() {
                chunks.push_back(buf.split().freeze());
            }
            chunks.push_back(piece.clone());
            continue;
        }
        if buf.len() + piece.len() > CHUNK {
            chunks.push_back(buf.split().freeze());
            buf.reserve(CHUNK);
        }
        buf.put_slice(piece);
    }
    if !buf.is_empty() {
        chunks.push_back(buf.freeze());
    }
    chunks
}

/// The response body of one stream: gRPC frames of the responses its task
/// decides, then the trailers.
pub struct WireBody<O> {
    rx: mpsc::Receiver<Result<O, Status>>,
    chunks: VecDeque<Bytes>,
    done: bool,
}

impl<O> WireBody<O> {
    /// A body sending what arrives on `rx`.
    pub fn new(rx: mpsc::Receiver<Result<O, Status>>) -> WireBody<O> {
        WireBody {
            rx,
            chunks: VecDeque::new(),
            done: false,
        }
    }
}

fn trailers(status: &Status) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", http::HeaderValue::from_static("13"));
    }
    map
}

impl<O: Framed> http_body::Body for WireBody<O> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(out))) => {
                self.chunks = out.frame();
                let first = self.chunks.pop_front().unwrap_or_default();
                Poll::Ready(Some(Ok(Frame::data(first))))
            }
            Poll::Ready(Some(Err(status))) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::trailers(trailers(&Status::ok(""))))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::xds::Packed;
    use envoy_types::pb::google::protobuf::Any;

    fn packed(size: usize, fill: u8) -> Arc<Packed> {
        Arc::new(Packed::from_any(Any {
            type_url: "type.googleapis.com/t".into(),
            value: vec![fill; size],
        }))
    }

    #[test]
    fn frames_decode_as_the_response_tonic_would_send() {
        let out = Outgoing {
            version_info: "7".into(),
            resources: vec![
                packed(10, 1),
                packed(CHUNK + 5, 2),
                packed(40_000, 3),
                packed(40_000, 4),
            ],
            type_url: "type.googleapis.com/t".into(),
            nonce: "3".into(),
        };
        let chunks = out.frame();
        assert!(
            chunks.iter().all(|c| c.len() <= CHUNK + 200),
            "bounded chunks"
        );
        // The big resource is sent from its shared bytes, not copied.
        assert!(chunks
            .iter()
            .any(|c| c.as_ptr() == out.resources[1].wire.as_ptr()));
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(all[0], 0, "not compressed");
        let len = u32::from_be_bytes([all[1], all[2], all[3], all[4]]) as usize;
        assert_eq!(len, all.len() - 5);
        let decoded = DiscoveryResponse::decode(&all[5..]).unwrap();
        assert_eq!(decoded, out.clone().into_response());
    }

    #[test]
    fn delta_frames_decode_as_the_response_tonic_would_send() {
        let out = DeltaOutgoing {
            system_version_info: "4".into(),
            resources: vec![
                (Arc::from("a"), packed(10, 1)),
                (Arc::from("b"), packed(CHUNK, 2)),
            ],
            removed: vec!["gone".into()],
            type_url: "type.googleapis.com/t".into(),
            nonce: "9".into(),
        };
        let all: Vec<u8> = out.frame().iter().flat_map(|c| c.iter().copied()).collect();
        let len = u32::from_be_bytes([all[1], all[2], all[3], all[4]]) as usize;
        assert_eq!(len, all.len() - 5);
        let decoded = DeltaDiscoveryResponse::decode(&all[5..]).unwrap();
        assert_eq!(decoded, out.clone().into_response());
    }
}

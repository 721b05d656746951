//! gRPC framing for the ADS streams, without tonic's codec. tonic's
//! encoder copies every resource into one buffer per stream that keeps the
//! capacity of the largest response for the stream's life (a megabyte per
//! proxy in a mesh of a thousand services), and its decoder does the same
//! with the largest request (a state-of-the-world EDS ACK repeats
//! thousands of names).
//!
//! - [`WireBody`] writes a stream's responses as gRPC frames straight from
//!   the resources' pre-encoded bytes (`Packed::wire`, or
//!   `Packed::delta_wire` for delta, each made once and shared by every
//!   stream): small pieces are gathered into chunks of [`CHUNK`] bytes, big
//!   resources go out as they are, and the next response is taken from the
//!   stream task only when the transport asks for more.
//! - [`Requests`] reads the request frames and lets a large buffer go once
//!   its message is decoded.
//!
//! ```text
//!  request body ─► Requests<R> ─► stream task (server.rs) ─► Outgoing / DeltaOutgoing
//!                                                                 │ (Arcs of Packed)
//!  response body ◄─ WireBody: prefix + head + shared resource bytes ◄┘, then trailers
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};
use http_body::{Body as _, Frame};
use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;

use super::connection::Outgoing;
use super::delta::DeltaOutgoing;

/// Gathered pieces are sent in chunks of about this many bytes.
pub const CHUNK: usize = 64 * 1024;
/// Largest request accepted (tonic's default).
pub const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// A read buffer larger than this is let go once what it holds is small.
const KEEP_BUFFER: usize = 16 * 1024;

/// The requests of one stream, decoded from its request body's gRPC
/// frames (uncompressed, at most [`MAX_REQUEST`] bytes each).
pub struct Requests<R> {
    body: tonic::body::Body,
    buf: BytesMut,
    ended: bool,
    _req: PhantomData<fn() -> R>,
}

impl<R> Requests<R> {
    /// The requests in `body`.
    pub fn new(body: tonic::body::Body) -> Requests<R> {
        Requests {
            body,
            buf: BytesMut::new(),
            ended: false,
            _req: PhantomData,
        }
    }
}

impl<R: Message + Default> Requests<R> {
    /// The next whole message in the buffer, if there is one.
    fn take(&mut self) -> Option<Result<R, Status>> {
        if self.buf.len() < 5 {
            return None;
        }
        if self.buf[0] != 0 {
            return Some(Err(Status::unimplemented(
                "compressed requests are not accepted",
            )));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_REQUEST {
            return Some(Err(Status::resource_exhausted(format!(
                "request of {len} bytes, more than the {MAX_REQUEST} accepted"
            ))));
        }
        if self.buf.len() < 5 + len {
            self.buf.reserve(5 + len - self.buf.len());
            return None;
        }
        let msg = R::decode(&self.buf[5..5 + len])
            .map_err(|e| Status::invalid_argument(format!("undecodable request: {e}")));
        self.buf.advance(5 + len);
        if self.buf.capacity() > KEEP_BUFFER && self.buf.len() <= KEEP_BUFFER / 2 {
            // Keep what is left of the next message, not the allocation.
            self.buf = BytesMut::from(&self.buf[..]);
        }
        Some(msg)
    }
}

impl<R: Message + Default> futures::Stream for Requests<R> {
    type Item = Result<R, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(msg) = self.take() {
                if msg.is_err() {
                    self.ended = true;
                    self.buf.clear();
                }
                return Poll::Ready(Some(msg));
            }
            if self.ended {
                if self.buf.is_empty() {
                    return Poll::Ready(None);
                }
                self.buf.clear();
                return Poll::Ready(Some(Err(Status::invalid_argument("truncated request"))));
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.ended = true,
                Poll::Ready(Some(Err(status))) => {
                    self.ended = true;
                    self.buf.clear();
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
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

    fn body_of(chunks: Vec<Vec<u8>>) -> tonic::body::Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
        tonic::body::Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )))
    }

    fn grpc_frame(msg: &impl Message) -> Vec<u8> {
        let bytes = msg.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out
    }

    #[tokio::test]
    async fn requests_split_anywhere_decode_and_big_buffers_are_let_go() {
        use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
        use futures::StreamExt;
        let small = DiscoveryRequest {
            type_url: "t".into(),
            ..Default::default()
        };
        let big = DiscoveryRequest {
            resource_names: (0..5000)
                .map(|i| format!("outbound|80||svc-{i}.ns"))
                .collect(),
            ..Default::default()
        };
        let mut wire = grpc_frame(&small);
        wire.extend(grpc_frame(&big));
        wire.extend(grpc_frame(&small));
        // Split at awkward places: inside a prefix, inside a message.
        let chunks = vec![
            wire[..3].to_vec(),
            wire[3..200].to_vec(),
            wire[200..].to_vec(),
        ];
        let mut requests = Requests::<DiscoveryRequest>::new(body_of(chunks));
        assert_eq!(requests.next().await.unwrap().unwrap(), small);
        assert_eq!(requests.next().await.unwrap().unwrap(), big);
        assert!(
            requests.buf.capacity() <= KEEP_BUFFER,
            "the big buffer is let go"
        );
        assert_eq!(requests.next().await.unwrap().unwrap(), small);
        assert!(requests.next().await.is_none());

        // A truncated message and a compressed one are errors, not panics.
        let mut cut =
            Requests::<DiscoveryRequest>::new(body_of(vec![grpc_frame(&big)[..50].to_vec()]));
        assert!(cut.next().await.unwrap().is_err());
        let mut zipped = grpc_frame(&small);
        zipped[0] = 1;
        let mut compressed = Requests::<DiscoveryRequest>::new(body_of(vec![zipped]));
        assert!(compressed.next().await.unwrap().is_err());
        assert!(compressed.next().await.is_none());
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

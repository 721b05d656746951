//! Bodies on the request path. Upstream: [`Replay`], the downstream body
//! read once and kept (up to the buffer limit) so that retries and mirrors
//! can send it again. Downstream: [`Tail`], the response body with the
//! route's timeouts applied and its bytes counted, which writes the access
//! log when it ends.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::error::BoxError;

/// Envoy's per-request buffer limit when none is configured.
pub const DEFAULT_BUFFER_LIMIT: u64 = 1024 * 1024;

#[derive(Debug)]
struct Shared {
    source: Incoming,
    /// Chunks kept, from `base` on.
    chunks: Vec<Bytes>,
    /// How many chunks were let go (past the limit).
    base: usize,
    size: u64,
    limit: u64,
    overflowed: bool,
    trailers: Option<HeaderMap>,
    done: bool,
    failed: bool,
    exact: Option<u64>,
    done_at: Option<Instant>,
    waiting: Vec<Waker>,
}

impl Shared {
    fn wake_all(&mut self) {
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

/// The downstream request body, read once, replayable while it fits.
#[derive(Debug, Clone)]
pub struct Replay {
    shared: Arc<Mutex<Shared>>,
}

impl Replay {
    /// Keep up to `limit` bytes of `body` (0: keep nothing).
    pub fn new(body: Incoming, limit: u64) -> Self {
        let exact = body.size_hint().exact();
        // A request without a body is whole from the start.
        let done = body.is_end_stream();
        Self {
            shared: Arc::new(Mutex::new(Shared {
                source: body,
                chunks: Vec::new(),
                base: 0,
                size: 0,
                limit,
                overflowed: limit == 0,
                trailers: None,
                done,
                failed: false,
                exact,
                done_at: done.then(Instant::now),
                waiting: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A reader from the first byte (for an attempt or a mirror).
    pub fn reader(&self) -> ReplayReader {
        ReplayReader {
            shared: self.shared.clone(),
            position: 0,
            trailers_sent: false,
        }
    }

    /// Whether a new reader can still get the whole body.
    pub fn replayable(&self) -> bool {
        let shared = self.lock();
        !shared.overflowed && shared.base == 0
    }

    /// Bytes read from the client so far.
    pub fn received(&self) -> u64 {
        self.lock().size
    }

    /// When the client's body was read whole.
    pub fn done_at(&self) -> Option<Instant> {
        self.lock().done_at
    }

    /// Whether reading the client's body failed (broken framing, a reset).
    pub fn failed(&self) -> bool {
        self.lock().failed
    }

    /// Read the body's first frame into the buffer if it comes within
    /// `within`, before any upstream is contacted, so that a body that is
    /// malformed from its first byte is refused without touching the
    /// upstream. The frame is kept for the first reader even past the
    /// buffer limit.
    pub async fn prefetch(&self, within: std::time::Duration) {
        let poll = std::future::poll_fn(|cx| {
            let mut shared = self.lock();
            if shared.done || shared.failed || !shared.chunks.is_empty() || shared.base > 0 {
                return Poll::Ready(());
            }
            match Pin::new(&mut shared.source).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    match frame.into_data() {
                        Ok(data) => {
                            shared.size += data.len() as u64;
                            if shared.size > shared.limit {
                                shared.overflowed = true;
                            }
                            shared.chunks.push(data);
                        }
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                shared.trailers = Some(trailers);
                                shared.done = true;
                                shared.done_at = Some(Instant::now());
                            }
                        }
                    }
                    Poll::Ready(())
                }
                Poll::Ready(Some(Err(_))) => {
                    shared.failed = true;
                    Poll::Ready(())
                }
                Poll::Ready(None) => {
                    shared.done = true;
                    shared.done_at = Some(Instant::now());
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            }
        });
        let _ = tokio::time::timeout(within, poll).await;
    }
}

/// One reading of a [`Replay`].
#[derive(Debug)]
pub struct ReplayReader {
    shared: Arc<Mutex<Shared>>,
    position: usize,
    trailers_sent: bool,
}

impl Drop for ReplayReader {
    fn drop(&mut self) {
        // Another reader may be waiting for data this one would have pulled.
        if let Ok(mut shared) = self.shared.lock() {
            shared.wake_all();
        }
    }
}

impl Body for ReplayReader {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let mut shared = this
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if this.position < shared.base || shared.failed {
            // What this reader still needs was let go, or the client's body
            // broke: it can never complete. Its owner's timeout ends it.
            return Poll::Pending;
        }
        let index = this.position - shared.base;
        if let Some(chunk) = shared.chunks.get(index) {
            this.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
        }
        if shared.done {
            if !this.trailers_sent {
                this.trailers_sent = true;
                if let Some(trailers) = shared.trailers.clone() {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
            return Poll::Ready(None);
        }
        match Pin::new(&mut shared.source).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        shared.size += data.len() as u64;
                        if !shared.overflowed && shared.size <= shared.limit {
                            shared.chunks.push(data.clone());
                        } else {
                            shared.overflowed = true;
                            let kept = shared.chunks.len();
                            shared.chunks.clear();
                            shared.base += kept + 1;
                        }
                        this.position += 1;
                        Frame::data(data)
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => {
                            shared.trailers = Some(trailers.clone());
                            shared.done = true;
                            shared.done_at = Some(Instant::now());
                            this.trailers_sent = true;
                            Frame::trailers(trailers)
                        }
                        Err(_) => {
                            shared.wake_all();
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    },
                };
                shared.wake_all();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                shared.failed = true;
                shared.wake_all();
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                shared.done = true;
                shared.done_at = Some(Instant::now());
                this.trailers_sent = true;
                shared.wake_all();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !shared.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    shared.waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shared.done
            && self.position >= shared.base + shared.chunks.len()
            && (self.trailers_sent || shared.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match shared.exact {
            Some(n) if self.position == 0 => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Why a response body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The route's timeout ran out while the body was streaming.
    #[error("upstream timeout while streaming the response")]
    Timeout,
    /// No data for longer than the idle timeout.
    #[error("stream idle timeout while streaming the response")]
    Idle,
    /// The upstream's body failed.
    #[error("upstream body: {0}")]
    Upstream(BoxError),
}

/// How a response body ended.
#[derive(Debug, Clone, Copy)]
pub enum TailEnd<'a> {
    /// Sent whole.
    Complete,
    /// Cut off by the proxy or the upstream.
    Cut(&'a TailError),
    /// Dropped before its end: the client went away.
    Dropped,
}

/// Called once when a response body ends, with what it saw.
pub trait TailDone: Send {
    /// `bytes` sent, the trailers, and how it ended.
    fn done(self: Box<Self>, bytes: u64, trailers: Option<&HeaderMap>, end: TailEnd<'_>);
}

/// The response body sent downstream, with deadline, idle timer and
/// byte count.
pub struct Tail<B: Body> {
    inner: B,
    deadline: Option<Pin<Box<Sleep>>>,
    idle: Option<(Pin<Box<Sleep>>, std::time::Duration)>,
    bytes: u64,
    trailers: Option<HeaderMap>,
    done: Option<Box<dyn TailDone>>,
}

impl<B: Body> Tail<B> {
    /// Wrap `inner`; `deadline` cuts it off at that instant, `idle` after
    /// that long without data.
    pub fn new(
        inner: B,
        deadline: Option<tokio::time::Instant>,
        idle: Option<std::time::Duration>,
        done: Option<Box<dyn TailDone>>,
    ) -> Self {
        Self {
            inner,
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            idle: idle.map(|d| (Box::pin(tokio::time::sleep(d)), d)),
            bytes: 0,
            trailers: None,
            done,
        }
    }

    fn finish(&mut self, end: TailEnd<'_>) {
        if let Some(done) = self.done.take() {
            done.done(self.bytes, self.trailers.as_ref(), end);
        }
    }
}

impl<B: Body> Drop for Tail<B> {
    fn drop(&mut self) {
        // hyper drops a body it knows has ended without polling it to its
        // end; any other drop is the client going away.
        if self.inner.is_end_stream() {
            self.finish(TailEnd::Complete);
        } else {
            self.finish(TailEnd::Dropped);
        }
    }
}

impl<B> Body for Tail<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if let Some(trailers) = frame.trailers_ref() {
                    this.trailers = Some(trailers.clone());
                }
                if let Some((sleep, every)) = &mut this.idle {
                    sleep.as_mut().reset(tokio::time::Instant::now() + *every);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(error))) => {
                let error = TailError::Upstream(error.into());
                this.finish(TailEnd::Cut(&error));
                return Poll::Ready(Some(Err(Box::new(error))));
            }
            Poll::Ready(None) => {
                this.finish(TailEnd::Complete);
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                let error = TailError::Timeout;
                this.finish(TailEnd::Cut(&error));
                return Poll::Ready(Some(Err(Box::new(error))));
            }
        }
        if let Some((sleep, _)) = &mut this.idle {
            if sleep.as_mut().poll(cx).is_ready() {
                let error = TailError::Idle;
                this.finish(TailEnd::Cut(&error));
                return Poll::Ready(Some(Err(Box::new(error))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;

//! Greeter against real sockets on loopback: a fake messenger, a fake proxy
//! that records what it was sent, and a closed port.

use std::sync::{Arc, Mutex};

use hyper::header::HeaderValue;
use tokio::net::TcpListener;

use super::*;
use crate::server::{serve, Handler};

/// Records the request target and headers, answers with a fixed text.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl Handler for Recorder {
    async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((req.uri().to_string(), req.headers().clone()));
        }
        respond(StatusCode::OK, "text/plain", "via the proxy\n")
    }
}

async fn start<H: Handler>(handler: H) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(addr, handler, async move {
        let _ = rx.await;
    }));
    // The listener is bound inside serve; give it a moment.
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (addr, tx)
}

#[tokio::test]
async fn fetches_the_message_directly() {
    let (addr, _stop) = start(crate::messenger::Messenger::new("Hello from messenger v1")).await;
    let greeter = Greeter::new(&format!("http://{addr}/message"), None, DEFAULT_TIMEOUT).unwrap();
    let msg = greeter.fetch(&HeaderMap::new()).await;
    assert_eq!(msg, Message::Text("Hello from messenger v1".into()));
}

#[tokio::test]
async fn goes_through_the_proxy_in_absolute_form_with_trace_headers() {
    let recorder = Recorder::default();
    let (addr, _stop) = start(recorder.clone()).await;
    let greeter = Greeter::new(
        DEFAULT_MESSENGER_URL,
        Some(&format!("http://{addr}")),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("req-42"));
    headers.insert(
        "traceparent",
        HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    headers.insert("cookie", HeaderValue::from_static("secret"));
    let msg = greeter.fetch(&headers).await;
    assert_eq!(msg, Message::Text("via the proxy".into()));

    let seen = recorder.seen.lock().unwrap();
    let (target, got) = &seen[0];
    assert_eq!(target, "http://messenger:9080/message");
    assert_eq!(got.get("x-request-id").unwrap(), "req-42");
    assert!(got.get("traceparent").is_some());
    assert!(got.get("cookie").is_none());
}

#[tokio::test]
async fn unreachable_messenger_gives_a_reason() {
    // Bind then drop to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let greeter = Greeter::new(&format!("http://{addr}/message"), None, DEFAULT_TIMEOUT).unwrap();
    match greeter.fetch(&HeaderMap::new()).await {
        Message::Unavailable(reason) => assert!(!reason.is_empty()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn error_status_is_a_failure() {
    let (addr, _stop) = start(crate::messenger::Messenger::new("x")).await;
    let greeter = Greeter::new(&format!("http://{addr}/missing"), None, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(
        greeter.fetch(&HeaderMap::new()).await,
        Message::Unavailable("HTTP 404 Not Found".into())
    );
}

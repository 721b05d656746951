//! Debug HTTP server (`--debug-address`): a window on the flow, the config
//! the source holds (`/debug/configz`), what the current push has built and
//! shared (`/debug/pushz`) and what each proxy has been sent and ACKed
//! (`/debug/syncz`). JSON shapes per docs/architecture.md.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_api::ConfigError;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;

use crate::error::ServeError;
use crate::source::ConfigSnapshot;
use crate::xds::cache::PushCaches;
use crate::xds::connection::SyncStatus;
use crate::xds::server::SyncTable;

/// What the debug endpoints read.
#[derive(Debug, Clone)]
pub struct DebugState {
    /// The latest config snapshot (before debouncing: what the pilot holds).
    pub config: watch::Receiver<Arc<ConfigSnapshot>>,
    /// Per-stream sync state.
    pub sync: SyncTable,
    /// The ADS server's per-push caches.
    pub caches: PushCaches,
}

#[derive(Serialize)]
struct Configz<'a> {
    version: String,
    objects: Vec<ObjectJson<'a>>,
    /// Each a JSON object: file, line, object, path, kind, message.
    errors: &'a [ConfigError],
}

#[derive(Serialize)]
struct ObjectJson<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    file: &'a str,
    spec: serde_json::Value,
}

/// Most objects (configz), errors (configz) or streams (syncz) one answer
/// holds; `?offset=N&limit=M` pages through more (the `x-total-count` and
/// `x-next-offset` headers say how many there are and where the next page
/// starts).
pub const MAX_PAGE: usize = 5000;

/// Which part of a list an answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Index of the first entry.
    pub offset: usize,
    /// How many at most (capped at [`MAX_PAGE`]).
    pub limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: MAX_PAGE,
        }
    }
}

impl Page {
    /// The page a query string asks for (`offset=N&limit=M`, both optional).
    pub fn from_query(query: Option<&str>) -> Page {
        let mut page = Page::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match (key.as_ref(), value.parse::<usize>()) {
                ("offset", Ok(n)) => page.offset = n,
                ("limit", Ok(n)) => page.limit = n.min(MAX_PAGE),
                _ => {}
            }
        }
        page
    }

    fn range(&self, len: usize) -> std::ops::Range<usize> {
        let start = self.offset.min(len);
        start..start.saturating_add(self.limit).min(len)
    }

    /// The next page's offset when `len` entries do not all fit.
    fn next(&self, len: usize) -> Option<usize> {
        let end = self.range(len).end;
        (end < len).then_some(end)
    }
}

/// The `/debug/configz` document (everything up to [`MAX_PAGE`]).
pub fn configz(config: &ConfigSnapshot) -> serde_json::Value {
    configz_page(config, Page::default())
}

/// One page of `/debug/configz`: objects and errors from `page.offset`.
pub fn configz_page(config: &ConfigSnapshot, page: Page) -> serde_json::Value {
    let doc = Configz {
        version: config.version.to_string(),
        objects: config.objects[page.range(config.objects.len())]
            .iter()
            .map(|o| ObjectJson {
                kind: o.kind(),
                namespace: o.namespace(),
                name: o.name(),
                file: &o.file,
                spec: o.spec_json(),
            })
            .collect(),
        errors: &config.errors[page.range(config.errors.len())],
    };
    serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
}

/// The `/debug/syncz` document (up to [`MAX_PAGE`] streams).
pub fn syncz(sync: &SyncTable) -> serde_json::Value {
    syncz_page(&sync.list(), Page::default())
}

fn syncz_page(list: &[SyncStatus], page: Page) -> serde_json::Value {
    serde_json::to_value(&list[page.range(list.len())]).unwrap_or(serde_json::Value::Null)
}

/// The `/debug/pushz` document: builds and hits per shared family in the
/// latest push.
pub fn pushz(caches: &PushCaches) -> serde_json::Value {
    serde_json::to_value(caches.latest().stats()).unwrap_or(serde_json::Value::Null)
}

fn route(state: &DebugState, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let page = Page::from_query(req.uri().query());
    let (body, total) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/debug/configz") => {
            let config = state.config.borrow();
            let total = config.objects.len().max(config.errors.len());
            (configz_page(&config, page), Some(total))
        }
        (&Method::GET, "/debug/syncz") => {
            let list = state.sync.list();
            (syncz_page(&list, page), Some(list.len()))
        }
        (&Method::GET, "/debug/pushz") => (pushz(&state.caches), None),
        (&Method::GET, _) => return text(StatusCode::NOT_FOUND, "not found\n"),
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n"),
    };
    let mut json = serde_json::to_vec_pretty(&body).unwrap_or_default();
    json.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(json)));
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(total) = total {
        headers.insert("x-total-count", http::HeaderValue::from(total));
        if let Some(next) = page.next(total) {
            headers.insert("x-next-offset", http::HeaderValue::from(next));
        }
    }
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

/// Serve the debug endpoints on `addr` until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    state: DebugState,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(%addr, "debug server listening");
    serve_on(listener, state, shutdown).await
}

/// Serve on an already bound listener until `shutdown` turns true.
pub async fn serve_on(
    listener: TcpListener,
    state: DebugState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Running out of descriptors is transient; keep serving.
                    tracing::warn!(error = %e, "debug accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::drained(&mut shutdown) => return Ok(()),
        };
        let state = state.clone();
        let mut conn_shutdown = shutdown.clone();
        let span = tracing::debug_span!("debug", %peer);
        tokio::spawn(
            async move {
                let svc = service_fn(move |req| {
                    let resp = route(&state, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    res = conn => if let Err(e) = res {
                        tracing::debug!(error = %e, "debug connection ended");
                    },
                    _ = crate::drained(&mut conn_shutdown) => {}
                }
            }
            .instrument(span),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::PushContext;
    use crate::source::snapshot_from_str;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: ns1}\nspec:\n  hosts: [a.example.com]\n  http: [{route: [{destination: {host: a.example.com}}]}]\n";

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn serves_configz_and_syncz_as_json() {
        let mut snap = snapshot_from_str("/cfg/r.yaml", VS).unwrap();
        snap.version = 7;
        snap.errors = vec![ConfigError::new(
            "/cfg/bad.yaml",
            mesh_api::ErrorKind::MissingField,
            "spec.servers",
            "missing required field",
        )
        .at_line(Some(4))
        .for_object(Some("Gateway/default/g".into()))];
        let snap = Arc::new(snap);
        let (_push_tx, push) = watch::channel(Arc::new(PushContext::new(snap.clone())));
        let (_tx, config) = watch::channel(snap);
        let (stop_tx, stop) = watch::channel(false);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = DebugState {
            config,
            sync: SyncTable::default(),
            caches: PushCaches::new(push),
        };
        let server = tokio::spawn(serve_on(listener, state, stop));

        let (status, body) = get(addr, "/debug/configz").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["version"], "7");
        assert_eq!(
            json["errors"][0],
            serde_json::json!({
                "file": "/cfg/bad.yaml",
                "line": 4,
                "object": "Gateway/default/g",
                "path": "spec.servers",
                "kind": "MissingField",
                "message": "missing required field",
            })
        );
        let obj = &json["objects"][0];
        assert_eq!(
            (&obj["kind"], &obj["namespace"], &obj["name"], &obj["file"]),
            (
                &"VirtualService".into(),
                &"ns1".into(),
                &"r".into(),
                &"/cfg/r.yaml".into()
            )
        );
        assert_eq!(obj["spec"]["hosts"][0], "a.example.com");

        let (status, body) = get(addr, "/debug/syncz").await;
        assert_eq!((status, body.trim()), (200, "[]"));
        let (status, body) = get(addr, "/debug/pushz").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["version"], "7");
        assert_eq!(json["own_builds"], 0);
        assert_eq!(
            json["shared"]["routes"],
            serde_json::json!({"builds": 0, "hits": 0, "scopes": 0})
        );
        assert_eq!(get(addr, "/nope").await.0, 404);

        stop_tx.send_replace(true);
        server.await.unwrap().unwrap();
    }
}

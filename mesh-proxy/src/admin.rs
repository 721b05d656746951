//! Admin server (DESIGN.md, data plane; localhost only, default
//! 127.0.0.1:15000): readiness and a view of the applied config for people
//! and tests. Reads the [`SnapshotStore`] and the xDS [`XdsStatus`]; never
//! changes anything.
//!
//! - `GET /ready`: 200 `LIVE` once listeners and clusters were applied and
//!   the listeners warmed (their routes and endpoints arrived), 503 before.
//! - `GET /config_dump`: JSON `{"snapshot", "acked", "nacks", "last_nack",
//!   "connected", "warming_listeners"}`; the snapshot's listeners are the
//!   ones serving.
//! - `GET /listeners`, `GET /clusters`: one line per resource, Envoy style.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::model::{Discovery, SnapshotStore};
use crate::xds::XdsStatus;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The applied snapshot.
    pub store: Arc<SnapshotStore>,
    /// What xDS accepted and rejected.
    pub status: Arc<XdsStatus>,
}

/// Serves the admin endpoints on `listener` until `shutdown`; open
/// connections are closed gracefully.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                // Usually EMFILE: back off briefly instead of spinning.
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let response = handle(req.method(), req.uri().path(), &state);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "admin connection ended");
            }
        });
    }
}

/// Answers one admin request.
pub fn handle(method: &Method, path: &str, state: &AdminState) -> Response<Full<Bytes>> {
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match path {
        "/ready" if state.status.ready() => text(StatusCode::OK, "LIVE\n".into()),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "PRE_INITIALIZING\n".into()),
        "/config_dump" => config_dump(state),
        "/listeners" => text(StatusCode::OK, listeners(state)),
        "/clusters" => text(StatusCode::OK, clusters(state)),
        _ => text(
            StatusCode::NOT_FOUND,
            "endpoints: /ready /config_dump /listeners /clusters\n".into(),
        ),
    }
}

fn config_dump(state: &AdminState) -> Response<Full<Bytes>> {
    let snapshot = state.store.load();
    let status = state.status.view();
    let dump = serde_json::json!({
        "snapshot": &*snapshot,
        "connected": status.connected,
        "acked": status.acked,
        "nacks": status.nacks,
        "last_nack": status.last_nack,
        "warming_listeners": status.warming_listeners,
    });
    match serde_json::to_vec_pretty(&dump) {
        Ok(body) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default(),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

fn listeners(state: &AdminState) -> String {
    let snapshot = state.store.load();
    let mut out = String::new();
    for l in snapshot.listeners.values() {
        let _ = writeln!(out, "{}::{}", l.name, l.address);
    }
    out
}

fn clusters(state: &AdminState) -> String {
    let snapshot = state.store.load();
    let mut out = String::new();
    for c in snapshot.clusters.values() {
        let endpoints = match &c.discovery {
            Discovery::Eds { service_name } => snapshot
                .endpoints
                .get(service_name)
                .map(|la| la.endpoints.clone())
                .unwrap_or_default(),
            Discovery::Static(assignment) => assignment.endpoints.clone(),
            Discovery::StrictDns(dns) | Discovery::LogicalDns(dns) => {
                for h in &dns.hosts {
                    let _ = writeln!(out, "{}::{}:{}::dns", c.name, h.host, h.port);
                }
                continue;
            }
            Discovery::OriginalDst => {
                let _ = writeln!(out, "{}::original_dst", c.name);
                continue;
            }
        };
        if endpoints.is_empty() {
            let _ = writeln!(out, "{}::no_endpoints", c.name);
        }
        for e in endpoints {
            let _ = writeln!(out, "{}::{}::weight::{}", c.name, e.address, e.weight);
        }
    }
    out
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

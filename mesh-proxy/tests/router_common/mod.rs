//! Harness of the router tests: a scripted upstream that reports what it
//! was sent, and snapshot builders with one HTTP listener and one route
//! configuration. Every wait is bounded.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_proxy::model::*;
use tokio::net::TcpListener;

use crate::data_common::*;

/// What a scripted upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body_len: usize,
}

/// An upstream answering by path: `/status/N` with N, `/flaky/K` with 503
/// for its first K requests then 200, `/slow/MS` after MS ms, else 200;
/// the body names the upstream and the request body's length.
#[derive(Clone)]
pub struct Scripted {
    pub address: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub count: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

pub async fn scripted(name: &'static str) -> Scripted {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), count.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                return;
            };
            let (s, c) = (s.clone(), c.clone());
            tokio::spawn(async move {
                let service = service_fn(move |r| answer(name, r, s.clone(), c.clone()));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Scripted {
        address,
        seen,
        count,
    }
}

async fn answer(
    name: &str,
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = count.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_owned();
    let headers: HashMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body_len: body.len(),
    });
    let mut status = 200;
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
        status = code;
    }
    if let Some(k) = path
        .strip_prefix("/flaky/")
        .and_then(|k| k.parse::<usize>().ok())
    {
        if n < k {
            status = 503;
        }
    }
    if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|m| m.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    }
    Ok(Response::builder()
        .status(status)
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(format!("{name} len={}", body.len()))))
        .expect("response"))
}

/// A snapshot with one HTTP listener on `listener` whose RDS config `rc`
/// has one virtual host `vh` (domains `*`) with `routes`, and one static
/// cluster per `(name, endpoints)`.
pub fn snapshot_with(
    listener: SocketAddr,
    vhost: VirtualHost,
    clusters: &[(&str, &[SocketAddr])],
    hcm: impl FnOnce(&mut HttpConnectionManager),
) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut l = http_listener("l", listener, RouteSource::Rds("rc".into()));
    if let NetworkFilter::Http(h) = &mut l.filter_chains[0].filter {
        hcm(h);
    }
    add_listener(&mut snapshot, l);
    add_route_config(&mut snapshot, route_config("rc", vec![vhost]));
    for (name, endpoints) in clusters {
        snapshot
            .clusters
            .insert(name.to_string(), Arc::new(static_cluster(name, endpoints)));
    }
    snapshot
}

/// A route to `cluster` for `prefix`, made from the VirtualService
/// `default/reviews`.
pub fn reviews_route(prefix: &str, cluster: &str) -> Route {
    let mut r = to_cluster(cluster, PathMatch::Prefix(prefix.into()));
    r.name = format!("reviews{prefix}");
    r.rule = Some("VirtualService default/reviews".into());
    r
}

pub fn forward_of(route: &mut Route) -> &mut Forward {
    match &mut route.action {
        RouteAction::Forward(f) => f,
        _ => panic!("not a forward route"),
    }
}

pub fn any_vhost(routes: Vec<Route>) -> VirtualHost {
    vhost("vh", &["*"], routes)
}

pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

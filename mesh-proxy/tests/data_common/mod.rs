//! Harness for the data path tests: hand-built snapshots published into a
//! `SnapshotStore`, `listener::run` on loopback, and real upstream servers.
//! No xDS. Every wait is bounded in time.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mesh_proxy::model::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running data plane over a store the test publishes into.
pub struct Proxy {
    pub store: Arc<SnapshotStore>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Proxy {
    /// Start `listener::run` with `snapshot` already published, and wait
    /// until every bound listener accepts.
    pub async fn start(snapshot: Snapshot) -> Proxy {
        let store = Arc::new(SnapshotStore::new());
        let addresses: Vec<SocketAddr> = bound_addresses(&snapshot);
        store.publish(snapshot);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mesh_proxy::listener::run(store.clone(), shutdown.clone()));
        for address in addresses {
            wait_listening(address).await;
        }
        Proxy {
            store,
            shutdown,
            task,
        }
    }

    /// Like [`Proxy::start`], but every connection to a listener with
    /// `use_original_dst` was "redirected" from `original_dst` (no root, no
    /// iptables), and detection waits at most `detection_timeout`.
    pub async fn start_captured(
        snapshot: Snapshot,
        original_dst: SocketAddr,
        detection_timeout: Duration,
    ) -> Proxy {
        let store = Arc::new(SnapshotStore::new());
        let addresses: Vec<SocketAddr> = bound_addresses(&snapshot);
        store.publish(snapshot);
        let shutdown = CancellationToken::new();
        let capture = mesh_proxy::listener::CaptureOptions {
            original_dst: mesh_proxy::listener::OriginalDst::Fixed(original_dst),
            detection_timeout,
            ..Default::default()
        };
        let task = tokio::spawn(mesh_proxy::listener::run_with(
            store.clone(),
            shutdown.clone(),
            capture,
        ));
        for address in addresses {
            wait_listening(address).await;
        }
        Proxy {
            store,
            shutdown,
            task,
        }
    }

    /// Publish and wait until the new bound listeners accept.
    pub async fn publish(&self, snapshot: Snapshot) {
        let addresses = bound_addresses(&snapshot);
        self.store.publish(snapshot);
        for address in addresses {
            wait_listening(address).await;
        }
    }

    /// Stop and check that `run` returned cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("run stops after shutdown")
            .expect("run task not panicked");
        result.expect("run returns Ok");
    }
}

fn bound_addresses(snapshot: &Snapshot) -> Vec<SocketAddr> {
    snapshot
        .listeners
        .values()
        .filter(|l| l.bind_to_port)
        .map(|l| l.address)
        .collect()
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local addr")
}

/// Wait (bounded) until `address` accepts connections.
pub async fn wait_listening(address: SocketAddr) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{address} never started listening");
}

/// An upstream HTTP server (HTTP/1.1 and h2c) that answers
/// `NAME VERSION URI host=HOST` and sleeps first for `/slow/MS` paths.
pub async fn upstream(name: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let address = socket.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(name, request));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

async fn answer(
    name: &str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("-")
        .to_owned();
    let request_id = request.headers().contains_key("x-request-id");
    let body = format!(
        "{name} {:?} {} host={host} request-id={request_id}",
        request.version(),
        request.uri()
    );
    Ok(Response::builder()
        .header("x-upstream", name)
        .header("connection", "keep-alive")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response"))
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// GET `url` and return (status, body).
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

// ---- snapshot builders ----

pub fn http_listener(name: &str, address: SocketAddr, routes: RouteSource) -> Listener {
    Listener {
        name: name.into(),
        address,
        bind_to_port: true,
        use_original_dst: false,
        listener_filters: vec![],
        traffic_direction: None,
        filter_chains: vec![FilterChain {
            name: String::new(),
            matcher: FilterChainMatch::default(),
            tls: None,
            filter: NetworkFilter::Http(HttpConnectionManager::new(name, routes)),
        }],
        default_filter_chain: None,
    }
}

pub fn tcp_listener(name: &str, address: SocketAddr, destination: ClusterTarget) -> Listener {
    Listener {
        name: name.into(),
        address,
        bind_to_port: true,
        use_original_dst: false,
        listener_filters: vec![],
        traffic_direction: None,
        filter_chains: vec![],
        default_filter_chain: Some(FilterChain {
            name: String::new(),
            matcher: FilterChainMatch::default(),
            tls: None,
            filter: NetworkFilter::Tcp(TcpProxy::new(name, destination)),
        }),
    }
}

pub fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
        ..VirtualHost::default()
    }
}

pub fn route_config(name: &str, virtual_hosts: Vec<VirtualHost>) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        virtual_hosts,
        ..RouteConfig::default()
    }
}

pub fn matcher(path: PathMatch) -> RouteMatch {
    RouteMatch::path(path)
}

pub fn forward(target: ClusterTarget) -> RouteAction {
    RouteAction::Forward(Forward::to(target))
}

pub fn to_cluster(name: &str, path: PathMatch) -> Route {
    Route::new(
        name,
        matcher(path),
        forward(ClusterTarget::Cluster(name.into())),
    )
}

pub fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

pub fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        connect_timeout: Duration::from_secs(1),
        ..Cluster::new(
            name,
            Discovery::Eds {
                service_name: name.into(),
            },
        )
    }
}

pub fn static_cluster(name: &str, addresses: &[SocketAddr]) -> Cluster {
    Cluster {
        discovery: Discovery::Static(Arc::new(LoadAssignment::new(name, endpoints(addresses)))),
        ..eds_cluster(name)
    }
}

pub fn endpoints(addresses: &[SocketAddr]) -> Vec<Endpoint> {
    addresses
        .iter()
        .map(|&address| Endpoint::new(address, 1))
        .collect()
}

/// Add an EDS cluster with these endpoints to `snapshot`.
pub fn add_eds(snapshot: &mut Snapshot, name: &str, addresses: &[SocketAddr]) {
    snapshot
        .clusters
        .insert(name.into(), Arc::new(eds_cluster(name)));
    snapshot.endpoints.insert(
        name.into(),
        Arc::new(LoadAssignment::new(name, endpoints(addresses))),
    );
}

pub fn add_listener(snapshot: &mut Snapshot, listener: Listener) {
    snapshot
        .listeners
        .insert(listener.name.clone(), Arc::new(listener));
}

pub fn add_route_config(snapshot: &mut Snapshot, config: RouteConfig) {
    snapshot
        .route_configs
        .insert(config.name.clone(), Arc::new(config));
}

//! `fetch` (one request, the whole response printed) and `load` (N
//! requests, C at a time, counted into a [`LoadReport`] printed as JSON),
//! both with the library's client ([`mesh_e2e::http`]): names resolve
//! through the pod's hosts file, redirects are never followed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mesh_e2e::http::{self, Request};
use mesh_e2e::load::{group_of, LoadReport};
use regex::Regex;

use crate::Result;

/// Options shared by `fetch` and `load`.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    pub method: String,
    pub headers: Vec<String>,
    pub data: Option<String>,
    pub resolve: Option<String>,
    pub connect_to: Option<String>,
    pub timeout_ms: u64,
}

impl RequestOptions {
    /// The request these options describe for `url`.
    pub fn request(&self, url: &str) -> Result<Request> {
        let mut req = Request::get(url)
            .method(&self.method)
            .timeout(Duration::from_millis(self.timeout_ms));
        for h in &self.headers {
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| format!("header {h:?} is not NAME: VALUE"))?;
            req = req.header(k.trim(), v.trim());
        }
        if let Some(data) = &self.data {
            req.body = data.clone().into_bytes();
        }
        req.connect_to = match (&self.resolve, &self.connect_to) {
            (Some(r), _) => Some(resolve_override(r)?),
            (None, Some(addr)) => Some(
                addr.to_socket_addrs()
                    .map_err(|e| format!("{addr}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{addr}: no address"))?,
            ),
            (None, None) => None,
        };
        Ok(req)
    }
}

/// curl's `--resolve HOST:PORT:IP`: connect to IP:PORT.
fn resolve_override(spec: &str) -> Result<SocketAddr> {
    let mut parts = spec.splitn(3, ':');
    let (_host, port, ip) = (parts.next(), parts.next(), parts.next());
    let (Some(port), Some(ip)) = (port, ip) else {
        return Err(format!("--resolve wants HOST:PORT:IP, got {spec:?}"));
    };
    let ip: std::net::IpAddr = ip
        .trim_matches(['[', ']'])
        .parse()
        .map_err(|_| format!("bad IP in {spec:?}"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad port in {spec:?}"))?;
    Ok(SocketAddr::new(ip, port))
}

/// One request; prints `HTTP <status>`, the headers, a blank line, the body.
pub fn fetch(url: &str, opts: &RequestOptions) -> Result<()> {
    let resp = http::send(&opts.request(url)?)?;
    print!("{}", http::format_fetch_output(&resp));
    Ok(())
}

/// What `load` counts.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub requests: usize,
    pub concurrency: usize,
    pub count_headers: Vec<String>,
    pub body_pattern: Option<String>,
    pub max_seconds: u64,
}

/// `requests` requests, `concurrency` at a time; prints the report as JSON.
pub fn load(url: &str, opts: &RequestOptions, load: &LoadOptions) -> Result<()> {
    if load.requests > 100_000 || load.concurrency == 0 || load.concurrency > 256 {
        return Err("load: at most 100000 requests, 1..=256 at a time".into());
    }
    let req = opts.request(url)?;
    let pattern = match &load.body_pattern {
        Some(p) => Some(Regex::new(p).map_err(|e| format!("--body-pattern: {e}"))?),
        None => None,
    };
    let deadline = Instant::now() + Duration::from_secs(load.max_seconds.max(1));
    let next = AtomicUsize::new(0);
    let report = Mutex::new(LoadReport::default());
    std::thread::scope(|s| {
        for _ in 0..load.concurrency.min(load.requests.max(1)) {
            s.spawn(|| loop {
                if next.fetch_add(1, Ordering::SeqCst) >= load.requests {
                    return;
                }
                let started = Instant::now();
                let outcome = if started > deadline {
                    Err("not sent: the load's time limit passed".to_string())
                } else {
                    http::send(&req)
                };
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok(r) => report.record(group_of(&r, &load.count_headers, pattern.as_ref()), ms),
                    Err(e) => report.fail(e),
                }
            });
        }
    });
    let report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

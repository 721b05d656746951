//! The TCP echo load generator (`mesh-bench tcp-load`, a child pinned to
//! CPU 0 like oha): N connections each write a message and read its echo.
//!
//! At a fixed rate, request i of the run is scheduled at `start + i/rate`
//! and goes on connection `i mod N`; when the connection is still busy at
//! that time, the request's latency runs from the scheduled time, so a
//! stall charges its delay to every request it held up (the correction for
//! coordinated omission, as `oha --latency-correction` does it). In a closed loop each connection sends again as soon as its
//! echo is back. Both stop at the deadline and after `max_requests`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::stats::{LoadResult, Percentiles};

/// A request that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// One TCP echo run.
#[derive(Debug, Clone)]
pub struct TcpLoad {
    /// The echo server (or the sidecar in front of it).
    pub addr: SocketAddr,
    /// Connections.
    pub connections: u32,
    /// Messages per second over all connections; closed loop if `None`.
    pub rate: Option<f64>,
    /// How long to send.
    pub duration: Duration,
    /// Bytes per message.
    pub size: usize,
    /// Upper bound on messages over all connections.
    pub max_requests: u64,
}

/// What one connection saw.
#[derive(Default)]
struct ConnResult {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

/// Run the load and summarise it.
pub async fn run(load: TcpLoad) -> LoadResult {
    let start = Instant::now() + Duration::from_millis(20);
    let deadline = start + load.duration;
    let n = u64::from(load.connections.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..n {
        let load = load.clone();
        tasks.spawn(connection(load, k, n, start, deadline));
    }
    let mut latencies = Vec::new();
    let mut error_kinds = std::collections::BTreeMap::new();
    while let Some(res) = tasks.join_next().await {
        let res = res.unwrap_or_else(|e| ConnResult {
            errors: vec![format!("task: {e}")],
            ..Default::default()
        });
        latencies.extend(res.latencies);
        for e in res.errors {
            *error_kinds.entry(e).or_insert(0) += 1;
        }
    }
    let wall = Instant::now()
        .min(deadline + REQUEST_TIMEOUT)
        .duration_since(start)
        .as_secs_f64();
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    LoadResult {
        ok,
        errors: error_kinds.values().sum(),
        error_kinds,
        wall_secs: wall,
        rps: ok as f64 / wall.max(f64::EPSILON),
        latency_ms: Percentiles::of_sorted(&latencies),
    }
}

/// Connection `k` of `n`: at a rate, requests k, k+n, k+2n, ...; else as
/// fast as its echoes come back.
async fn connection(
    load: TcpLoad,
    k: u64,
    n: u64,
    start: Instant,
    deadline: Instant,
) -> ConnResult {
    let mut out = ConnResult::default();
    let msg = vec![b'e'; load.size];
    let mut buf = vec![0u8; load.size];
    let mut stream: Option<TcpStream> = None;
    let max_here = load.max_requests.div_ceil(n);
    tokio::time::sleep_until(start).await;
    for j in 0..max_here {
        let scheduled = match load.rate {
            Some(rate) => {
                let at = start + Duration::from_secs_f64((k + j * n) as f64 / rate);
                if at >= deadline {
                    break;
                }
                if at > Instant::now() {
                    // On time: count from the wake-up, as oha does, so the
                    // timer's own lateness (up to a millisecond in tokio) is
                    // not charged to the path.
                    tokio::time::sleep_until(at).await;
                    Instant::now()
                } else {
                    // Behind: the wait for this connection counts.
                    at
                }
            }
            None => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        if stream.is_none() {
            match timeout(REQUEST_TIMEOUT, TcpStream::connect(load.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Ok(Err(e)) => {
                    out.errors.push(format!("connect: {}", e.kind()));
                    continue;
                }
                Err(_) => {
                    out.errors.push("connect: timeout".into());
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected above");
        match timeout(REQUEST_TIMEOUT, round_trip(s, &msg, &mut buf)).await {
            Ok(Ok(())) => out.latencies.push(scheduled.elapsed()),
            Ok(Err(e)) => {
                out.errors.push(format!("echo: {}", e.kind()));
                stream = None;
            }
            Err(_) => {
                out.errors.push("echo: timeout".into());
                stream = None;
            }
        }
    }
    out
}

async fn round_trip(s: &mut TcpStream, msg: &[u8], buf: &mut [u8]) -> std::io::Result<()> {
    s.write_all(msg).await?;
    s.read_exact(buf).await?;
    if buf != msg {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "echo differs from the message",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn fixed_rate_sends_the_scheduled_count() {
        let addr = echo_server().await;
        let r = run(TcpLoad {
            addr,
            connections: 4,
            rate: Some(200.0),
            duration: Duration::from_millis(500),
            size: 64,
            max_requests: 10_000,
        })
        .await;
        // 200/s for 0.5 s is 100 scheduled requests, all echoed.
        assert_eq!((r.ok, r.errors), (100, 0), "{r:?}");
        assert!(r.latency_ms.p50.is_some());
    }

    #[tokio::test]
    async fn closed_loop_stops_at_max_requests_and_counts_refusals() {
        let addr = echo_server().await;
        let r = run(TcpLoad {
            addr,
            connections: 2,
            rate: None,
            duration: Duration::from_secs(5),
            size: 16,
            max_requests: 50,
        })
        .await;
        assert_eq!(r.ok, 50, "{r:?}");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let r = run(TcpLoad {
            addr: gone,
            connections: 1,
            rate: Some(100.0),
            duration: Duration::from_millis(100),
            size: 16,
            max_requests: 1000,
        })
        .await;
        assert_eq!(r.ok, 0);
        assert_eq!(r.errors, 10, "{r:?}");
        assert!(r.mostly_failed());
    }
}

//! Transparent capture for real (root only): in a fresh network namespace,
//! `mesh-proxy init` rules, a mesh-proxy running as UID 1337 fed by an
//! in-process fake pilot with a REDIRECT-mode config, a tiny app, and a
//! plain client that only knows a service VIP (198.19.0.3:9080). Its call is
//! captured on 15001, dispatched to `0.0.0.0_9080`, routed by Host, sent to
//! the pod IP, captured again on 15006 and delivered from 127.0.0.6; a
//! server-first TCP service (198.19.0.4:3306) answers without any wait.
//!
//! As in `init_netns.rs`, the test cannot `setns` itself (no `unsafe`): it
//! re-runs this binary inside the namespace (`capture_netns_helper`).

mod capture_support;
mod xds_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use capture_support::*;
use envoy_types::util::pack_any;
use mesh_test_support::netns::{ok, Netns};
use mesh_test_support::{netns_missing, require};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use xds_support::*;

/// Tells `capture_netns_helper` it runs inside the test's namespace.
const INSIDE: &str = "MESH_CAPTURE_TEST_INSIDE";
/// The proxy waits this long for a first byte where it detects; the
/// server-first service must not see any of it.
const DETECTION: Duration = Duration::from_secs(1);
const STEP_LIMIT: Duration = Duration::from_secs(15);

#[test]
fn a_call_to_a_vip_is_captured_routed_and_delivered() {
    if !require("capture in a network namespace", netns_missing()) {
        return;
    }
    // The /15 on the veth routes the VIPs out of it, so the app's connect()
    // has a route for iptables to redirect.
    let ns = Netns::create("mpcap", &format!("{POD_IP}/15"));
    ok(&mut ns.cmd(&[env!("CARGO_BIN_EXE_mesh-proxy"), "init"]));
    let exe = std::env::current_exe().expect("test binary path");
    let mut helper = ns.cmd(&[
        &exe.to_string_lossy(),
        "--ignored",
        "--exact",
        "capture_netns_helper",
        "--nocapture",
        "--test-threads=1",
    ]);
    helper.env(INSIDE, &ns.name).stdin(Stdio::null());
    let out = ok(&mut helper);
    assert!(out.contains("capture: ok"), "{out}");
    eprintln!("{out}");
}

/// Runs inside the namespace on behalf of the test above; a no-op otherwise.
#[test]
#[ignore = "helper: run by the capture test inside its namespace"]
fn capture_netns_helper() {
    let Ok(ns) = std::env::var(INSIDE) else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(inside(ns));
}

async fn inside(ns: String) {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(http_app(shutdown.clone()));
    tokio::spawn(greeting_app(shutdown.clone()));
    let (pilot, mut streams) = start_pilot("127.0.0.1:0", shutdown.clone()).await;

    let log = std::env::temp_dir().join(format!("{ns}-proxy.log"));
    let log_file = std::fs::File::create(&log).expect("proxy log");
    let _proxy = tokio::process::Command::new("setpriv")
        .args(["--reuid=1337", "--regid=1337", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mesh-proxy"))
        .args(["--xds-address", &pilot.to_string()])
        .args([
            "--node-id",
            &format!("sidecar~{POD_IP}~app.default~default.svc.cluster.local"),
        ])
        .args(["--protocol-detection-timeout", "1s"])
        .env("RUST_LOG", "mesh_proxy=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .expect("start mesh-proxy under setpriv");
    let _show_log = ShowLogOnPanic(log.clone());

    let stream = tokio::time::timeout(STEP_LIMIT, streams.recv())
        .await
        .expect("the proxy connects to pilot")
        .expect("pilot running");
    tokio::spawn(serve_config(stream));

    // The app only knows the VIP and the service name.
    let target = format!("{HTTP_VIP}:9080");
    let response = retry(|| http_get(&target, "messenger:9080")).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // 127.0.0.6: it went out through 15001 and back in through 15006.
    assert!(
        response.contains("app peer=127.0.0.6 host=messenger:9080"),
        "{response}"
    );
    let by_vip = http_get(&target, &target).await.expect("call by VIP");
    assert!(by_vip.contains("app peer=127.0.0.6"), "{by_vip}");

    // Server-first TCP: the greeting arrives without the client writing,
    // and well before the detection timeout.
    let started = Instant::now();
    let greeting = read_greeting(&format!("{TCP_VIP}:3306")).await;
    assert_eq!(greeting, "mysql peer=127.0.0.6");
    assert!(started.elapsed() < DETECTION / 2, "{:?}", started.elapsed());
    let _ = std::fs::remove_file(&log);
    println!("\ncapture: ok");
}

struct ShowLogOnPanic(std::path::PathBuf);

impl Drop for ShowLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("---- mesh-proxy log ----\n{log}");
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn retry<F, Fut>(mut attempt: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<String>>,
{
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        match attempt().await {
            Ok(response) if response.starts_with("HTTP/1.1 200") => return response,
            other if Instant::now() > deadline => panic!("no answer through capture: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn http_get(target: &str, host: &str) -> std::io::Result<String> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    let request = format!("GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)??;
    Ok(response)
}

async fn read_greeting(target: &str) -> String {
    let stream = TcpStream::connect(target).await.expect("connect");
    let mut line = String::new();
    tokio::time::timeout(STEP_LIMIT, BufReader::new(stream).read_line(&mut line))
        .await
        .expect("greeting in time")
        .expect("read greeting");
    line.trim_end().to_owned()
}

/// The app on 9080: a minimal HTTP/1.1 server that names its peer.
async fn http_app(shutdown: CancellationToken) {
    let socket = TcpListener::bind(("0.0.0.0", 9080))
        .await
        .expect("bind 9080");
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = socket.accept() => match accepted { Ok(a) => a, Err(_) => continue },
        };
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut host = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("host:") {
                    host = value.trim().to_owned();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let body = format!("app peer={} host={host}", peer.ip());
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(response.as_bytes()).await;
        });
    }
}

/// A server-first app on 3306 (MySQL's habit): greets, then waits.
async fn greeting_app(shutdown: CancellationToken) {
    let socket = TcpListener::bind(("0.0.0.0", 3306))
        .await
        .expect("bind 3306");
    loop {
        let (mut stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = socket.accept() => match accepted { Ok(a) => a, Err(_) => continue },
        };
        tokio::spawn(async move {
            let _ = stream
                .write_all(format!("mysql peer={}\n", peer.ip()).as_bytes())
                .await;
            let mut sink = [0u8; 64];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
    }
}

/// Answer each subscription once with the REDIRECT-mode config; ACKs and
/// NACKs are only read. Ends with the stream.
async fn serve_config(mut stream: PilotStream) {
    let mut sent = std::collections::HashSet::new();
    loop {
        let request = stream.recv_or_end().await;
        let Some(request) = request else { return };
        if !request.response_nonce.is_empty() || !sent.insert(request.type_url.clone()) {
            if let Some(error) = &request.error_detail {
                eprintln!("proxy NACKed {}: {}", request.type_url, error.message);
            }
            continue;
        }
        let resources = match request.type_url.as_str() {
            CDS => clusters(),
            EDS => vec![
                pack_any(endpoints(MESSENGER, POD_IP, 9080)),
                pack_any(endpoints(MYSQL, POD_IP, 3306)),
            ],
            LDS => listeners(),
            RDS => vec![outbound_routes()],
            _ => vec![],
        };
        stream.push(&request.type_url, "1", resources).await;
    }
}

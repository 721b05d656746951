//! `mesh-e2e-tool` on loopback, no root and no mesh: each server option and
//! each client does what the scenarios rely on (deterministic failures,
//! the failure switch, counters, header echo, delays, TLS, WebSocket and
//! gRPC echoes, the load report). Every server is a child process killed
//! at the end of its test, pass or fail.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mesh_e2e::certs::TestCa;
use mesh_e2e::http::{parse_fetch_output, send, Request};
use mesh_e2e::load::{LoadReport, LoadSpec};
use mesh_e2e::tool::GrpcAnswer;

const TOOL: &str = env!("CARGO_BIN_EXE_mesh-e2e-tool");

/// A server child, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Starts `mesh-e2e-tool SUBCOMMAND --listen ADDR ARGS` and waits (≤ 10 s)
/// until it accepts connections.
fn server(subcommand: &str, args: &[&str]) -> Server {
    let addr = free_addr();
    let child = Command::new(TOOL)
        .arg(subcommand)
        .args(["--listen", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the tool");
    let server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{subcommand} did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn run(args: &[String]) -> Output {
    Command::new(TOOL)
        .args(args)
        .output()
        .expect("run the tool")
}

fn load(spec: &LoadSpec) -> LoadReport {
    let out = run(&spec.tool_args());
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn get(addr: SocketAddr, path: &str) -> mesh_e2e::HttpResponse {
    send(&Request::get(&format!("http://{addr}{path}"))).expect("an answer")
}

#[test]
fn every_kth_request_fails_and_the_load_report_counts_it() {
    let s = server(
        "serve-http",
        &[
            "--version",
            "v1",
            "--fail-every",
            "2",
            "--fail-status",
            "500",
        ],
    );
    let report = load(&LoadSpec::new(&format!("http://{}/x", s.addr), 10));
    assert_eq!(report.requests, 10);
    assert_eq!(
        report.statuses(),
        [(200, 5), (500, 5)].into(),
        "{}",
        report.summary()
    );
    assert_eq!(report.by_header("x-version")["v1"], 10);
    assert_eq!(report.by_body()["served by v1"], 5);
    let count: serde_json::Value =
        serde_json::from_str(&get(s.addr, "/__count").body).expect("JSON");
    assert_eq!(count["served"], 10);
    assert_eq!(count["hosts"][s.addr.to_string()], 10, "{count}");
}

#[test]
fn the_failure_switch_and_the_counter() {
    let s = server("serve-http", &["--version", "b"]);
    assert_eq!(get(s.addr, "/").status, 200);
    assert_eq!(get(s.addr, "/__fail?status=503").status, 200);
    let failing = get(s.addr, "/");
    assert_eq!(
        (failing.status, failing.header("x-version")),
        (503, Some("b"))
    );
    get(s.addr, "/__heal");
    assert_eq!(get(s.addr, "/").status, 200);
    let count: serde_json::Value =
        serde_json::from_str(&get(s.addr, "/__count").body).expect("JSON");
    assert_eq!(count["served"], 3, "control requests are not counted");
}

#[test]
fn echo_headers_delay_and_concurrency() {
    let s = server("serve-http", &["--echo-headers", "--delay-ms", "300"]);
    let spec = LoadSpec::new(&format!("http://{}/h", s.addr), 4)
        .concurrency(4)
        .header("x-envoy-attempt-count", "2")
        .body_pattern(r"x-envoy-attempt-count: (\d+)");
    let started = Instant::now();
    let report = load(&spec);
    assert_eq!(report.by_body()["2"], 4, "{}", report.summary());
    assert!(report.min_ms >= 300, "{}", report.summary());
    // Four at once, not one after the other.
    assert!(started.elapsed() < Duration::from_millis(1100));
}

#[test]
fn fetch_prints_status_headers_and_body_and_follows_no_redirect() {
    let s = server("serve-http", &["--version", "v9", "--echo-headers"]);
    let url = format!("http://svc.example:{}/p", s.addr.port());
    let out = run(&[
        "fetch".into(),
        url,
        "-H".into(),
        "end-user: jason".into(),
        "--resolve".into(),
        format!("svc.example:{}:127.0.0.1", s.addr.port()),
    ]);
    assert!(out.status.success(), "{out:?}");
    let r = parse_fetch_output(&String::from_utf8_lossy(&out.stdout)).expect("fetch output");
    assert_eq!((r.status, r.header("x-version")), (200, Some("v9")));
    assert!(r.body.contains("end-user: jason\n"), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("host: svc.example:{}\n", s.addr.port())),
        "{}",
        r.body
    );
}

#[test]
fn https_serving_with_an_rcgen_certificate() {
    let ca = TestCa::new("tool test CA").expect("CA");
    let leaf = ca.issue(&["tls-a.example.com"]).expect("leaf");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca_file) = (
        dir.path().join("c.pem"),
        dir.path().join("k.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &leaf.cert_pem).expect("write");
    std::fs::write(&key, &leaf.key_pem).expect("write");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write");
    let s = server(
        "serve-http",
        &[
            "--version",
            "tls-a",
            "--tls-cert",
            &cert.to_string_lossy(),
            "--tls-key",
            &key.to_string_lossy(),
        ],
    );
    if mesh_local::cmd::which("curl").is_none() {
        mesh_test_support::skip(
            "https check",
            "curl is not installed (apt-get install -y curl)",
        );
        return;
    }
    let port = s.addr.port();
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "5", "--cacert"])
        .arg(&ca_file)
        .args(["--resolve", &format!("tls-a.example.com:{port}:127.0.0.1")])
        .arg(format!("https://tls-a.example.com:{port}/"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "served by tls-a");
    // What the ingress scenario reads to name the certificate served.
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("CN=tls-a.example.com"), "{verbose}");
    // The same certificate under another name is refused.
    let wrong = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(&ca_file)
        .args(["--resolve", &format!("other.example.com:{port}:127.0.0.1")])
        .arg(format!("https://other.example.com:{port}/"))
        .output()
        .expect("curl");
    assert!(!wrong.status.success(), "{wrong:?}");
}

#[test]
fn websocket_echo() {
    let s = server("serve-ws", &[]);
    let out = run(&[
        "ws-echo".into(),
        format!("ws://{}/echo", s.addr),
        "hello ws ü".into(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello ws ü\n");
}

#[test]
fn grpc_health_check_answers_serving_and_not_found() {
    let s = server("serve-grpc", &["--service", "mesh.e2e.Echo"]);
    let check = |service: &str| -> GrpcAnswer {
        let out = run(&[
            "grpc-check".into(),
            s.addr.to_string(),
            "--service".into(),
            service.into(),
        ]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    };
    let ok = check("mesh.e2e.Echo");
    assert_eq!(
        (ok.code, ok.serving.as_deref()),
        (0, Some("SERVING")),
        "{ok:?}"
    );
    assert_eq!(
        ok.metadata.get("content-type").map(String::as_str),
        Some("application/grpc"),
        "{ok:?}"
    );
    let missing = check("no.such.Service");
    assert_eq!(
        (missing.code, missing.code_name.as_str()),
        (5, "NotFound"),
        "{missing:?}"
    );
}

#[test]
fn a_refused_connection_is_a_failure_not_an_answer() {
    let report = load(&LoadSpec::new(&format!("http://{}/", free_addr()), 3).timeout_ms(500));
    assert_eq!((report.requests, report.answers()), (3, 0));
    assert_eq!(
        report.failures.values().sum::<usize>(),
        3,
        "{}",
        report.summary()
    );
}

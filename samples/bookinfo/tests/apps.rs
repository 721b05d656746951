//! End-to-end tests of the four real binaries on loopback: productpage
//! calling details and reviews (v1, v2, v3), reviews calling ratings, what
//! the page says when a service goes away, header propagation (a recording
//! server stands in for a dependency), loopback-mode proxying and a clean
//! stop on SIGTERM.
//!
//! Each test has its own loopback address (127.0.77.N), so tests running in
//! parallel cannot take each other's ports; every process gets a port that
//! was free a moment before on it, and the `Fleet` guard kills them all when
//! the test ends, pass or fail.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bookinfo::server::{self, AppRequest, Handler, HttpResponse};
use hyper::header::HeaderMap;
use hyper::{StatusCode, Uri};

/// How long a process may take to answer `/health` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A port on `ip` that nothing listened on a moment ago.
fn free_addr(ip: Ipv4Addr) -> SocketAddr {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// Where nothing listens: port 1 (tcpmux) of loopback refuses at once.
const NOBODY: &str = "http://127.0.0.1:1";

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A client that talks to loopback directly and shows redirects as they are.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

struct App {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The processes of one test; kills them all when dropped.
struct Fleet {
    test: &'static str,
    /// This test's own loopback address.
    ip: Ipv4Addr,
    apps: Vec<App>,
}

impl Fleet {
    /// A fleet for `test`, on loopback address 127.0.77.`n` (one `n` per test).
    fn new(test: &'static str, n: u8) -> Self {
        Self {
            test,
            ip: Ipv4Addr::new(127, 0, 77, n),
            apps: Vec::new(),
        }
    }

    /// Starts `bin` as `name` on a fresh loopback port with `env`, and waits
    /// until it answers `/health`.
    async fn start(&mut self, bin: &str, name: &str, env: &[(&str, String)]) -> SocketAddr {
        let addr = free_addr(self.ip);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bookinfo-apps");
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = dir.join(format!("{}-{name}.log", self.test));
        let stderr = File::create(&log).expect("log file");
        let mut cmd = Command::new(bin);
        cmd.env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HOSTNAME")
            .env("RUST_LOG", "info")
            .env("LISTEN", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        self.apps.push(App {
            name: name.to_string(),
            child,
            log,
        });
        self.wait_healthy(name, addr).await;
        addr
    }

    async fn wait_healthy(&mut self, name: &str, addr: SocketAddr) {
        let deadline = Instant::now() + START_TIMEOUT;
        let health = format!("{}/health", url(addr));
        loop {
            let healthy = match client().get(&health).send().await {
                Ok(resp) => resp.status() == StatusCode::OK,
                Err(_) => false,
            };
            let app = self.app(name);
            // Checked after /health too: a healthy answer from a process that
            // is not ours must not pass.
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("{name} exited with {status}:\n{}", read_log(&app.log));
            }
            if healthy {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not healthy after {START_TIMEOUT:?}:\n{}",
                    read_log(&app.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn app(&mut self, name: &str) -> &mut App {
        self.apps
            .iter_mut()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no app {name}"))
    }

    /// Kills `name` at once (as a crash would) and forgets it.
    fn kill(&mut self, name: &str) {
        let mut app = self.remove(name);
        let _ = app.child.kill();
        let _ = app.child.wait();
    }

    /// Sends SIGTERM to `name` and waits (bounded) for it to exit.
    fn terminate(&mut self, name: &str) -> ExitStatus {
        let pid = self.app(name).child.id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .unwrap_or_else(|e| panic!("SIGTERM to {pid}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.app(name).child.try_wait().expect("try_wait") {
                self.remove(name);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still running 10s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn remove(&mut self, name: &str) -> App {
        let i = self.apps.iter().position(|a| a.name == name).expect("app");
        self.apps.remove(i)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for app in &mut self.apps {
            let _ = app.child.kill();
            let _ = app.child.wait();
        }
    }
}

fn read_log(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Starts details, ratings and reviews `version`, returning their URLs.
async fn backends(fleet: &mut Fleet, version: &str) -> (String, String) {
    let details = fleet
        .start(env!("CARGO_BIN_EXE_details"), "details", &[])
        .await;
    let ratings = fleet
        .start(env!("CARGO_BIN_EXE_ratings"), "ratings", &[])
        .await;
    let reviews = fleet
        .start(
            env!("CARGO_BIN_EXE_reviews"),
            "reviews",
            &[
                ("SERVICE_VERSION", version.to_string()),
                ("RATINGS_URL", url(ratings)),
            ],
        )
        .await;
    (url(details), url(reviews))
}

async fn productpage(
    fleet: &mut Fleet,
    details: &str,
    reviews: &str,
    extra: &[(&str, String)],
) -> String {
    let mut env = vec![
        ("DETAILS_URL", details.to_string()),
        ("REVIEWS_URL", reviews.to_string()),
    ];
    env.extend(extra.iter().cloned());
    url(fleet
        .start(env!("CARGO_BIN_EXE_productpage"), "productpage", &env)
        .await)
}

async fn page(base: &str, cookie: Option<&str>) -> String {
    let mut req = client().get(format!("{base}/productpage"));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let resp = req.send().await.expect("GET /productpage");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("page body")
}

#[tokio::test]
async fn the_page_shows_details_and_v1_reviews_and_survives_reviews_going_away() {
    let mut fleet = Fleet::new("v1", 1);
    let (details, reviews) = backends(&mut fleet, "v1").await;
    let base = productpage(&mut fleet, &details, &reviews, &[]).await;

    let html = page(&base, None).await;
    assert!(html.contains("The Comedy of Errors"), "{html}");
    assert!(html.contains("Book Details") && html.contains("William Shakespeare"));
    assert!(html.contains("<th>ISBN-13:</th><td>123-1234567890</td>"));
    assert!(html.contains("Book Reviews") && html.contains("An extremely entertaining play"));
    assert!(html.contains("reviews-v1"));
    assert!(!html.contains('★') && !html.contains("stars-"));

    // Sign in: the cookie comes back and the page names the user.
    let resp = client()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=jason&passwd=x")
        .send()
        .await
        .expect("POST /login");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    let pair = cookie.split(';').next().expect("cookie pair");
    assert_eq!(pair, "end-user=jason");
    assert!(page(&base, Some(pair))
        .await
        .contains("Signed in as <b>jason</b>"));

    // The JSON API passes the services' answers through.
    let api: serde_json::Value = client()
        .get(format!("{base}/api/v1/products/0"))
        .send()
        .await
        .expect("GET api")
        .json()
        .await
        .expect("api json");
    assert_eq!(api["ISBN-10"], "1234567890");

    fleet.kill("reviews");
    let html = page(&base, None).await;
    assert!(html.contains("Sorry, product reviews are currently unavailable for this book."));
    assert!(html.contains("William Shakespeare"), "details still shown");
}

#[tokio::test]
async fn v2_shows_black_stars_until_ratings_goes_away() {
    let mut fleet = Fleet::new("v2", 2);
    let (details, reviews) = backends(&mut fleet, "v2").await;
    let base = productpage(&mut fleet, &details, &reviews, &[]).await;

    let html = page(&base, None).await;
    assert!(html.contains("reviews-v2"), "{html}");
    assert!(html.contains("stars-black") && !html.contains("stars-red"));
    assert!(html.contains("★★★★★") && html.contains("★★★★☆"));

    fleet.kill("ratings");
    let html = page(&base, None).await;
    assert!(
        html.contains("Ratings service is currently unavailable"),
        "{html}"
    );
    assert!(html.contains("reviews-v2") && !html.contains('★'));
}

#[tokio::test]
async fn v3_shows_red_stars_and_missing_details_are_explained() {
    let mut fleet = Fleet::new("v3", 3);
    let (_, reviews) = backends(&mut fleet, "v3").await;
    let base = productpage(&mut fleet, NOBODY, &reviews, &[]).await;

    let html = page(&base, None).await;
    assert!(
        html.contains("reviews-v3") && html.contains("stars-red"),
        "{html}"
    );
    assert!(!html.contains("stars-black"));
    assert!(html.contains("Sorry, product details are currently unavailable for this book."));
}

/// What the recording server saw: method, URI as sent, headers.
type Seen = Arc<Mutex<Vec<(String, Uri, HeaderMap)>>>;

/// Stands in for details and ratings, answering like them and recording
/// every request.
#[derive(Clone, Default)]
struct Recorder {
    seen: Seen,
}

impl Handler for Recorder {
    async fn handle(&self, req: AppRequest) -> HttpResponse {
        let path = req.uri().path().to_string();
        self.seen.lock().expect("lock").push((
            req.method().to_string(),
            req.uri().clone(),
            req.headers().clone(),
        ));
        if path.starts_with("/ratings/") {
            let body = bookinfo::ratings::default_ratings(0);
            server::json(StatusCode::OK, &body)
        } else if path.starts_with("/details/") {
            server::json(StatusCode::OK, &bookinfo::details::book_details(0))
        } else {
            server::not_found()
        }
    }
}

async fn start_recorder(ip: Ipv4Addr) -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind((ip, 0))
        .await
        .expect("bind recorder");
    let addr = listener.local_addr().expect("recorder addr");
    let recorder = Recorder::default();
    let seen = recorder.seen.clone();
    // Stops with the test's runtime.
    tokio::spawn(server::serve_on(listener, recorder, std::future::pending()));
    (addr, seen)
}

const TRACE_HEADERS: &[(&str, &str)] = &[
    ("x-request-id", "5c0ffee0-1111-2222-3333-444455556666"),
    (
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    ("tracestate", "congo=t61rcWkgMzE"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
    ("x-b3-sampled", "1"),
    ("x-b3-flags", "0"),
    (
        "b3",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    ),
    (
        "x-ot-span-context",
        "80f198ee56343ba8;e457b5a2e4d86bd1;05e3ac9a4f6e3b90;cs",
    ),
];

#[tokio::test]
async fn tracing_headers_and_end_user_reach_every_hop() {
    let mut fleet = Fleet::new("headers", 4);
    let (recorder, seen) = start_recorder(fleet.ip).await;
    let reviews = fleet
        .start(
            env!("CARGO_BIN_EXE_reviews"),
            "reviews",
            &[
                ("SERVICE_VERSION", "v2".into()),
                ("RATINGS_URL", url(recorder)),
            ],
        )
        .await;
    let base = productpage(&mut fleet, &url(recorder), &url(reviews), &[]).await;

    let mut req = client()
        .get(format!("{base}/productpage"))
        .header("cookie", "end-user=jason");
    for (name, value) in TRACE_HEADERS {
        req = req.header(*name, *value);
    }
    let html = req.send().await.expect("GET").text().await.expect("body");
    assert!(
        html.contains("stars-black"),
        "ratings came from the recorder: {html}"
    );

    let seen = seen.lock().expect("lock").clone();
    let paths: Vec<_> = seen
        .iter()
        .map(|(_, uri, _)| uri.path().to_string())
        .collect();
    assert!(paths.contains(&"/details/0".to_string()), "{paths:?}");
    assert!(paths.contains(&"/ratings/0".to_string()), "{paths:?}");
    for (method, uri, headers) in &seen {
        assert_eq!(method, "GET");
        for (name, value) in TRACE_HEADERS {
            assert_eq!(
                headers.get(*name).map(|v| v.as_bytes()),
                Some(value.as_bytes()),
                "{name} on {uri}"
            );
        }
        assert_eq!(
            headers.get("end-user").map(|v| v.as_bytes()),
            Some(&b"jason"[..]),
            "end-user on {uri}"
        );
    }
}

#[tokio::test]
async fn with_http_proxy_calls_go_to_the_proxy_by_service_name() {
    let mut fleet = Fleet::new("proxy", 5);
    let (proxy, seen) = start_recorder(fleet.ip).await;
    // Names only the mesh could resolve: the call must go to the proxy.
    let base = productpage(
        &mut fleet,
        "http://details:9080",
        "http://reviews:9080",
        &[("HTTP_PROXY", url(proxy))],
    )
    .await;

    let resp = client()
        .get(format!("{base}/api/v1/products/0"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = seen.lock().expect("lock").clone();
    let (_, uri, headers) = seen.first().expect("the proxy saw the call");
    assert_eq!(uri.to_string(), "http://details:9080/details/0");
    assert_eq!(headers["host"], "details:9080");
}

#[tokio::test]
async fn sigterm_stops_a_service_cleanly() {
    let mut fleet = Fleet::new("sigterm", 6);
    fleet
        .start(env!("CARGO_BIN_EXE_ratings"), "ratings", &[])
        .await;
    let status = fleet.terminate("ratings");
    assert!(status.success(), "ratings exited with {status}");
}

//! The local driver's plumbing, before any proxy is involved: pods reach
//! each other by pod IP over the bridge, service names resolve to VIPs
//! through each pod's hosts file, the test process reaches pods, and
//! teardown (explicit, on panic, or by `cleanup_stale` after a killed run)
//! leaves no namespace, link, `/etc/netns` entry, process or directory.
//! Root only; prints why and passes nothing when not root.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mesh_e2e::local::SUITE_TAG;
use mesh_e2e::{Cluster, LocalCluster, Sidecar, Workload};
use mesh_local::{cleanup_stale, process};
use mesh_test_support::skip;

const TOOL: &str = env!("CARGO_BIN_EXE_mesh-e2e-tool");

fn runnable() -> bool {
    match LocalCluster::unavailable() {
        Some(why) => {
            skip("local plumbing", &why);
            false
        }
        None => true,
    }
}

/// Everything a run made, to check it is gone afterwards.
struct Traces {
    prefix: String,
    run_dir: PathBuf,
    netns: Vec<String>,
}

impl Traces {
    fn of(c: &LocalCluster, pods: &[&str]) -> Traces {
        Traces {
            prefix: c.prefix().to_string(),
            run_dir: c.run_dir().to_path_buf(),
            netns: pods
                .iter()
                .filter_map(|p| c.netns(p))
                .map(String::from)
                .collect(),
        }
    }

    fn assert_gone(&self) {
        let p = &self.prefix;
        let netns = sh(&["ip", "netns", "list"]);
        assert!(
            !netns.contains(p.as_str()),
            "namespaces of {p} left: {netns}"
        );
        let links = sh(&["ip", "-o", "link", "show"]);
        let ours: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter(|n| n.starts_with(p.as_str()))
            .collect();
        assert!(ours.is_empty(), "links of {p} left: {ours:?}");
        assert!(!self.run_dir.exists(), "{} left", self.run_dir.display());
        for ns in &self.netns {
            let etc = Path::new("/etc/netns").join(ns);
            assert!(!etc.exists(), "{} left", etc.display());
        }
        assert_eq!(
            process::tagged_pids(p),
            Vec::<u32>::new(),
            "processes of {p} left"
        );
    }
}

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(out.status.success(), "{argv:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn server(name: &str, service: &str, body: &str) -> Workload {
    Workload::new(
        name,
        service,
        &[
            TOOL,
            "serve-http",
            "--listen",
            "0.0.0.0:8080",
            "--body",
            body,
        ],
    )
    .port("http", 8080, "HTTP")
    .sidecar(Sidecar::None)
}

#[test]
fn pods_talk_names_resolve_to_vips_and_teardown_removes_everything() {
    if !runnable() {
        return;
    }
    let mut c = LocalCluster::new().unwrap_or_else(|e| panic!("cluster: {e}"));
    let deploy = |c: &mut LocalCluster, w: Workload| {
        c.deploy(&w)
            .unwrap_or_else(|e| panic!("deploy {}: {e}", w.name))
    };
    deploy(&mut c, server("echo-v1", "echo", "hello from echo"));
    deploy(&mut c, server("shop-v1", "shop", "shop").namespace("store"));
    let banner = Workload::new(
        "banner-v1",
        "banner",
        &[
            TOOL,
            "serve-tcp",
            "--listen",
            "0.0.0.0:7000",
            "--banner",
            "HELLO",
        ],
    )
    .port("tcp", 7000, "TCP")
    .sidecar(Sidecar::None);
    deploy(&mut c, banner);
    let traces = Traces::of(&c, &["echo-v1", "shop-v1", "banner-v1"]);

    // Pod to pod by IP, through the bridge.
    let echo_ip = c.mesh().pod_ip("echo-v1").expect("echo-v1 has an IP");
    let got = c.http_get("banner-v1", &format!("http://{echo_ip}:8080/x"));
    let got = got.unwrap_or_else(|e| panic!("fetch from banner-v1: {e}"));
    assert_eq!((got.status, got.body.as_str()), (200, "hello from echo"));
    assert!(
        c.logs("echo-v1")
            .unwrap_or_default()
            .contains("GET /x HTTP/1.1"),
        "the request is in echo's app log"
    );

    // A server-first TCP app, reached from another pod.
    let banner_ip = c.mesh().pod_ip("banner-v1").expect("banner-v1 has an IP");
    let out = c.exec(
        "echo-v1",
        &[TOOL, "tcp-send", &format!("{banner_ip}:7000"), "ping"],
    );
    let out = out.unwrap_or_else(|e| panic!("tcp-send: {e}"));
    assert_eq!(out.stdout, "HELLO\nping\n", "{out:?}");

    // Service names resolve to VIPs through each pod's hosts file; short
    // names only within the pod's namespace, as with a Kubernetes search path.
    let echo_vip = c.mesh().service_vip("echo", "default").expect("echo VIP");
    let shop_vip = c.mesh().service_vip("shop", "store").expect("shop VIP");
    assert_ne!(echo_vip, shop_vip);
    assert!(echo_vip.to_string().starts_with("198.19."), "{echo_vip}");
    for (pod, name, want) in [
        ("banner-v1", "echo", Some(echo_vip)),
        ("banner-v1", "echo.default", Some(echo_vip)),
        (
            "banner-v1",
            "echo.default.svc.cluster.local",
            Some(echo_vip),
        ),
        ("banner-v1", "shop.store", Some(shop_vip)),
        ("banner-v1", "shop", None),
        ("shop-v1", "shop", Some(shop_vip)),
    ] {
        let out = c.exec(pod, &[TOOL, "resolve", name]);
        let out = out.unwrap_or_else(|e| panic!("resolve: {e}"));
        match want {
            Some(ip) => assert_eq!(out.stdout.trim(), ip.to_string(), "{name} in {pod}"),
            None => assert!(!out.success(), "{name} resolved in {pod}: {out:?}"),
        }
    }
    // Without capture nothing listens on a VIP: the name resolves, the
    // connection fails (and never leaves the bridge).
    let via_vip = c.http_get("banner-v1", "http://echo:8080/");
    assert!(
        via_vip.is_err(),
        "VIP answered without capture: {via_vip:?}"
    );

    // The test process reaches pods over the bridge.
    let addr =
        std::net::SocketAddr::from((c.mesh().pod_ip("echo-v1").expect("echo address"), 8080));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());

    c.teardown().unwrap_or_else(|e| panic!("teardown: {e}"));
    traces.assert_gone();
}

#[test]
fn a_panicking_test_still_tears_down() {
    if !runnable() {
        return;
    }
    let mut traces = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut c = LocalCluster::new().unwrap_or_else(|e| panic!("cluster: {e}"));
        c.deploy(&server("doomed-v1", "doomed", "x"))
            .unwrap_or_else(|e| panic!("deploy: {e}"));
        traces = Some(Traces::of(&c, &["doomed-v1"]));
        panic!("a scenario failed");
    }));
    assert!(result.is_err());
    traces.expect("the cluster was built").assert_gone();
}

/// A pid that no process has, as a killed run would leave behind.
fn dead_pid() -> u32 {
    (100_000..4_000_000)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("some pid is free")
}

#[test]
fn cleanup_stale_removes_a_killed_runs_leftovers_and_nothing_else() {
    if !runnable() {
        return;
    }
    let dead = format!("{SUITE_TAG}{}x1", dead_pid());
    let live = format!("{SUITE_TAG}{}xzz", std::process::id());
    let (dead_ns, live_ns) = (format!("{dead}-pod"), format!("{live}-pod"));
    sh(&["ip", "netns", "add", &dead_ns]);
    sh(&["ip", "netns", "add", &live_ns]);
    sh(&["ip", "link", "add", &format!("{dead}br"), "type", "bridge"]);
    let etc = Path::new("/etc/netns").join(&dead_ns);
    let run = Path::new(mesh_local::RUN_ROOT).join(&dead);
    for dir in [&etc, &run] {
        std::fs::create_dir_all(dir).expect("make leftover dir");
    }
    // A process of the dead run, inside its namespace.
    let mut orphan = Command::new("ip")
        .args(["netns", "exec", &dead_ns, "sleep", "60"])
        .env(mesh_local::RUN_ENV, &dead)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sleep");

    let removed = cleanup_stale(SUITE_TAG);
    let orphan_gone = mesh_local::cmd::wait_until(
        &mut orphan,
        std::time::Instant::now() + Duration::from_secs(5),
    );
    let netns = sh(&["ip", "netns", "list"]);
    let live_kept = netns.contains(&live_ns);
    let _ = sh(&["ip", "netns", "del", &live_ns]);
    if orphan_gone.is_none() {
        let _ = orphan.kill();
        let _ = orphan.wait();
    }
    let removed = removed.unwrap_or_else(|e| panic!("cleanup_stale: {e}"));
    assert!(orphan_gone.is_some(), "the dead run's process still runs");
    assert!(live_kept, "a live run's namespace was removed");
    assert!(!netns.contains(&dead_ns), "{dead_ns} left: {netns}");
    assert!(!mesh_local::net::link_exists(&format!("{dead}br")));
    assert!(!etc.exists() && !run.exists(), "{removed:?}");
}

#[test]
fn gateways_shared_files_and_a_database_outside_the_mesh() {
    if !runnable() {
        return;
    }
    if let Some(why) = mesh_local::postgres_missing() {
        skip("local plumbing (postgres)", &why);
        return;
    }
    let mut c = LocalCluster::new().unwrap_or_else(|e| panic!("cluster: {e}"));
    let fail = |what: &str, e: mesh_e2e::E2eError| -> ! { panic!("{what}: {e}") };
    c.deploy_ingress().unwrap_or_else(|e| fail("ingress", e));
    let egress_port = mesh_e2e::Port {
        name: "tcp-db".into(),
        number: 7777,
        protocol: "TCP".into(),
    };
    c.deploy_egress(&[egress_port])
        .unwrap_or_else(|e| fail("egress", e));
    c.deploy_postgres("orders-db", "external")
        .unwrap_or_else(|e| fail("postgres", e));
    let client = server("client-v1", "client", "x");
    c.deploy(&client).unwrap_or_else(|e| fail("client", e));
    let traces = Traces::of(
        &c,
        &[
            "istio-ingressgateway",
            "istio-egressgateway",
            "orders-db",
            "client-v1",
        ],
    );

    // The ingress serves Gateway ports 80 and 443 on their mapped ports.
    let ingress = c.mesh().pod_ip("istio-ingressgateway").expect("ingress IP");
    assert_eq!(c.ingress_address(443).ok(), Some(format!("{ingress}:8443")));
    assert_eq!(c.ingress_url().ok(), Some(format!("http://{ingress}:8080")));
    assert!(c.ingress_address(9999).is_err());

    // The egress gateway is a Service like any other: a VIP in every
    // pod's hosts file, a ServiceEntry and a WorkloadEntry for pilot.
    let vip = c
        .mesh()
        .service_vip("istio-egressgateway", "istio-system")
        .expect("egress VIP");
    let out = c.exec(
        "client-v1",
        &[TOOL, "resolve", "istio-egressgateway.istio-system"],
    );
    assert_eq!(
        out.map(|o| o.stdout.trim().to_string()).ok(),
        Some(vip.to_string())
    );
    let registry = std::fs::read_to_string(c.run_dir().join("config/00-local-registry.yaml"))
        .expect("registry config");
    assert!(
        registry.contains("istio-egressgateway.istio-system.svc.cluster.local"),
        "{registry}"
    );
    assert!(registry.contains("istio: egressgateway"), "{registry}");
    assert!(
        !registry.contains("orders-db"),
        "the database is outside the mesh: {registry}"
    );

    // A shared file is readable by the proxy's UID inside a pod.
    let path = c
        .put_file("server.pem", "-----BEGIN CERTIFICATE-----\n")
        .unwrap_or_else(|e| fail("put_file", e));
    let out = c.exec(
        "client-v1",
        &[
            "setpriv",
            "--reuid=1337",
            "--regid=1337",
            "--clear-groups",
            "cat",
            &path,
        ],
    );
    assert_eq!(
        out.map(|o| o.stdout).ok().as_deref(),
        Some("-----BEGIN CERTIFICATE-----\n")
    );
    assert!(c.put_file("../escape", "x").is_err());

    // PostgreSQL answers a real client from another pod, and logs the peer.
    let db = c.pod_address("orders-db").expect("db address");
    let out = c
        .exec(
            "client-v1",
            &["psql", "-h", &db, "-U", "postgres", "-tAc", "select 40 + 2"],
        )
        .unwrap_or_else(|e| fail("psql", e));
    assert_eq!(out.stdout.trim(), "42", "{out:?}");
    let client_ip = c.pod_address("client-v1").expect("client address");
    let logs = c.logs("orders-db").unwrap_or_default();
    assert!(
        logs.contains(&format!("connection received: host={client_ip}")),
        "{logs}"
    );
    assert!(
        c.proxy_log("client-v1").unwrap_or_default().is_empty(),
        "no sidecar, no proxy log"
    );

    c.teardown().unwrap_or_else(|e| fail("teardown", e));
    traces.assert_gone();
}

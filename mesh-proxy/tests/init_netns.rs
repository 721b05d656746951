//! `mesh-proxy init` against a real nat table: in a fresh network namespace,
//! init twice leaves one copy of the rules, the rules really redirect the
//! right connections, and cleanup restores the table exactly. Root only.
//!
//! The probes must run as whole processes (as root and as the proxy's UID,
//! which the nat rules tell apart), so the test runs the `mesh-proxy init`
//! binary, or re-runs this test binary, inside the namespace (`ip netns exec
//! NS <exe> --ignored --exact netns_helper`); the helper calls the library
//! or probes where connections land.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use mesh_proxy::init::{cleanup, run, InitConfig};
use mesh_test_support::netns::{ok, Netns};
use mesh_test_support::{netns_missing, require};

/// The `mesh-proxy` binary of this build.
const PROXY_BIN: &str = env!("CARGO_BIN_EXE_mesh-proxy");
/// Env var that tells `netns_helper` what to do inside the namespace.
const ACTION: &str = "MESH_INIT_TEST_ACTION";
/// An address on the namespace's veth: "this pod's IP".
const POD_IP: &str = "198.18.0.2";
/// An address behind the veth: "some other service", never answered.
const REMOTE_IP: &str = "198.18.0.9";
/// Ports the probe listens on: outbound capture, inbound capture, the app.
const PROBE_PORTS: [u16; 3] = [15001, 15006, 9080];

/// What these tests do with their namespace beyond the shared guard.
trait InitNetns {
    /// The nat table without comments and counters, for exact comparison.
    fn nat(&self) -> String;
    /// Runs `netns_helper` in the namespace, as root or as the proxy's UID.
    fn helper(&self, action: &str, as_proxy: bool) -> String;
    /// Where a connection to `target` made by root or the proxy UID lands.
    fn probe(&self, target: &str, as_proxy: bool) -> String;
}

impl InitNetns for Netns {
    fn nat(&self) -> String {
        self.ok(&["iptables-save", "-t", "nat"])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.find(" [") {
                Some(i) if l.starts_with(':') => format!("{} [0:0]", &l[..i]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn helper(&self, action: &str, as_proxy: bool) -> String {
        let exe = std::env::current_exe().expect("test binary path");
        let exe = exe.to_string_lossy();
        let mut args = Vec::new();
        if as_proxy {
            args.extend(["setpriv", "--reuid=1337", "--regid=1337", "--clear-groups"]);
        }
        args.extend([&*exe, "--ignored", "--exact", "netns_helper", "--nocapture"]);
        args.extend(["--test-threads=1"]);
        let mut cmd = self.cmd(&args);
        cmd.env(ACTION, action);
        ok(&mut cmd)
    }

    fn probe(&self, target: &str, as_proxy: bool) -> String {
        let out = self.helper(&format!("probe {target}"), as_proxy);
        out.lines()
            .find_map(|l| l.strip_prefix("landed="))
            .unwrap_or("<no probe output>")
            .to_string()
    }
}

#[test]
fn init_twice_redirects_once_and_cleanup_restores_the_table() {
    if !require("mesh-proxy init in a network namespace", netns_missing()) {
        return;
    }
    // A veth pair with both ends inside: the far end has no address, so
    // nothing ever answers for REMOTE_IP.
    let ns = Netns::create("mpinit", &format!("{POD_IP}/24"));
    // Someone else's rules, which init and cleanup must leave alone.
    ns.ok(&["iptables", "-t", "nat", "-N", "OTHER"]);
    ns.ok(&[
        "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "OTHER",
    ]);
    let before = ns.nat();

    // Once through the real CLI, once through the library.
    ns.ok(&[PROXY_BIN, "init"]);
    let once = ns.nat();
    ns.helper("install", false);
    let twice = ns.nat();
    assert_eq!(once, twice, "second init changed the table");
    for line in [
        ":MESH_INBOUND - [0:0]",
        ":MESH_IN_REDIRECT - [0:0]",
        ":MESH_OUTPUT - [0:0]",
        ":MESH_REDIRECT - [0:0]",
        "-A PREROUTING -p tcp -j MESH_INBOUND",
        "-A OUTPUT -p tcp -j MESH_OUTPUT",
        "-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A MESH_INBOUND -p tcp -m tcp --dport 15021 -j RETURN",
        "-A OUTPUT -p udp -j OTHER",
    ] {
        let n = twice.lines().filter(|l| *l == line).count();
        assert_eq!(n, 1, "{line:?} appears {n} times in\n{twice}");
    }

    // The app's outbound call is captured; the proxy's own is not.
    let remote = format!("{REMOTE_IP}:80");
    assert_eq!(ns.probe(&remote, false), "15001");
    assert_eq!(ns.probe(&remote, true), "none");
    // The proxy calling its own pod goes through inbound capture; the app
    // calling itself over lo does not.
    let own = format!("{POD_IP}:9080");
    assert_eq!(ns.probe(&own, true), "15006");
    assert_eq!(ns.probe(&own, false), "9080");

    ns.ok(&[PROXY_BIN, "init", "--cleanup"]);
    assert_eq!(ns.nat(), before, "cleanup did not restore the table");
    ns.helper("cleanup", false);
    assert_eq!(ns.nat(), before, "a second cleanup changed the table");
}

/// `--dry-run` prints the rules and changes nothing; no root needed.
#[test]
fn dry_run_prints_the_restore_input() {
    let out = Command::new(PROXY_BIN)
        .args(["init", "--dry-run", "--proxy-uid", "2000"])
        .output()
        .expect("run mesh-proxy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in [
        "*nat",
        "-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A MESH_OUTPUT -m owner --uid-owner 2000 -j RETURN",
        "COMMIT",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{stdout}"
        );
    }
}

/// Runs inside the namespace on behalf of the test above; a no-op otherwise.
#[test]
#[ignore = "helper: run by the netns test inside its namespace"]
fn netns_helper() {
    let Ok(action) = std::env::var(ACTION) else {
        return;
    };
    let cfg = InitConfig::default();
    match action.split_once(' ') {
        None if action == "install" => run(&cfg).unwrap_or_else(|e| panic!("init: {e}")),
        None if action == "cleanup" => cleanup(&cfg).unwrap_or_else(|e| panic!("cleanup: {e}")),
        // Own line: the harness has already printed "test netns_helper ... ".
        Some(("probe", target)) => println!("\nlanded={}", probe(target)),
        _ => panic!("unknown helper action {action:?}"),
    }
}

/// Connects to `target` and reports which local probe port accepted it.
fn probe(target: &str) -> String {
    let listeners: Vec<(u16, TcpListener)> = PROBE_PORTS
        .iter()
        .map(|p| {
            let l = TcpListener::bind(("0.0.0.0", *p)).unwrap_or_else(|e| panic!("bind {p}: {e}"));
            l.set_nonblocking(true).expect("nonblocking");
            (*p, l)
        })
        .collect();
    let target: SocketAddr = target.parse().expect("probe target");
    // Uncaptured connections to REMOTE_IP go nowhere: they time out.
    let _conn = TcpStream::connect_timeout(&target, Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        for (port, l) in &listeners {
            match l.accept() {
                Ok(_) => return port.to_string(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept on {port}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "none".to_string()
}

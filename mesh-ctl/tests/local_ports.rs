//! `meshctl local up` checks that every port it will listen on is free
//! before it starts anything: a port in use fails the command at once,
//! naming the port and the process holding it (here, this test), and
//! nothing is left running.

use std::fs;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::*;

/// Runs `meshctl local up` on the postcard sample with `args`, in a temp
/// state dir; kills it if it has not exited within a minute (it should
/// exit long before, without starting anything).
fn local_up(args: &[String]) -> (Output, tempfile::TempDir) {
    let state_dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(meshctl_path())
        .args(["local", "up", "-f"])
        .arg(workspace_root().join("samples/postcard"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir.path())
        .arg("--bin-dir")
        .arg(product_bin_dir(state_dir.path()))
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start meshctl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("local up did not fail within 60 s: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), state_dir)
}

fn held_by_us(port: u16) -> String {
    format!("127.0.0.1:{port} is in use by pid {} (", std::process::id())
}

/// What the mesh needs each port for, as the error names it.
const INGRESS: &str = "(the ingress gateway, --ingress-port)";
const XDS: &str = "(pilot's xDS, --xds-port)";
const INGRESS_ADMIN: &str = "(the ingress gateway's admin, --ingress-admin-port)";

fn assert_refused(out: &Output, state_dir: &tempfile::TempDir, ports: &[(u16, &str)]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "local up succeeded: {out:?}");
    for (port, purpose) in ports {
        let line = format!("port {port} {purpose}: {}", held_by_us(*port));
        assert!(
            stderr.contains(&line),
            "no {line:?} (the port, its use and this test's pid) in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("cannot start the local mesh"),
        "no summary in:\n{stderr}"
    );
    // Nothing was started: no state of a running mesh was written.
    assert!(
        fs::metadata(state_dir.path().join("state.json")).is_err(),
        "local up started a mesh:\n{stderr}"
    );
}

#[test]
fn loopback_mode_names_every_port_in_use_and_its_holder() {
    build_binaries(&[], &[]);
    let ingress = TcpListener::bind("127.0.0.1:0").expect("bind");
    let xds = TcpListener::bind("127.0.0.1:0").expect("bind");
    let [ingress_port, xds_port] =
        [&ingress, &xds].map(|l| l.local_addr().expect("address").port());
    let [ingress_admin, debug] = free_ports();
    let (out, state_dir) = local_up(&[
        "--mode".into(),
        "loopback".into(),
        "--ingress-port".into(),
        ingress_port.to_string(),
        "--ingress-admin-port".into(),
        ingress_admin.to_string(),
        "--xds-port".into(),
        xds_port.to_string(),
        "--debug-port".into(),
        debug.to_string(),
    ]);
    assert_refused(
        &out,
        &state_dir,
        &[(ingress_port, INGRESS), (xds_port, XDS)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for free in [ingress_admin, debug] {
        assert!(
            !stderr.contains(&format!(":{free} is in use")),
            "a free port reported busy:\n{stderr}"
        );
    }
}

#[test]
fn namespaces_mode_checks_the_ports_it_publishes_on_the_host() {
    if let Some(why) = mesh_local::LocalMesh::unavailable() {
        mesh_test_support::skip("meshctl local up --mode namespaces", &why);
        return;
    }
    build_binaries(&[], &[]);
    let admin = TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin_port = admin.local_addr().expect("address").port();
    let [ingress] = free_ports();
    let (out, state_dir) = local_up(&[
        "--mode".into(),
        "namespaces".into(),
        "--ingress-port".into(),
        ingress.to_string(),
        "--ingress-admin-port".into(),
        admin_port.to_string(),
    ]);
    assert_refused(&out, &state_dir, &[(admin_port, INGRESS_ADMIN)]);
}

//! `meshctl local up --mode namespaces` end to end (root only): every
//! postcard workload runs as a pod (network namespace on a bridge,
//! 198.18.N.x, `mesh-proxy init` capture, sidecar as UID 1337, the app with
//! no proxy settings); the test fetches the postcard through the printed
//! ingress URL, applies all-v2 and sees v2, runs `local down` and checks
//! that no namespace, link, `/etc/netns` entry or process of the run is
//! left. Free ports picked at start (ingress, its admin) and a temp state
//! dir keep it apart from a `local up` a person may be running.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use mesh_local::process::{signal, tagged_pids, Signal};
use mesh_test_support::skip;
use std::time::{Duration, Instant};

mod support;

use support::*;

/// The running `meshctl local up`; SIGTERM (then SIGKILL) when dropped, so
/// a failing test still tears down through meshctl itself.
struct Mesh {
    child: Option<Child>,
    state_dir: tempfile::TempDir,
    /// The ingress gateway's URL on the host.
    ingress: String,
}

impl Mesh {
    fn start() -> Mesh {
        let state_dir = tempfile::tempdir().expect("temp dir");
        let out = fs::File::create(state_dir.path().join("meshctl.out")).expect("out file");
        let err = out.try_clone().expect("out file");
        let [ingress, ingress_admin] = free_ports();
        let child = Command::new(meshctl_path())
            .args(["local", "up", "-f"])
            .arg(workspace_root().join("samples/postcard"))
            .args(["--mode", "namespaces"])
            .args(["--ingress-port", &ingress.to_string()])
            .args(["--ingress-admin-port", &ingress_admin.to_string()])
            .arg("--state-dir")
            .arg(state_dir.path())
            .arg("--bin-dir")
            .arg(product_bin_dir(state_dir.path()))
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start meshctl");
        Mesh {
            child: Some(child),
            state_dir,
            ingress: format!("http://127.0.0.1:{ingress}/"),
        }
    }

    fn dir(&self) -> &Path {
        self.state_dir.path()
    }

    fn state(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.dir().join("state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until state.json says ready; returns the state.
    fn wait_ready(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(state) = self.state().filter(|s| s["ready"] == true) {
                return state;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("meshctl local up exited early: {status}");
            }
            assert!(Instant::now() < deadline, "local mesh not ready in time");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn meshctl(&self, args: &[&str]) -> Output {
        Command::new(meshctl_path())
            .args(args)
            .arg("--state-dir")
            .arg(self.dir())
            .output()
            .expect("run meshctl")
    }

    fn output(&self) -> String {
        fs::read_to_string(self.dir().join("meshctl.out")).unwrap_or_default()
    }

    fn dump(&self) {
        eprintln!("---- meshctl local up output ----\n{}", self.output());
        if let Ok(entries) = fs::read_dir(self.dir().join("logs")) {
            for entry in entries.flatten() {
                let text = fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<_> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(25)..].join("\n");
                eprintln!("---- {} (tail) ----\n{tail}", entry.path().display());
            }
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                signal(child.id(), Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(30);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn run(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What of the run with `prefix` still exists: namespaces, links,
/// `/etc/netns` entries, processes tagged with it.
fn leftovers(prefix: &str) -> Vec<String> {
    let mut left: Vec<String> = run("ip", &["netns", "list"])
        .lines()
        .chain(run("ip", &["-o", "link", "show"]).lines())
        .filter(|l| l.contains(prefix))
        .map(String::from)
        .collect();
    if let Ok(entries) = fs::read_dir("/etc/netns") {
        left.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix)),
        );
    }
    left.extend(
        tagged_pids(prefix)
            .iter()
            .map(|pid| format!("process {pid}")),
    );
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postcard_through_pods_with_capture() {
    if let Some(why) = mesh_local::LocalMesh::unavailable() {
        skip("meshctl local up --mode namespaces", &why);
        return;
    }
    // Only the product's binaries: the pods need no test tool.
    build_binaries(&[], &[]);
    let mut mesh = Mesh::start();
    let state = mesh.wait_ready();
    let ingress = mesh.ingress.clone();
    let prefix = state["netns_prefix"]
        .as_str()
        .expect("state.json names the run's prefix in namespaces mode")
        .to_string();
    assert!(prefix.starts_with("mesh"), "{prefix}");
    assert_eq!(state["ingress_url"], ingress.as_str());
    assert!(mesh.output().contains(&ingress), "{}", mesh.output());

    // The sample's workloads were re-addressed into 198.18.0.0/15 for pilot;
    // the user's files were not touched.
    let config_dir = PathBuf::from(state["config_dir"].as_str().unwrap_or_default());
    let workloads = fs::read_to_string(config_dir.join("workloads.yaml")).unwrap_or_default();
    assert!(workloads.contains("198.18."), "{workloads}");
    let services = fs::read_to_string(config_dir.join("services.yaml")).unwrap_or_default();
    assert!(services.contains("198.19."), "{services}");
    let original =
        fs::read_to_string(workspace_root().join("samples/postcard/mesh/workloads.yaml"));
    assert!(original.is_ok_and(|t| t.contains("127.0.10.1")));
    assert_eq!(run("ip", &["netns", "list"]).matches(&prefix).count(), 3);

    let client = client();
    until_card_shows(&client, &ingress, V1, Duration::from_secs(30)).await;

    let all_v2 = workspace_root().join("samples/postcard/mesh/routes/all-v2.yaml");
    let out = mesh.meshctl(&["apply", "-f", all_v2.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "apply: {out:?}");
    until_card_shows(&client, &ingress, V2, Duration::from_secs(30)).await;

    let out = mesh.meshctl(&["local", "down"]);
    assert!(out.status.success(), "local down: {out:?}");
    if let Some(mut child) = mesh.child.take() {
        let status = child.wait().expect("meshctl exits after local down");
        assert!(status.success(), "meshctl local up: {status}");
    }
    let left = leftovers(&prefix);
    assert!(left.is_empty(), "left behind by the run: {left:#?}");
    assert!(
        client.get(&ingress).send().await.is_err(),
        "ingress still answers"
    );
    assert!(mesh.state().is_none(), "state.json remains");
}

//! End to end on one machine: `meshctl local up` runs pilot, the ingress
//! gateway, greeter and messenger v1/v2 with their sidecars as real
//! processes on loopback; the test drives traffic through the gateway while
//! `meshctl apply` changes the routes, then `meshctl local down` stops it
//! all. Free ports picked at start (ingress, its admin, xds, debug) and a
//! temp state dir keep it apart from a `local up` a person may be running,
//! except for the sample's fixed workload addresses (127.0.10.x).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use mesh_local::process::{alive, kill_tagged, signal, signal_group, tagged_pids, Signal};
use std::time::{Duration, Instant};

mod support;

use support::*;

/// The running `meshctl local up`; stops it and everything it started when
/// dropped, also when the test fails, and prints what happened.
struct Mesh {
    child: Option<Child>,
    state_dir: tempfile::TempDir,
    run: Option<String>,
    pids: Vec<u32>,
    /// The ingress gateway's URL.
    ingress: String,
    /// Pilot's debug address.
    debug: String,
}

impl Mesh {
    fn start() -> Mesh {
        let state_dir = tempfile::tempdir().expect("temp dir");
        let out = fs::File::create(state_dir.path().join("meshctl.out")).expect("out file");
        let err = out.try_clone().expect("out file");
        let [ingress, ingress_admin, xds, debug] = free_ports();
        let child = Command::new(meshctl_path())
            .args(["local", "up", "-f"])
            .arg(workspace_root().join("samples/postcard"))
            .args([
                // As root, `auto` would pick namespaces: this test is the
                // loopback mode's (tests/local_namespaces.rs is the other).
                "--mode",
                "loopback",
                "--ingress-port",
                &ingress.to_string(),
                "--ingress-admin-port",
                &ingress_admin.to_string(),
                "--xds-port",
                &xds.to_string(),
                "--debug-port",
                &debug.to_string(),
            ])
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
            run: None,
            pids: vec![],
            ingress: format!("http://127.0.0.1:{ingress}/"),
            debug: format!("127.0.0.1:{debug}"),
        }
    }

    fn dir(&self) -> &Path {
        self.state_dir.path()
    }

    fn state(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.dir().join("state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until state.json says ready; remembers the processes.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Some(state) = self.state() {
                self.run = state["run"].as_str().map(String::from);
                self.pids = state["processes"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter_map(|p| p["pid"].as_u64())
                            .map(|p| p as u32)
                            .collect()
                    })
                    .unwrap_or_default();
                if state["ready"] == serde_json::Value::Bool(true) {
                    return;
                }
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

    fn dump(&self) {
        let out = fs::read_to_string(self.dir().join("meshctl.out")).unwrap_or_default();
        eprintln!("---- meshctl local up output ----\n{out}");
        if let Ok(entries) = fs::read_dir(self.dir().join("logs")) {
            for entry in entries.flatten() {
                let text = fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<_> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
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
                let deadline = Instant::now() + Duration::from_secs(15);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(run) = &self.run {
            kill_tagged(run);
        }
        for pid in &self.pids {
            signal_group(*pid, Signal::SIGKILL);
        }
    }
}

/// Sends `n` requests over a few connections: (v1, v2, other).
async fn count(client: &reqwest::Client, url: &str, n: usize) -> (usize, usize, usize) {
    let workers = 8;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let client = client.clone();
        let url = url.to_string();
        let share = n / workers + usize::from(w < n % workers);
        set.spawn(async move {
            let (mut v1, mut v2, mut other) = (0, 0, 0);
            for _ in 0..share {
                let body = card(&client, &url).await;
                if body.contains(V1) {
                    v1 += 1;
                } else if body.contains(V2) {
                    v2 += 1;
                } else {
                    other += 1;
                }
            }
            (v1, v2, other)
        });
    }
    let mut total = (0, 0, 0);
    while let Some(Ok((a, b, c))) = set.join_next().await {
        total = (total.0 + a, total.1 + b, total.2 + c);
    }
    total
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("config dir")
        .flatten()
        .map(|e| {
            let p = e.path();
            (
                p.display().to_string(),
                fs::read_to_string(&p).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postcard_through_the_local_mesh() {
    build_binaries(&[], &[]);
    let mut mesh = Mesh::start();
    mesh.wait_ready();
    let ingress = mesh.ingress.clone();
    let client = client();
    let routes = workspace_root().join("samples/postcard/mesh/routes");

    // 1. The default route: messenger v1.
    let body = until_card_shows(&client, &ingress, V1, Duration::from_secs(20)).await;
    assert!(!body.contains("no message"), "{body}");

    // 2. All to v2.
    let out = mesh.meshctl(&[
        "apply",
        "-f",
        &routes.join("all-v2.yaml").display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "apply all-v2 failed: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("virtualservice.networking.istio.io/messenger configured"),
        "{}",
        stdout(&out)
    );
    until_card_shows(&client, &ingress, V2, Duration::from_secs(10)).await;

    // 3. The 80/20 canary, once v1 answers again (the new routes are in).
    let out = mesh.meshctl(&[
        "apply",
        "-f",
        &routes.join("canary-80-20.yaml").display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "apply canary failed: {}",
        stderr(&out)
    );
    until_card_shows(&client, &ingress, V1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (v1, v2, other) = count(&client, &ingress, 1000).await;
    assert!(
        other <= 10,
        "{other} of 1000 cards without a message (v1 {v1}, v2 {v2})"
    );
    let share_v2 = v2 as f64 / (v1 + v2) as f64;
    assert!(
        (0.15..=0.25).contains(&share_v2),
        "v2 got {:.1}% (v1 {v1}, v2 {v2}), expected 20% ± 5",
        share_v2 * 100.0
    );

    // 3b. A header route: the tester sees v2, everyone else v1 (greeter
    // forwards `x-user`).
    let header_route = routes.join("header-tester-v2.yaml").display().to_string();
    let out = mesh.meshctl(&["apply", "-f", &header_route]);
    assert!(
        out.status.success(),
        "apply header route failed: {}",
        stderr(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tester_v2 = match client.get(&ingress).header("x-user", "tester").send().await {
            Ok(resp) => resp.text().await.unwrap_or_default().contains(V2),
            Err(_) => false,
        };
        let (v1, v2, _) = count(&client, &ingress, 16).await;
        if tester_v2 && v1 == 16 && v2 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "header route not in effect (others: v1 {v1}, v2 {v2})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 4. meshctl rejects an invalid file and changes nothing.
    let config_dir = mesh.dir().join("config");
    let before = snapshot(&config_dir);
    let bad = mesh.dir().join("bad-route.yaml");
    fs::write(
        &bad,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: messenger\nspec:\n  hosts: [messenger]\n  http:\n  - route:\n    - destination: {host: messenger, subset: v3}\n",
    )
    .expect("write bad file");
    let out = mesh.meshctl(&["apply", "-f", &bad.display().to_string()]);
    assert!(
        !out.status.success(),
        "invalid file was applied: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("spec.http[0].route[0].destination"),
        "no field path in: {}",
        stderr(&out)
    );
    assert_eq!(
        snapshot(&config_dir),
        before,
        "rejected apply changed the config"
    );

    // 5. An invalid file written straight into the config dir (weights
    // that leave every destination without traffic): pilot reports it and
    // keeps serving the last good config.
    fs::write(
        config_dir.join("broken.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: broken\nspec:\n  hosts: [messenger]\n  http:\n  - route:\n    - destination: {host: messenger, subset: v1}\n      weight: 0\n    - destination: {host: messenger, subset: v2}\n      weight: 0\n",
    )
    .expect("write broken file");
    let deadline = Instant::now() + Duration::from_secs(10);
    let configz = format!("http://{}/debug/configz", mesh.debug);
    loop {
        let json: serde_json::Value = match client.get(&configz).send().await {
            Ok(resp) => resp.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        // Errors are JSON objects that read back as mesh-api's ConfigError:
        // match the file field, not the text.
        let errors: Vec<mesh_api::ConfigError> =
            serde_json::from_value(json["errors"].clone()).unwrap_or_default();
        let reported = errors.iter().any(|e| {
            e.file == config_dir.join("broken.yaml")
                && e.kind == mesh_api::ErrorKind::InvalidValue
                && e.path == "spec.http[0].route"
                && e.line == Some(8)
        });
        if reported {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pilot never reported broken.yaml: {json}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (v1, v2, other) = count(&client, &ingress, 100).await;
    assert!(
        other == 0 && v1 > 0,
        "traffic broke after a bad file: v1 {v1}, v2 {v2}, other {other}"
    );

    // 6. Deleting the route leaves messenger without a VirtualService:
    // both versions answer.
    let out = mesh.meshctl(&["delete", "-f", &header_route]);
    assert!(out.status.success(), "delete failed: {}", stderr(&out));
    assert!(
        stdout(&out).contains("virtualservice.networking.istio.io \"messenger\" deleted"),
        "{}",
        stdout(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (v1, v2, _) = count(&client, &ingress, 40).await;
        if v1 > 0 && v2 > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "after delete: v1 {v1}, v2 {v2}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 7. local down stops everything.
    let pids = mesh.pids.clone();
    let run = mesh.run.clone().expect("state.json names the run");
    assert_eq!(pids.len(), 8, "expected 8 processes, state had {pids:?}");
    let out = mesh.meshctl(&["local", "down"]);
    assert!(out.status.success(), "local down failed: {}", stderr(&out));
    let mut child = mesh.child.take().expect("meshctl child");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait meshctl") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "meshctl did not exit after local down"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "meshctl local up exited with {status}");
    let left: Vec<_> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(
        left.is_empty(),
        "processes still running after local down: {left:?}"
    );
    assert!(tagged_pids(&run).is_empty(), "processes of {run} left");
    assert!(!mesh.dir().join("state.json").exists());
}

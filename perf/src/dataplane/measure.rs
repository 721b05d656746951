//! One measurement: a path checked, then loaded at a fixed rate or in a
//! closed loop by a load generator pinned to CPU 0, with the proxies' CPU
//! and RSS read from `/proc` before and after.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::oha::{self, Mode, OhaRun};
use super::setup::{Fleet, LOAD_CPU};
use super::stats::{self, LoadResult};
use super::workload::{self, PathKind, Target, Workload, MESSAGE_SIZE};
use crate::procstat;

/// How long a path gets to answer its first correct request (routes and
/// endpoints may arrive after the listener).
const CHECK_LIMIT: Duration = Duration::from_secs(20);

/// What the load generators are and how hard they push.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// The oha binary.
    pub oha: PathBuf,
    /// `mesh-bench` itself, for `tcp-load`.
    pub bench: PathBuf,
    /// The fixed rate, requests per second.
    pub rate: u32,
    /// Connections, in both modes.
    pub connections: u32,
    /// Length of each measurement.
    pub duration: Duration,
    /// The gRPC request body file.
    pub grpc_body: PathBuf,
}

impl LoadSettings {
    /// Both modes, fixed rate first.
    pub fn modes(&self) -> [Mode; 2] {
        [
            Mode::Rate {
                rps: self.rate,
                connections: self.connections,
            },
            Mode::Ceiling {
                connections: self.connections,
            },
        ]
    }
}

/// A mode's name in reports: `rate-1000` or `ceiling-c32`.
pub fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Rate { rps, .. } => format!("rate-{rps}"),
        Mode::Ceiling { connections } => format!("ceiling-c{connections}"),
    }
}

/// What one proxy used during a measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyUse {
    /// `mesh-proxy-client`, `envoy-server`, ...
    pub name: String,
    /// CPU seconds (user + system) during the load.
    pub cpu_secs: f64,
    /// RSS before the load, bytes.
    pub rss_before: u64,
    /// RSS after the load, bytes.
    pub rss_after: u64,
}

/// One path × workload × mode.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Workload name.
    pub workload: &'static str,
    /// Path name.
    pub path: &'static str,
    /// Mode name.
    pub mode: String,
    /// Only the server sidecar was on the path.
    pub server_side_only: bool,
    /// The load generator's figures, if it ran.
    pub load: Option<LoadResult>,
    /// Why there are no figures, or why they do not count.
    pub failure: Option<String>,
    /// Anything worth knowing about the path's answers.
    pub note: Option<String>,
    /// Each proxy on the path.
    pub proxies: Vec<ProxyUse>,
    /// CPU seconds of the proxies per 1,000 requests.
    pub cpu_secs_per_1k: Option<f64>,
    /// Successful rps per core the proxies used.
    pub rps_per_proxy_core: Option<f64>,
    /// Wall time of the CPU sampling window, seconds.
    pub window_secs: f64,
}

impl Measurement {
    /// Whether the path failed: no figures, or most requests failed.
    pub fn broken(&self) -> bool {
        self.failure.is_some() || self.load.as_ref().is_none_or(LoadResult::mostly_failed)
    }
}

/// Check the path, then measure it in each mode.
pub async fn path(
    fleet: &mut Fleet,
    settings: &LoadSettings,
    workload: Workload,
    path: PathKind,
) -> Vec<Measurement> {
    let target = Target::of(workload, path);
    let blank = |mode: String| Measurement {
        workload: workload.name(),
        path: path.name(),
        mode,
        server_side_only: target.server_side_only,
        load: None,
        failure: None,
        note: None,
        proxies: Vec::new(),
        cpu_secs_per_1k: None,
        rps_per_proxy_core: None,
        window_secs: 0.0,
    };
    let note = match wait_for_check(workload, &target).await {
        Ok(note) => note,
        Err(e) => {
            let why = format!("{} does not answer {}: {e}", path.name(), workload.name());
            eprintln!("   {why}");
            return settings
                .modes()
                .iter()
                .map(|&m| Measurement {
                    failure: Some(why.clone()),
                    ..blank(mode_name(m))
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    for mode in settings.modes() {
        let mut m = blank(mode_name(mode));
        m.note.clone_from(&note);
        if let Err(e) = fleet.check_running() {
            m.failure = Some(format!("{e:#}"));
            out.push(m);
            continue;
        }
        let pids: Vec<(String, u32)> = fleet
            .proxies(path, target.server_side_only)
            .iter()
            .map(|s| (s.proc.name().to_string(), s.proc.pid()))
            .collect();
        let before: Vec<_> = pids.iter().map(|(_, pid)| procstat::sample(*pid)).collect();
        let started = Instant::now();
        let load = run_load(settings, workload, &target, mode).await;
        let window = started.elapsed().as_secs_f64();
        m.window_secs = window;
        for ((name, pid), before) in pids.iter().zip(before) {
            match (before, procstat::sample(*pid)) {
                (Ok(b), Ok(a)) => m.proxies.push(ProxyUse {
                    name: name.clone(),
                    cpu_secs: a.cpu.saturating_sub(b.cpu).as_secs_f64(),
                    rss_before: b.rss,
                    rss_after: a.rss,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    m.failure = Some(format!("{name} (pid {pid}) unreadable: {e}"));
                }
            }
        }
        match load {
            Ok(load) => {
                if !m.proxies.is_empty() {
                    let cpu: f64 = m.proxies.iter().map(|p| p.cpu_secs).sum();
                    m.cpu_secs_per_1k = stats::cpu_per_1k(cpu, load.requests());
                    m.rps_per_proxy_core =
                        stats::rps_per_core(load.ok as f64 / window, cpu, window);
                }
                m.load = Some(load);
            }
            Err(e) => m.failure = Some(format!("load generator: {e:#}")),
        }
        out.push(m);
    }
    out
}

async fn wait_for_check(workload: Workload, target: &Target) -> Result<Option<String>, String> {
    let deadline = Instant::now() + CHECK_LIMIT;
    loop {
        match workload::check(workload, target).await {
            Ok(note) => return Ok(note),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn run_load(
    settings: &LoadSettings,
    workload: Workload,
    target: &Target,
    mode: Mode,
) -> anyhow::Result<LoadResult> {
    let (program, args): (&Path, Vec<String>) = if workload == Workload::TcpEcho {
        (&settings.bench, tcp_load_args(settings, target, mode))
    } else {
        let run = OhaRun {
            url: target.url(workload),
            connect_to: (target.connect.to_string() != target.authority).then_some(target.connect),
            http2: workload.http2(),
            post_body: (workload == Workload::GrpcUnary).then(|| settings.grpc_body.clone()),
            headers: workload
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect(),
            mode,
            duration: settings.duration,
        };
        (&settings.oha, run.args()?)
    };
    let mut cmd = tokio::process::Command::new("taskset");
    cmd.arg("-c")
        .arg(LOAD_CPU.to_string())
        .arg(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // Bounded: the run's own length plus generous start and drain time.
    let limit = settings.duration + Duration::from_secs(30);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .with_context(|| format!("{} ran past {limit:?}", program.display()))?
        .with_context(|| format!("start {}", program.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} {}: {}: {}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if workload == Workload::TcpEcho {
        serde_json::from_str(&stdout).context("tcp-load JSON")
    } else {
        oha::parse_report(&stdout)
    }
}

fn tcp_load_args(settings: &LoadSettings, target: &Target, mode: Mode) -> Vec<String> {
    let mut a = vec![
        "tcp-load".to_string(),
        "--addr".into(),
        target.connect.to_string(),
        "--size".into(),
        MESSAGE_SIZE.to_string(),
        "--duration-ms".into(),
        settings.duration.as_millis().to_string(),
    ];
    match mode {
        Mode::Rate { rps, connections } => a.extend([
            "--rate".into(),
            rps.to_string(),
            "--connections".into(),
            connections.to_string(),
        ]),
        Mode::Ceiling { connections } => {
            a.extend(["--connections".into(), connections.to_string()])
        }
    }
    a
}

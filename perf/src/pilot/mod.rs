//! The pilot scale harness: a generated mesh of N services (`config.rs`),
//! a release `mesh-pilot` serving it, and M simulated sidecars on real ADS
//! streams in this process (`client.rs`). It measures how long every proxy
//! takes to receive and ACK its first full push, then how long a route
//! change and an endpoint change take to reach (and be ACKed by) every
//! proxy, with pilot's CPU and memory from /proc and the bytes sent.
//!
//! ```text
//!  config.rs ─► dir of N services ─► mesh-pilot (child) ◄─ADS─ M × client.rs ─► events
//!                    ▲ rewrite one file (route, endpoint)                          │
//!                    └──────────── mod.rs: phases, percentiles, report ◄──────────┘
//! ```

pub mod client;
pub mod config;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use envoy_types::pb::envoy::config::core::v3::Node;
use mesh_api::node::InterceptionMode;
use mesh_proxy::xds::node::{from_flags, to_envoy, WorkloadFlags};
use tokio::sync::mpsc;

use self::client::{Event, CDS, EDS, LDS, RDS};
use self::config::Variant;
use self::report::{Change, Percentiles, Report, Resources, Sync};
use crate::procstat;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Services in the generated mesh.
    pub services: usize,
    /// Simulated sidecars.
    pub proxies: usize,
    /// The `mesh-pilot` binary (a release build for real figures).
    pub pilot: PathBuf,
    /// Pilot's `--debounce-ms`.
    pub debounce_ms: u64,
    /// Longest any phase may take.
    pub timeout: Duration,
    /// Simulated proxies speak incremental (delta) xDS instead of state
    /// of the world.
    pub delta: bool,
}

/// A child process killed when dropped, pass or fail.
struct Pilot {
    child: Child,
    xds: SocketAddr,
    debug: SocketAddr,
}

impl Drop for Pilot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pilot {
    fn start(opts: &Options, dir: &Path, log: &Path) -> anyhow::Result<Pilot> {
        let xds = free_port()?;
        let debug = free_port()?;
        let log = std::fs::File::create(log).context("pilot log")?;
        let child = Command::new(&opts.pilot)
            .arg("--config-dir")
            .arg(dir)
            .args(["--xds-address", &xds.to_string()])
            .args(["--debug-address", &debug.to_string()])
            .args(["--debounce-ms", &opts.debounce_ms.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", opts.pilot.display()))?;
        let mut pilot = Pilot { child, xds, debug };
        let deadline = Instant::now() + opts.timeout;
        while TcpStream::connect(xds).is_err() {
            if let Some(status) = pilot.child.try_wait()? {
                bail!("pilot exited before serving: {status}");
            }
            if Instant::now() > deadline {
                bail!("pilot did not serve {xds} within {:?}", opts.timeout);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pilot)
    }

    fn sample(&self) -> anyhow::Result<procstat::Sample> {
        procstat::sample(self.child.id()).context("reading pilot's /proc")
    }

    /// The latest push's version and start time, from `/debug/pushz`.
    fn latest_push(&self) -> anyhow::Result<(String, SystemTime)> {
        use std::io::{Read, Write};
        let mut conn = TcpStream::connect(self.debug)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(conn, "GET /debug/pushz HTTP/1.0\r\nHost: pilot\r\n\r\n")?;
        let mut text = String::new();
        conn.read_to_string(&mut text)?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let doc: serde_json::Value = serde_json::from_str(body).context("/debug/pushz")?;
        let version = doc["version"].as_str().unwrap_or_default().to_string();
        let ms = doc["started_unix_ms"]
            .as_u64()
            .context("pushz started_unix_ms")?;
        Ok((version, UNIX_EPOCH + Duration::from_millis(ms)))
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Allow the file descriptors M streams take (one per proxy in each
/// process), up to the hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The node of simulated sidecar `i`: a REDIRECT-mode sidecar in one of
/// the generated namespaces, as in Kubernetes.
pub fn node(i: usize) -> anyhow::Result<Node> {
    let ns = config::namespace(i);
    let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)) + i as u32);
    let flags = WorkloadFlags {
        namespace: Some(ns.clone()),
        labels: BTreeMap::from([
            ("app".to_string(), format!("client-{}", i % 50)),
            ("version".to_string(), "v1".to_string()),
        ]),
        service_account: Some(format!("client-{}", i % 50)),
        interception_mode: InterceptionMode::Redirect,
        ..WorkloadFlags::default()
    };
    let id = format!("sidecar~{ip}~client-{i}.{ns}~{ns}.svc.cluster.local");
    Ok(to_envoy(&from_flags(&id, &flags)?))
}

/// What the harness knows of every proxy's stream.
struct Watcher {
    rx: mpsc::UnboundedReceiver<Event>,
    /// proxy -> type -> last version ACKed.
    versions: Vec<HashMap<&'static str, String>>,
}

/// Counters of the responses received in one phase.
#[derive(Default)]
struct Tally {
    responses: BTreeMap<&'static str, u64>,
    resources: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, e: &Event) {
        *self.responses.entry(short(e.type_url)).or_default() += 1;
        *self.resources.entry(short(e.type_url)).or_default() += e.resources as u64;
        self.bytes += e.bytes as u64;
    }

    fn into_resources(self) -> Resources {
        Resources {
            responses: self.responses,
            resources: self.resources,
            bytes: self.bytes,
        }
    }
}

fn short(type_url: &str) -> &'static str {
    match type_url {
        CDS => "cds",
        EDS => "eds",
        LDS => "lds",
        _ => "rds",
    }
}

impl Watcher {
    /// Wait until `done(proxy, versions)` holds for every proxy, noting
    /// for each the time of the ACK that made it hold.
    async fn until_all(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Event, &HashMap<&'static str, String>) -> bool,
        tally: &mut Tally,
    ) -> anyhow::Result<Vec<(Instant, SystemTime, String)>> {
        let n = self.versions.len();
        let mut at: Vec<Option<(Instant, SystemTime, String)>> = vec![None; n];
        let mut left = n;
        let deadline = tokio::time::Instant::now() + timeout;
        while left > 0 {
            let e = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => bail!("every simulated proxy stopped during {what}"),
                Err(_) => bail!(
                    "{what}: only {} of {n} proxies done after {timeout:?}",
                    n - left
                ),
            };
            tally.add(&e);
            let versions = &mut self.versions[e.proxy];
            versions.insert(e.type_url, e.version.clone());
            if at[e.proxy].is_none() && done(&e, versions) {
                at[e.proxy] = Some((e.acked_at, e.acked_wall, e.version.clone()));
                left -= 1;
            }
        }
        Ok(at.into_iter().flatten().collect())
    }

    /// Take what arrives until nothing has for `quiet`.
    async fn settle(&mut self, quiet: Duration, tally: &mut Tally) {
        while let Ok(Some(e)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            tally.add(&e);
            self.versions[e.proxy].insert(e.type_url, e.version.clone());
        }
    }
}

/// Run the harness once.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    raise_fd_limit();
    let tmp = tempfile::tempdir().context("temp dir")?;
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir)?;
    let yaml_bytes = config::write_all(&dir, opts.services)?;
    let pilot = Pilot::start(opts, &dir, &tmp.path().join("pilot.log"))?;
    let loaded = pilot.sample()?;

    // Every proxy connects at once and takes its first full push.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = Watcher {
        rx,
        versions: vec![HashMap::new(); opts.proxies],
    };
    let nodes: Vec<Node> = (0..opts.proxies).map(node).collect::<Result<_, _>>()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let names = Arc::new(client::Names::default());
    for (i, node) in nodes.into_iter().enumerate() {
        let tx = tx.clone();
        let addr = pilot.xds;
        let names = Arc::clone(&names);
        let delta = opts.delta;
        tasks.spawn(async move {
            let ended = if delta {
                client::run_delta(i, addr, node, names, tx).await
            } else {
                client::run(i, addr, node, names, tx).await
            };
            (i, ended)
        });
    }
    drop(tx);
    let mut tally = Tally::default();
    let synced = watcher
        .until_all(
            opts.timeout,
            "the first push",
            |_, v| [CDS, EDS, LDS, RDS].iter().all(|t| v.contains_key(t)),
            &mut tally,
        )
        .await
        .map_err(|e| with_ended(e, &mut tasks))?;
    let sync_wall = start.elapsed();
    let after_sync = pilot.sample()?;
    watcher.settle(Duration::from_millis(500), &mut tally).await;
    let first_push = Sync {
        latency: Percentiles::of(synced.iter().map(|(t, _, _)| t.duration_since(start))),
        wall_ms: ms(sync_wall),
        pilot_cpu_s: (after_sync.cpu - loaded.cpu).as_secs_f64(),
        pilot_rss_mb: mb(after_sync.rss),
        sent: tally.into_resources(),
    };

    // One VirtualService weight changes: every proxy's RDS.
    let route = change(
        &pilot,
        &mut watcher,
        opts,
        &dir,
        "a route change",
        RDS,
        Variant {
            v1_weight: 80,
            ..Variant::default()
        },
    )
    .await
    .map_err(|e| with_ended(e, &mut tasks))?;
    // One endpoint moves: every proxy's EDS.
    let endpoint = change(
        &pilot,
        &mut watcher,
        opts,
        &dir,
        "an endpoint change",
        EDS,
        Variant {
            v1_weight: 80,
            endpoint_epoch: 1,
        },
    )
    .await
    .map_err(|e| with_ended(e, &mut tasks))?;
    let end = pilot.sample()?;
    tasks.abort_all();
    Ok(Report {
        protocol: if opts.delta { "delta" } else { "sotw" },
        services: opts.services,
        proxies: opts.proxies,
        yaml_bytes,
        debounce_ms: opts.debounce_ms,
        pilot_rss_loaded_mb: mb(loaded.rss),
        pilot_rss_peak_mb: mb(end.rss_peak),
        pilot_cpu_total_s: end.cpu.as_secs_f64(),
        first_push,
        route_change: route,
        endpoint_change: endpoint,
    })
}

/// Rewrite service 0's file as `variant` and wait for every proxy to ACK
/// a new version of `type_url`.
#[allow(clippy::too_many_arguments)]
async fn change(
    pilot: &Pilot,
    watcher: &mut Watcher,
    opts: &Options,
    dir: &Path,
    what: &str,
    type_url: &'static str,
    variant: Variant,
) -> anyhow::Result<Change> {
    let before: Vec<Option<String>> = watcher
        .versions
        .iter()
        .map(|v| v.get(type_url).cloned())
        .collect();
    let cpu = pilot.sample()?.cpu;
    let mut tally = Tally::default();
    let written = Instant::now();
    config::write_atomically(
        &config::service_file(dir, 0),
        &config::service_yaml(0, variant),
    )?;
    let acked = watcher
        .until_all(
            opts.timeout,
            what,
            |e, _| e.type_url == type_url && before[e.proxy].as_deref() != Some(&e.version),
            &mut tally,
        )
        .await?;
    let wall = written.elapsed();
    watcher.settle(Duration::from_millis(500), &mut tally).await;
    let after = pilot.sample()?;
    // From the push's start: only the ACKs of the push /debug/pushz names.
    let (version, started) = pilot.latest_push()?;
    let from_push: Vec<Duration> = acked
        .iter()
        .filter(|(_, _, v)| *v == version)
        .map(|(_, wall, _)| wall.duration_since(started).unwrap_or_default())
        .collect();
    if from_push.len() != acked.len() {
        bail!(
            "{what}: {} of {} proxies ACKed a version other than the latest push {version}",
            acked.len() - from_push.len(),
            acked.len()
        );
    }
    Ok(Change {
        latency: Percentiles::of(acked.iter().map(|(t, _, _)| t.duration_since(written))),
        from_push: Percentiles::of(from_push),
        wall_ms: ms(wall),
        pilot_cpu_s: (after.cpu - cpu).as_secs_f64(),
        sent: tally.into_resources(),
    })
}

/// An error of a phase, with why the first simulated proxies stopped if
/// any did.
fn with_ended(
    e: anyhow::Error,
    tasks: &mut tokio::task::JoinSet<(usize, client::Ended)>,
) -> anyhow::Error {
    let mut ended = Vec::new();
    while let Some(Ok((i, why))) = tasks.try_join_next() {
        if ended.len() < 3 {
            ended.push(format!("proxy {i}: {why:?}"));
        }
    }
    if ended.is_empty() {
        e
    } else {
        e.context(ended.join("; "))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

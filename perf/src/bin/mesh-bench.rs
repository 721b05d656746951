//! `mesh-bench`: the data-plane benchmark (`dataplane`) and the two
//! processes it starts besides the proxies: the upstream (`upstream`) and
//! the TCP echo load generator (`tcp-load`). `perf/run.sh` builds it and
//! runs `mesh-bench dataplane`; docs/performance.md explains the figures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mesh_perf::dataplane::{self, tcp_load, upstream};

/// The mesh's benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "mesh-bench")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Measure direct, mesh-proxy pair and Envoy pair side by side.
    Dataplane(DataplaneArgs),
    /// Serve the benchmark's upstream (started by `dataplane`).
    Upstream {
        /// HTTP/1.1 + h2c listen address (repeatable).
        #[arg(long, required = true)]
        http: Vec<SocketAddr>,
        /// TCP echo listen address (repeatable).
        #[arg(long)]
        tcp: Vec<SocketAddr>,
    },
    /// Load a TCP echo server; prints the result as JSON (started by `dataplane`).
    TcpLoad {
        /// Echo server address.
        #[arg(long)]
        addr: SocketAddr,
        /// Connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Messages per second over all connections; closed loop without it.
        #[arg(long)]
        rate: Option<f64>,
        /// How long, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        duration_ms: u64,
        /// Bytes per message.
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Upper bound on messages.
        #[arg(long, default_value_t = 10_000_000)]
        max_requests: u64,
    },
}

#[derive(Debug, clap::Args)]
struct DataplaneArgs {
    /// One second per measurement, http1-1k and tcp-echo only; fails if a
    /// path does not start or fails most requests.
    #[arg(long)]
    smoke: bool,
    /// Seconds per measurement (default 10, smoke 1).
    #[arg(long)]
    duration: Option<f64>,
    /// Directory of the JSON report (`dataplane-UNIXTIME.json`) and the run's logs.
    #[arg(long, default_value = "perf/out")]
    out: PathBuf,
    /// Envoy binary; the Envoy pair is skipped unless it is 1.40.
    #[arg(long, env = "MESH_BENCH_ENVOY", default_value = "envoy")]
    envoy: PathBuf,
    /// oha binary.
    #[arg(long, env = "MESH_BENCH_OHA", default_value = "oha")]
    oha: PathBuf,
    /// Fixed rate, requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Connections of the load generators, in both modes.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Only these workloads (http1-1k, http1-64k, http2-1k, grpc-unary, tcp-echo).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Cmd::Dataplane(a) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let ok = rt.block_on(dataplane_cmd(a))?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Upstream { http, tcp } => {
            tokio::runtime::Runtime::new()?.block_on(until_signal(upstream::serve(&http, &tcp)))
        }
        Cmd::TcpLoad {
            addr,
            connections,
            rate,
            duration_ms,
            size,
            max_requests,
        } => {
            let load = tcp_load::TcpLoad {
                addr,
                connections,
                rate,
                duration: Duration::from_millis(duration_ms),
                size,
                max_requests,
            };
            let result = tokio::runtime::Runtime::new()?.block_on(tcp_load::run(load));
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
}

async fn dataplane_cmd(a: DataplaneArgs) -> anyhow::Result<bool> {
    let bench = std::env::current_exe().context("own path")?;
    let bin_dir = bench.parent().context("own directory")?.to_path_buf();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = a.duration.unwrap_or(if a.smoke { 1.0 } else { 10.0 });
    anyhow::ensure!(secs > 0.0, "--duration must be positive");
    let opts = dataplane::Options {
        smoke: a.smoke,
        duration: Duration::from_secs_f64(secs),
        out_file: a.out.join(format!("dataplane-{unix}.json")),
        work_dir: a.out.join(format!("dataplane-{unix}")),
        bin_dir,
        bench,
        envoy: a.envoy,
        oha: a.oha,
        rate: a.rate,
        connections: a.connections,
        git_rev: git_rev(),
        only: a.workloads,
    };
    // Returning early drops the run, and with it every process it started.
    until_signal(dataplane::run(&opts)).await
}

/// `f`, or an error as soon as SIGINT or SIGTERM arrives.
async fn until_signal<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        r = f => r,
        _ = term.recv() => anyhow::bail!("stopped by SIGTERM"),
        _ = int.recv() => anyhow::bail!("interrupted"),
    }
}

fn git_rev() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

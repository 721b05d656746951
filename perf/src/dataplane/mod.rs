//! `mesh-bench dataplane`: the data-plane benchmark. Starts the upstream,
//! pilot and both sidecar pairs once, then measures every workload on every
//! path at a fixed rate and in a closed loop, and reports.
//!
//! ```text
//!  setup ─► for workload: for path (direct, mesh-proxy, envoy): check ─► measure ×2 ─► report
//!  topology (addresses, config)   procs (kill-on-drop children)   probe (single requests)
//!  oha / tcp_load (load generators)   stats (figures)   upstream (the server end)
//! ```

pub mod grpc;
pub mod measure;
pub mod oha;
pub mod probe;
pub mod procs;
pub mod report;
pub mod setup;
pub mod stats;
pub mod tcp_load;
pub mod topology;
pub mod upstream;
pub mod workload;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use self::measure::{mode_name, LoadSettings};
use self::report::{IdleRss, Report};
use self::setup::Setup;
use self::workload::{PathKind, Workload};
use crate::procstat;

/// What `mesh-bench dataplane` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Short run of two workloads, for CI.
    pub smoke: bool,
    /// Length of each measurement.
    pub duration: Duration,
    /// The JSON report file.
    pub out_file: PathBuf,
    /// Where config, bootstraps and logs go.
    pub work_dir: PathBuf,
    /// Directory of `mesh-pilot` and `mesh-proxy`.
    pub bin_dir: PathBuf,
    /// `mesh-bench` itself.
    pub bench: PathBuf,
    /// Envoy binary to try.
    pub envoy: PathBuf,
    /// oha binary.
    pub oha: PathBuf,
    /// Fixed rate.
    pub rate: u32,
    /// Connections in both modes.
    pub connections: u32,
    /// `git rev-parse --short HEAD`, for the report.
    pub git_rev: Option<String>,
    /// Only these workloads (by name); all (smoke: the smoke set) if empty.
    pub only: Vec<String>,
}

/// Run the benchmark, print the tables, write the JSON report. `Ok(false)`
/// when some path failed to answer or failed most requests.
pub async fn run(opts: &Options) -> anyhow::Result<bool> {
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut notes = Vec::new();
    let envoy_version = match setup::envoy_version(&opts.envoy) {
        Ok(v) => Some(v),
        Err(why) => {
            let note = format!("Envoy path skipped: {why}");
            eprintln!("{note}");
            notes.push(note);
            None
        }
    };
    std::fs::create_dir_all(&opts.work_dir).context("create work dir")?;
    let setup = Setup {
        bin_dir: opts.bin_dir.clone(),
        bench: opts.bench.clone(),
        envoy: envoy_version.as_ref().map(|_| opts.envoy.clone()),
        work: opts.work_dir.clone(),
    };
    eprintln!(
        "== starting upstream, pilot and sidecars (logs in {})",
        opts.work_dir.display()
    );
    let mut fleet = setup::start(&setup).await?;
    let idle_rss = fleet
        .sidecars
        .iter()
        .map(|s| IdleRss {
            name: s.proc.name().to_string(),
            rss: procstat::sample(s.proc.pid()).map_or(0, |p| p.rss),
        })
        .collect();

    let grpc_body = opts.work_dir.join("grpc-request.bin");
    workload::write_grpc_body(&grpc_body).context("write gRPC body")?;
    let settings = LoadSettings {
        oha: opts.oha.clone(),
        bench: opts.bench.clone(),
        rate: opts.rate,
        connections: opts.connections,
        duration: opts.duration,
        grpc_body,
    };
    let workloads: Vec<Workload> = if !opts.only.is_empty() {
        let picked: Vec<Workload> = workload::ALL
            .into_iter()
            .filter(|w| opts.only.iter().any(|o| o == w.name()))
            .collect();
        anyhow::ensure!(
            picked.len() == opts.only.len(),
            "unknown workload in {:?}; known: {:?}",
            opts.only,
            workload::ALL.map(Workload::name)
        );
        picked
    } else if opts.smoke {
        workload::SMOKE.to_vec()
    } else {
        workload::ALL.to_vec()
    };
    let mut paths = vec![PathKind::Direct, PathKind::MeshProxy];
    if setup.envoy.is_some() {
        paths.push(PathKind::Envoy);
    }
    if workloads.contains(&Workload::TcpEcho) {
        notes.push(
            "tcp-echo: a NONE-mode sidecar gets no outbound TCP listener from pilot, so TCP \
             goes direct to the server sidecar's inbound tcp_proxy; no client sidecar is on \
             that path."
                .into(),
        );
    }
    let mut measurements = Vec::new();
    for &w in &workloads {
        for &p in &paths {
            eprintln!("== {} via {}", w.name(), p.name());
            measurements.extend(measure::path(&mut fleet, &settings, w, p).await);
        }
    }
    fleet.check_running()?;
    drop(fleet);

    let modes = settings.modes();
    let mut report = Report {
        unix_time,
        git_rev: opts.git_rev.clone(),
        duration_secs: opts.duration.as_secs_f64(),
        rate: opts.rate,
        connections: opts.connections,
        smoke: opts.smoke,
        envoy_version,
        notes,
        idle_rss,
        measurements,
        ratios: Vec::new(),
    };
    let names: Vec<&'static str> = workloads.iter().map(|w| w.name()).collect();
    report.compute_ratios(&names, &mode_name(modes[0]), &mode_name(modes[1]));

    for w in &names {
        println!("{}", report::workload_table(&report, w));
    }
    println!("{}", report::ratio_summary(&report));
    for n in &report.notes {
        println!("- {n}");
    }
    if let Some(dir) = opts.out_file.parent() {
        std::fs::create_dir_all(dir).context("create output dir")?;
    }
    std::fs::write(&opts.out_file, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", opts.out_file.display()))?;
    println!("\nJSON: {}", opts.out_file.display());

    let broken: Vec<String> = report
        .measurements
        .iter()
        .filter(|m| m.broken())
        .map(|m| format!("{} via {} ({})", m.workload, m.path, m.mode))
        .collect();
    if !broken.is_empty() {
        eprintln!("FAILED (no answer or mostly errors): {}", broken.join(", "));
    }
    Ok(broken.is_empty())
}

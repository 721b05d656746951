//! `pilot-scale`: the pilot scale harness (see `mesh_perf::pilot`).
//!
//! ```text
//! pilot-scale --services 1000 --proxies 2000 [--pilot target/release/mesh-pilot] [--json out.json]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mesh_perf::pilot::{run, Options};

#[derive(Parser, Debug)]
#[command(about = "Measure mesh-pilot with N services and M simulated sidecars")]
struct Args {
    /// Services in the generated mesh.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Simulated sidecars, each on its own ADS stream.
    #[arg(long, default_value_t = 2000)]
    proxies: usize,
    /// The mesh-pilot binary; by default the one beside this binary.
    #[arg(long)]
    pilot: Option<PathBuf>,
    /// Pilot's debounce (part of every change's latency).
    #[arg(long, default_value_t = 10)]
    debounce_ms: u64,
    /// Longest any phase may take, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Simulated proxies use incremental (delta) xDS.
    #[arg(long)]
    delta: bool,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pilot = match args.pilot {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("mesh-pilot"),
    };
    let opts = Options {
        services: args.services,
        proxies: args.proxies,
        pilot,
        debounce_ms: args.debounce_ms,
        timeout: Duration::from_secs(args.timeout_secs),
        delta: args.delta,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&opts))?;
    print!("{}", report.table());
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

//! `ratings`: serves stars per reviewer. See the crate docs.

use std::net::SocketAddr;

use bookinfo::ratings::RatingsService;
use bookinfo::server::{self, DEFAULT_LISTEN};
use clap::Parser;

/// The bookinfo ratings service.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_tracing();
    let args = Args::parse();
    tracing::info!("ratings starting");
    server::serve(
        args.listen,
        RatingsService::default(),
        server::shutdown_signal(),
    )
    .await?;
    Ok(())
}

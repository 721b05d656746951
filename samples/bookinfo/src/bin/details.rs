//! `details`: serves the book record. See the crate docs.

use std::net::SocketAddr;

use bookinfo::details::Details;
use bookinfo::server::{self, DEFAULT_LISTEN};
use clap::Parser;

/// The bookinfo details service.
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
    tracing::info!("details starting");
    server::serve(args.listen, Details, server::shutdown_signal()).await?;
    Ok(())
}

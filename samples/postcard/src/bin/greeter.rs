//! `greeter`: serves the postcard page. See the crate docs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use postcard::greeter::{Greeter, DEFAULT_MESSENGER_URL};
use postcard::server;

/// The postcard sample's greeter web page.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:9080")]
    listen: SocketAddr,
    /// Where to fetch the message from.
    #[arg(long, env = "MESSENGER_URL", default_value = DEFAULT_MESSENGER_URL)]
    messenger_url: String,
    /// HTTP proxy for the call to messenger (the sidecar in loopback mode).
    #[arg(long, env = "HTTP_PROXY")]
    http_proxy: Option<String>,
    /// How long to wait for messenger, in milliseconds.
    #[arg(long, env = "MESSENGER_TIMEOUT_MS", default_value_t = 2000)]
    timeout_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_tracing();
    let args = Args::parse();
    let proxy = args.http_proxy.as_deref().filter(|p| !p.is_empty());
    let greeter = Greeter::new(
        &args.messenger_url,
        proxy,
        Duration::from_millis(args.timeout_ms),
    )?;
    tracing::info!(messenger = %args.messenger_url, proxy = ?proxy, "greeter starting");
    server::serve(args.listen, greeter, server::shutdown_signal()).await
}

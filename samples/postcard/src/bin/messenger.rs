//! `messenger`: answers with `MESSAGE_TEXT`. See the crate docs.

use std::net::SocketAddr;

use clap::Parser;
use postcard::messenger::Messenger;
use postcard::server;

/// The postcard sample's messenger service.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:9080")]
    listen: SocketAddr,
    /// The text every message request is answered with.
    #[arg(long, env = "MESSAGE_TEXT", default_value = "Hello from messenger")]
    message_text: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_tracing();
    let args = Args::parse();
    server::serve(
        args.listen,
        Messenger::new(args.message_text),
        server::shutdown_signal(),
    )
    .await
}

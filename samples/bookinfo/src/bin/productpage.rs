//! `productpage`: serves the book page and its API. See the crate docs.

use std::net::SocketAddr;

use bookinfo::client::{http_client, Upstream};
use bookinfo::productpage::{
    ProductPage, DEFAULT_DETAILS_URL, DEFAULT_REVIEWS_URL, UPSTREAM_TIMEOUT,
};
use bookinfo::reviews::DEFAULT_RATINGS_URL;
use bookinfo::server::{self, DEFAULT_LISTEN};
use clap::Parser;

/// The bookinfo product page.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Root URL of the details service.
    #[arg(long, env = "DETAILS_URL", default_value = DEFAULT_DETAILS_URL)]
    details_url: String,
    /// Root URL of the reviews service.
    #[arg(long, env = "REVIEWS_URL", default_value = DEFAULT_REVIEWS_URL)]
    reviews_url: String,
    /// Root URL of the ratings service (for `/api/v1/products/{id}/ratings`).
    #[arg(long, env = "RATINGS_URL", default_value = DEFAULT_RATINGS_URL)]
    ratings_url: String,
    /// HTTP proxy for outgoing calls (the sidecar in loopback mode).
    #[arg(long, env = "HTTP_PROXY")]
    http_proxy: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_tracing();
    let args = Args::parse();
    let client = http_client(args.http_proxy.as_deref())?;
    let upstream = |url: &str| Upstream::new(client.clone(), url, UPSTREAM_TIMEOUT);
    let page = ProductPage::new(
        upstream(&args.details_url),
        upstream(&args.reviews_url),
        upstream(&args.ratings_url),
    );
    tracing::info!(
        details = %args.details_url,
        reviews = %args.reviews_url,
        ratings = %args.ratings_url,
        proxy = ?args.http_proxy,
        "productpage starting"
    );
    server::serve(args.listen, page, server::shutdown_signal()).await?;
    Ok(())
}

//! `reviews`: serves two reviews, as version v1, v2 or v3. See the crate
//! docs.

use std::net::SocketAddr;
use std::time::Duration;

use bookinfo::client::{http_client, Upstream};
use bookinfo::reviews::{
    default_ratings_timeout, parse_star_color, Reviews, Version, DEFAULT_RATINGS_URL,
};
use bookinfo::server::{self, DEFAULT_LISTEN};
use clap::Parser;

/// The bookinfo reviews service (one binary for v1, v2 and v3).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Which version to be: v1 (no stars), v2 (black stars), v3 (red stars).
    #[arg(long, env = "SERVICE_VERSION", default_value = "v1")]
    service_version: Version,
    /// Star colour; default black for v2, red for v3.
    #[arg(long, env = "STAR_COLOR", value_parser = parse_star_color)]
    star_color: Option<String>,
    /// Root URL of the ratings service (v2 and v3).
    #[arg(long, env = "RATINGS_URL", default_value = DEFAULT_RATINGS_URL)]
    ratings_url: String,
    /// How long to wait for ratings; default 10000 with black stars, 2500 otherwise.
    #[arg(long, env = "RATINGS_TIMEOUT_MS")]
    ratings_timeout_ms: Option<u64>,
    /// HTTP proxy for the call to ratings (the sidecar in loopback mode).
    #[arg(long, env = "HTTP_PROXY")]
    http_proxy: Option<String>,
    /// Pod name reported in responses; default `reviews-VERSION`.
    #[arg(long, env = "HOSTNAME")]
    pod_name: Option<String>,
    /// Cluster name reported in responses.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_tracing();
    let args = Args::parse();
    let version = args.service_version;
    let color = args
        .star_color
        .clone()
        .unwrap_or_else(|| version.default_star_color().to_string());
    let timeout = args
        .ratings_timeout_ms
        .map(Duration::from_millis)
        .unwrap_or_else(|| default_ratings_timeout(&color));
    let client = http_client(args.http_proxy.as_deref())?;
    let ratings = Upstream::new(client, &args.ratings_url, timeout);
    tracing::info!(
        %version,
        ratings = version.has_ratings().then_some(args.ratings_url.as_str()),
        star_color = version.has_ratings().then_some(color.as_str()),
        proxy = ?args.http_proxy,
        "reviews starting"
    );
    let reviews = Reviews::new(
        version,
        Some(color),
        ratings,
        args.pod_name,
        args.cluster_name,
    );
    server::serve(args.listen, reviews, server::shutdown_signal()).await?;
    Ok(())
}

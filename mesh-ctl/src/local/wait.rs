//! Waiting for a starting mesh: every proxy's admin `/ready`, then the
//! sample's front page through the ingress gateway. Both bounded by a
//! deadline and cut short when a process dies (its log tail is the error).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::process::{log_tail, Supervisor};

/// An HTTP client for local checks: short timeouts and never a proxy from
/// the environment.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()?)
}

/// Fails if a supervised process has exited, naming it with its log tail.
pub fn check_processes(sup: &mut Supervisor) -> anyhow::Result<()> {
    if let Some(exited) = sup.newly_exited().into_iter().next() {
        bail!(
            "{} exited ({}) while the mesh was starting; last lines of {}:\n{}",
            exited.name,
            exited.status,
            exited.log.display(),
            log_tail(&exited.log, 15)
        );
    }
    Ok(())
}

/// Waits until `GET url` answers 200.
async fn until_ok(
    client: &reqwest::Client,
    sup: &mut Supervisor,
    what: &str,
    url: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        check_processes(sup)?;
        let last = match client.get(url).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => format!("HTTP {}", resp.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            bail!("{what} not ready at {url} in time (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for every proxy's `/ready`, then for the front page through the
/// ingress.
pub async fn until_ready(
    sup: &mut Supervisor,
    proxy_admins: &[(String, SocketAddr)],
    ingress_url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = client()?;
    let deadline = Instant::now() + timeout;
    for (name, admin) in proxy_admins {
        let url = format!("http://{admin}/ready");
        until_ok(&client, sup, name, &url, deadline).await?;
        tracing::info!(%name, "proxy ready");
    }
    until_ok(
        &client,
        sup,
        "the ingress gateway route",
        ingress_url,
        deadline,
    )
    .await
}

//! Waiting for a starting mesh: pilot's xDS port, every proxy's admin
//! `/ready`, then the sample's front page through the ingress gateway. All
//! bounded by a deadline and cut short when a process dies (its log tail is
//! the error).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use mesh_local::process::{tail, Exited};

/// Processes that stopped since the last call (the supervisor's
/// `newly_exited`, however the caller reaches it).
pub type ExitedFn<'a> = dyn FnMut() -> Vec<Exited> + Send + 'a;

/// An HTTP client for local checks: short timeouts and never a proxy from
/// the environment.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()?)
}

/// Fails if a supervised process has exited, naming it with its log tail.
pub fn check_processes(exited: &mut ExitedFn<'_>) -> anyhow::Result<()> {
    if let Some(exited) = exited().into_iter().next() {
        bail!(
            "{} exited ({}) while the mesh was starting; last lines of {}:\n{}",
            exited.name,
            exited.status,
            exited.log.display(),
            tail(&exited.log, 15)
        );
    }
    Ok(())
}

/// Waits until a TCP connection to `addr` succeeds (pilot's xDS port, so
/// proxies do not start by failing to dial it).
pub async fn until_listening(
    exited: &mut ExitedFn<'_>,
    what: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        check_processes(exited)?;
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what} not listening on {addr} in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `GET url` answers 200.
async fn until_ok(
    client: &reqwest::Client,
    exited: &mut ExitedFn<'_>,
    what: &str,
    url: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        check_processes(exited)?;
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
    exited: &mut ExitedFn<'_>,
    proxy_admins: &[(String, SocketAddr)],
    ingress_url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = client()?;
    let deadline = Instant::now() + timeout;
    for (name, admin) in proxy_admins {
        let url = format!("http://{admin}/ready");
        until_ok(&client, exited, name, &url, deadline).await?;
        tracing::info!(%name, "proxy ready");
    }
    until_ok(
        &client,
        exited,
        "the ingress gateway route",
        ingress_url,
        deadline,
    )
    .await
}

//! What the `meshctl local up` tests share: where the binaries are, building
//! them, and reading the postcard through the ingress.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The postcard sample's messenger v1 text (samples/postcard/local.yaml).
pub const V1: &str = "Hello from messenger v1";
/// The postcard sample's messenger v2 text.
pub const V2: &str = "Greetings from messenger v2";

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The meshctl binary under test.
pub fn meshctl_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_meshctl"))
}

/// Where meshctl and the binaries it starts live (target/debug).
pub fn bin_dir() -> PathBuf {
    meshctl_path()
        .parent()
        .expect("meshctl has a directory")
        .to_path_buf()
}

/// The other binaries the mesh needs sit beside meshctl only if something
/// built them: build them (a quick no-op when they are fresh), with
/// `extra_packages`, and check that they and `extra_bins` exist.
pub fn build_binaries(extra_packages: &[&str], extra_bins: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--bins"]);
    for package in ["mesh-pilot", "mesh-proxy", "postcard", "mesh-ctl"]
        .iter()
        .chain(extra_packages)
    {
        cmd.args(["-p", package]);
    }
    let status = cmd.current_dir(workspace_root()).status();
    let missing: Vec<_> = ["mesh-pilot", "mesh-proxy", "greeter", "messenger"]
        .iter()
        .chain(extra_bins)
        .filter(|b| !bin_dir().join(b).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "binaries {missing:?} missing from {} (cargo build: {status:?})",
        bin_dir().display()
    );
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// The postcard at `url`: its body on success, else `HTTP STATUS` or the error.
pub async fn card(client: &reqwest::Client, url: &str) -> String {
    match client.get(url).send().await {
        Ok(resp) if resp.status().is_success() => resp.text().await.unwrap_or_default(),
        Ok(resp) => format!("HTTP {}", resp.status()),
        Err(e) => format!("error: {e}"),
    }
}

/// Polls the postcard at `url` until it shows `text`; returns that card.
pub async fn until_card_shows(
    client: &reqwest::Client,
    url: &str,
    text: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let body = card(client, url).await;
        if body.contains(text) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "card never showed {text:?}; last:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! What the `meshctl local up` tests share: where the binaries are, building
//! them, and reading the postcard through the ingress.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The postcard sample's messenger v1 text (samples/postcard/local.yaml).
pub const V1: &str = "Hello from messenger v1";
/// The postcard sample's messenger v2 text.
pub const V2: &str = "Greetings from messenger v2";

pub use mesh_test_support::bins::workspace_root;

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
    let packages: Vec<&str> = ["mesh-pilot", "mesh-proxy", "postcard", "mesh-ctl"]
        .into_iter()
        .chain(extra_packages.iter().copied())
        .collect();
    let status = mesh_test_support::bins::build(&bin_dir(), &packages);
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

/// The product binaries `local up -f samples/postcard` runs, and nothing
/// else: no test tool may be needed at run time.
pub const PRODUCT_BINS: [&str; 4] = ["mesh-pilot", "mesh-proxy", "greeter", "messenger"];

/// `PARENT/bin` holding links to the product binaries only, to pass as
/// `--bin-dir`. Both are made mode 755, so the proxy's UID 1337 can reach
/// its binary.
pub fn product_bin_dir(parent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent.join("bin");
    std::fs::create_dir_all(&dir).expect("bin dir");
    for d in [parent, dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for name in PRODUCT_BINS {
        std::os::unix::fs::symlink(bin_dir().join(name), dir.join(name)).expect("link binary");
    }
    dir
}

/// `n` distinct TCP ports free on 127.0.0.1 right now (bound together,
/// then released), so a test's mesh can run beside other services and
/// beside another test's mesh.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

/// A PATH with the system's directories only (no cargo target dir).
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

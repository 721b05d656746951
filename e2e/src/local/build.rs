//! Makes sure the binaries the pods run are built and current before a
//! local run starts: `cargo test -p mesh-e2e` alone builds only this crate,
//! and a stale `mesh-proxy` beside the tests would test old code. Cargo does
//! nothing when they are fresh (a second or so), so every test process asks
//! once.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cmd::{self, Cmd};
use crate::E2eError;

/// The workspace packages whose binaries pods run.
const PACKAGES: [&str; 5] = [
    "mesh-pilot",
    "mesh-proxy",
    "postcard",
    "bookinfo",
    "mesh-e2e",
];

/// A cold debug build of those on two cores takes a few minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Runs `cargo build --bins` for [`PACKAGES`] into the target directory that
/// holds `bin_dir`, once per process. Skipped when `MESH_E2E_BIN_DIR` names
/// the binaries or `MESH_E2E_NO_BUILD` is set (then missing binaries are
/// reported when a pod needs them).
pub fn ensure_binaries(bin_dir: &Path) -> Result<(), E2eError> {
    if std::env::var_os("MESH_E2E_BIN_DIR").is_some()
        || std::env::var_os("MESH_E2E_NO_BUILD").is_some()
    {
        return Ok(());
    }
    BUILT
        .get_or_init(|| build(bin_dir).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| E2eError::Missing(format!("the pods' binaries: {e}")))
}

fn build(bin_dir: &Path) -> Result<(), E2eError> {
    // Cargo sets CARGO for the processes it runs; else the one on PATH.
    let cargo = match std::env::var("CARGO") {
        Ok(c) => c,
        Err(_) => match cmd::which("cargo") {
            Some(c) => c.to_string_lossy().into_owned(),
            None => return Ok(()),
        },
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let (Some(target_dir), Some(profile)) = (bin_dir.parent(), bin_dir.file_name()) else {
        return Ok(());
    };
    let mut build = Cmd::new(cargo)
        .args(["build", "--bins", "--manifest-path"])
        .arg(manifest.to_string_lossy())
        .arg("--target-dir")
        .arg(target_dir.to_string_lossy())
        .timeout(BUILD_TIMEOUT);
    if profile != "debug" {
        build = build.arg("--profile").arg(profile.to_string_lossy());
    }
    for p in PACKAGES {
        build = build.args(["-p", p]);
    }
    let out = build.output()?;
    if out.success() {
        return Ok(());
    }
    // Compiler output can be long: the end says what broke.
    let lines: Vec<&str> = out.stderr.lines().collect();
    Err(E2eError::Command {
        command: build.display(),
        status: format!("{:?}", out.code),
        stderr: lines[lines.len().saturating_sub(40)..].join("\n"),
    })
}

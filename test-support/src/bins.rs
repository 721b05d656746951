//! Binary lookup for tests that run the workspace's programs: where they
//! are (beside the running test binary, or `MESH_E2E_BIN_DIR`), and a build
//! of them before use: `cargo test -p mesh-e2e` alone builds only that
//! crate, and a stale `mesh-proxy` beside the tests would test old code.
//! Cargo does nothing when they are fresh (a second or so), so every test
//! process asks once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use mesh_local::cmd::{self, Cmd};
use mesh_local::LocalError;

/// The workspace packages whose binaries the e2e pods run.
pub const PACKAGES: [&str; 5] = [
    "mesh-pilot",
    "mesh-proxy",
    "postcard",
    "bookinfo",
    "mesh-e2e",
];

/// A cold debug build of those on two cores takes a few minutes.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// `MESH_E2E_BIN_DIR`, else the directory holding the running test binary
/// (with cargo's `deps/` stripped): where cargo puts the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESH_E2E_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Runs `cargo build --bins` for [`PACKAGES`] into the target directory that
/// holds `bin_dir`, once per process. Skipped when `MESH_E2E_BIN_DIR` names
/// the binaries or `MESH_E2E_NO_BUILD` is set (then missing binaries are
/// reported when they are needed).
pub fn ensure_binaries(bin_dir: &Path) -> Result<(), LocalError> {
    if std::env::var_os("MESH_E2E_BIN_DIR").is_some()
        || std::env::var_os("MESH_E2E_NO_BUILD").is_some()
    {
        return Ok(());
    }
    BUILT
        .get_or_init(|| build(bin_dir, &PACKAGES).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| LocalError::Missing(format!("the pods' binaries: {e}")))
}

/// Runs `cargo build --bins -p PACKAGE...` into the target directory that
/// holds `bin_dir` (cargo's own, or the one on PATH); the end of cargo's
/// output is the error when it fails.
pub fn build(bin_dir: &Path, packages: &[&str]) -> Result<(), LocalError> {
    // Cargo sets CARGO for the processes it runs; else the one on PATH.
    let cargo = match std::env::var("CARGO") {
        Ok(c) => c,
        Err(_) => match cmd::which("cargo") {
            Some(c) => c.to_string_lossy().into_owned(),
            None => return Ok(()),
        },
    };
    let manifest = workspace_root().join("Cargo.toml");
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
    for p in packages {
        build = build.args(["-p", p]);
    }
    let out = build.output()?;
    if out.success() {
        return Ok(());
    }
    // Compiler output can be long: the end says what broke.
    let lines: Vec<&str> = out.stderr.lines().collect();
    Err(LocalError::Command {
        command: build.display(),
        status: format!("{:?}", out.code),
        stderr: lines[lines.len().saturating_sub(40)..].join("\n"),
    })
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

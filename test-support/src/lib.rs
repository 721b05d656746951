//! What the workspace's tests share, so that each rule is written once:
//!
//! - the skip policy: a test that cannot run here (no root, no iptables,
//!   no Envoy) says why and passes, unless `MESH_TESTS_REQUIRE_ROOT=1`
//!   (set by `.ci/run`), where it fails naming what is missing;
//! - [`modgraph`]: the module graph of a crate, for the one-way-modules check.
//!
//! A test crate only: no product crate depends on it.

pub mod modgraph;

/// The environment variable that turns skips into failures.
pub const REQUIRE_ENV: &str = "MESH_TESTS_REQUIRE_ROOT";

/// True when skips must fail (`MESH_TESTS_REQUIRE_ROOT` set to anything but
/// `0` or empty).
pub fn skips_fail() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The test `suite` cannot run here because of `why`: prints the skip line
/// (straight to stderr, which libtest does not capture) and returns, or,
/// under `MESH_TESTS_REQUIRE_ROOT=1`, panics with the same words.
pub fn skip(suite: &str, why: &str) {
    if skips_fail() {
        panic!("{suite} cannot run: {why} ({REQUIRE_ENV}=1 forbids skipping)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping {suite}: {why}");
}

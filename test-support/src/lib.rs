//! What the workspace's tests share, so that each rule is written once:
//!
//! - the skip policy ([`skip`], [`require`]): a test that cannot run here
//!   (no root, no iptables, no Envoy) says why and passes, unless
//!   `MESH_TESTS_REQUIRE_ROOT=1` (set by `.ci/run`), where it fails naming
//!   what is missing;
//! - [`netns`]: a throwaway network namespace guard for root-only tests;
//! - [`fake_pilot`]: an ADS server a test drives by hand;
//! - [`bins`]: where the workspace's binaries are, and building them;
//! - [`modgraph`]: the module graph of a crate, for the one-way-modules check.
//!
//! A test crate only: no product crate depends on it.

pub mod bins;
pub mod fake_pilot;
pub mod modgraph;
pub mod netns;

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

/// For suites that need what no CI machine of ours has (docker and kind):
/// prints the skip line and returns, whatever `MESH_TESTS_REQUIRE_ROOT` says.
pub fn skip_optional(suite: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipping {suite}: {why}");
}

/// True when `suite` can run: `missing` (what this machine lacks, if
/// anything) is `None`. Otherwise [`skip`]s, and so fails under
/// `MESH_TESTS_REQUIRE_ROOT=1`.
pub fn require(suite: &str, missing: Option<String>) -> bool {
    match missing {
        None => true,
        Some(why) => {
            skip(suite, &why);
            false
        }
    }
}

/// What a test of network namespaces and iptables lacks here, if anything:
/// root, `ip`, `iptables`, `setpriv` (the local runtime's own check).
pub fn netns_missing() -> Option<String> {
    mesh_local::LocalMesh::unavailable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_passes_through_what_is_present() {
        assert!(require("nothing missing", None));
    }
}

//! The skip policy end to end, in a child process (the policy reads the
//! environment, which a test must not change under its parallel siblings):
//! without `MESH_TESTS_REQUIRE_ROOT` a test that cannot run prints why and
//! passes; with it, the same test fails naming what is missing.

use std::process::Command;

use mesh_test_support::{require, REQUIRE_ENV};

/// What the child runs: a suite that lacks root.
#[test]
#[ignore = "helper: run by the policy test in a child process"]
fn suite_that_lacks_root() {
    if !require(
        "demo suite",
        Some("needs root for network namespaces".into()),
    ) {
        return;
    }
    panic!("require said yes although something was missing");
}

fn run_child(require_root: Option<&str>) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--ignored",
        "--exact",
        "suite_that_lacks_root",
        "--nocapture",
    ]);
    cmd.env_remove(REQUIRE_ENV);
    if let Some(value) = require_root {
        cmd.env(REQUIRE_ENV, value);
    }
    let out = cmd.output().expect("run the helper");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_skip_passes_with_its_reason_unless_root_is_required() {
    let (passed, text) = run_child(None);
    assert!(passed, "{text}");
    assert!(
        text.contains("skipping demo suite: needs root for network namespaces"),
        "{text}"
    );
    let (passed, text) = run_child(Some("0"));
    assert!(passed, "MESH_TESTS_REQUIRE_ROOT=0 is off: {text}");

    let (passed, text) = run_child(Some("1"));
    assert!(!passed, "a required suite skipped: {text}");
    assert!(
        text.contains("demo suite cannot run: needs root for network namespaces"),
        "{text}"
    );
}

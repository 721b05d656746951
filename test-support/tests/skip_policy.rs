//! The skip policy end to end, in a child process (`skip-demo`, a suite
//! that lacks root): without `MESH_TESTS_REQUIRE_ROOT` it prints why and
//! passes; with it, it fails naming what is missing.

use std::process::Command;

use mesh_test_support::REQUIRE_ENV;

fn run_child(require_root: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skip-demo"));
    cmd.env_remove(REQUIRE_ENV);
    if let Some(value) = require_root {
        cmd.env(REQUIRE_ENV, value);
    }
    let out = cmd.output().expect("run skip-demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_skip_passes_with_its_reason_unless_root_is_required() {
    let (code, text) = run_child(None);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("skipping demo suite: needs root for network namespaces"),
        "{text}"
    );
    let (code, text) = run_child(Some("0"));
    assert_eq!(code, Some(0), "MESH_TESTS_REQUIRE_ROOT=0 is off: {text}");

    let (code, text) = run_child(Some("1"));
    assert_eq!(code, Some(101), "a required suite skipped: {text}");
    assert!(
        text.contains("demo suite cannot run: needs root for network namespaces"),
        "{text}"
    );
}

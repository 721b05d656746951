//! `skip-demo`: a suite that lacks root, for `tests/skip_policy.rs` to run
//! as a child process (the policy reads the environment, which a test must
//! not change under its parallel siblings). Exits 0 after a skip, 1 if the
//! policy let it run, and panics (exit 101) when the policy forbids skipping.

use std::process::ExitCode;

fn main() -> ExitCode {
    let missing = Some("needs root for network namespaces".to_string());
    if mesh_test_support::require("demo suite", missing) {
        eprintln!("require said yes although something was missing");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

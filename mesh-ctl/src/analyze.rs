//! `meshctl analyze`: mesh-api's loading and validation, offline, over a
//! set of files checked together (so references between them resolve).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::config;

/// Checks `paths` (files, or directories of YAML files) and prints every
/// problem as `FILE:LINE: Kind/ns/name: path: message`. Exit code 1 when
/// there is any.
pub fn run(paths: &[PathBuf], recursive: bool) -> anyhow::Result<ExitCode> {
    let files = config::yaml_files(paths, recursive)?;
    if files.is_empty() {
        bail!("no YAML files found in the given paths");
    }
    let result = config::load_and_validate(&files);
    if result.errors.is_empty() {
        println!(
            "no issues found ({} object(s) in {} file(s))",
            result.objects.len(),
            files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for err in &result.errors {
        println!("{err}");
    }
    eprintln!(
        "{} issue(s) found in {} file(s)",
        result.errors.len(),
        files.len()
    );
    Ok(ExitCode::FAILURE)
}

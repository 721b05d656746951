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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sample(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/postcard")
            .join(rel)
    }

    #[test]
    fn the_postcard_config_is_valid() {
        assert_eq!(run(&[sample("mesh")], false).unwrap(), ExitCode::SUCCESS);
        // Each route file on its own, with the rest of the config.
        for route in ["all-v2.yaml", "canary-80-20.yaml", "header-tester-v2.yaml"] {
            let files = config::yaml_files(&[sample("mesh")], false).unwrap();
            let files: Vec<_> = files
                .into_iter()
                .filter(|f| !f.ends_with("messenger-route.yaml"))
                .chain([sample("mesh/routes").join(route)])
                .collect();
            let result = config::load_and_validate(&files);
            assert!(result.errors.is_empty(), "{route}: {:?}", result.errors);
        }
    }

    #[test]
    fn errors_carry_file_object_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(
            &file,
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selectr: {istio: ingressgateway}\n",
        )
        .unwrap();
        assert_eq!(
            run(std::slice::from_ref(&file), false).unwrap(),
            ExitCode::FAILURE
        );
        let result = config::load_and_validate(std::slice::from_ref(&file));
        let line = result.errors[0].to_string();
        assert!(line.starts_with(&file.display().to_string()), "{line}");
        assert!(line.contains("Gateway/default/gw"), "{line}");
        assert!(line.contains("selectr"), "{line}");
    }

    #[test]
    fn directories_are_not_read_recursively_unless_asked() {
        let flat = config::yaml_files(&[sample("mesh")], false).unwrap();
        let deep = config::yaml_files(&[sample("mesh")], true).unwrap();
        assert!(flat.iter().all(|f| !f.to_string_lossy().contains("routes")));
        assert!(deep.len() > flat.len());
        assert!(run(&[sample("nope")], false).is_err());
    }
}

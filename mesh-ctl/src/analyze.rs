//! `meshctl analyze`: mesh-api's loading and validation, offline, over a
//! set of files checked together (so references between them resolve),
//! with the warnings Istio users know from `istioctl analyze`: deprecated
//! fields (and what replaces them), VirtualServices shadowed by an older
//! one for the same host (IST0109), ...

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use mesh_api::ConfigError;

use crate::config;

/// Checks `paths` (files, or directories of YAML files) and prints every
/// error and warning as `FILE:LINE: Kind/ns/name: path: message`, sorted by
/// file and line, then a summary on stderr. Exit code 1 when there is any
/// error; warnings alone leave it 0.
pub fn run(paths: &[PathBuf], recursive: bool) -> anyhow::Result<ExitCode> {
    let files = config::yaml_files(paths, recursive)?;
    if files.is_empty() {
        bail!("no YAML files found in the given paths");
    }
    let result = config::load_and_validate(&files);
    let warnings = mesh_api::warnings(&result.objects);
    let mut findings: Vec<&ConfigError> = result.errors.iter().chain(&warnings).collect();
    findings.sort();
    for finding in &findings {
        println!("{finding}");
    }
    let (errors, warned) = (result.errors.len(), warnings.len());
    let files = files.len();
    match (errors, warned) {
        (0, 0) => println!(
            "no issues found ({} object(s) in {files} file(s))",
            result.objects.len()
        ),
        (0, _) => eprintln!("no errors, {warned} warning(s) in {files} file(s)"),
        _ => eprintln!("{errors} error(s) and {warned} warning(s) in {files} file(s)"),
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    fn warnings_alone_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.yaml");
        std::fs::write(
            &file,
            "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}\n",
        )
        .unwrap();
        assert_eq!(
            run(std::slice::from_ref(&file), false).unwrap(),
            ExitCode::SUCCESS
        );
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

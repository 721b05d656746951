//! Every example of Istio's reference docs loads and validates: the YAML in
//! the comments of istio/api's `networking/v1alpha3/*.proto`, from each
//! release branch 1.0 to 1.31 and master (`tests/fixtures/istio-docs/`,
//! one file per example, named `RELEASE-PROTO-N.yaml` after the first
//! release that has it). No unknown field, no wrong type, no error except
//! the fields this mesh rejects as unsupported, and the few examples that
//! Istio's own validation rejects as well (typos in the docs), each of
//! which must fail here on the same field.

use std::path::{Path, PathBuf};

use mesh_api::{load_file, validate_object, warnings, ConfigError, ErrorKind};

/// Examples Istio rejects too: the file, the path of the error expected
/// here, and what is wrong with it.
const DOCS_ERRATA: [(&str, &str, &str); 20] = [
    (
        "release-1.0-gateway-02.yaml",
        "spec.http[0].match[0].headers.cookie.user",
        "a header value without exact, prefix or regex",
    ),
    (
        "release-1.0-gateway-03.yaml",
        "metadata.name",
        "upper case in a Kubernetes name",
    ),
    (
        "release-1.0-service_entry-07.yaml",
        "spec.http[1].match[0].gateway",
        "`gateway` for `gateways`",
    ),
    (
        "release-1.0-virtual_service-06.yaml",
        "",
        "two documents without the `---` between them",
    ),
    (
        "release-1.0-virtual_service-08.yaml",
        "metadata.name",
        "upper case in a Kubernetes name",
    ),
    (
        "release-1.0-virtual_service-14.yaml",
        "spec.http[0].corsPolicy.maxAge",
        "`1d`: Go durations have no days unit",
    ),
    (
        "release-1.1-service_entry-06.yaml",
        "spec.http[1].match[0].gateway",
        "`gateway` for `gateways`",
    ),
    (
        "release-1.1-service_entry-07.yaml",
        "spec.endpoints[0].ports.https",
        "endpoint ports naming no port of the entry",
    ),
    (
        "release-1.1-sidecar-02.yaml",
        "spec.egress[0]",
        "the catch-all egress listener is not the last one",
    ),
    (
        "release-1.14-destination_rule-07.yaml",
        "spec.host",
        "no host",
    ),
    (
        "release-1.14-destination_rule-08.yaml",
        "spec.host",
        "no host",
    ),
    (
        "release-1.22-virtual_service-08.yaml",
        "metadata.namespace",
        "upper case in a namespace",
    ),
    (
        "release-1.22-virtual_service-09.yaml",
        "metadata.namespace",
        "upper case in a namespace",
    ),
    (
        "release-1.5-service_entry-11.yaml",
        "spec.endpoints[0].ports.https",
        "endpoint ports naming no port of the entry",
    ),
    (
        "release-1.5-virtual_service-06.yaml",
        "",
        "two documents without the `---` between them",
    ),
    (
        "release-1.5-virtual_service-09.yaml",
        "metadata.name",
        "upper case in a Kubernetes name",
    ),
    (
        "release-1.6-sidecar-03.yaml",
        "spec.egress[0].hosts[0]",
        "`./` names no host",
    ),
    (
        "release-1.6-sidecar-04.yaml",
        "spec.egress[0].hosts[0]",
        "`./` names no host",
    ),
    (
        "release-1.6-virtual_service-02.yaml",
        "metadata.namespace",
        "upper case in a namespace",
    ),
    (
        "release-1.6-virtual_service-03.yaml",
        "metadata.namespace",
        "upper case in a namespace",
    ),
];

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio-docs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

/// Load and per-object validation errors of one file (each example stands
/// alone: the DestinationRules its routes name are not all in it).
fn errors(path: &Path) -> Vec<ConfigError> {
    let file = load_file(path);
    let mut errors = file.errors.clone();
    errors.extend(file.objects.iter().flat_map(validate_object));
    errors
}

#[test]
fn every_istio_docs_example_loads_and_validates() {
    let paths = corpus();
    assert!(paths.len() >= 250, "corpus missing: {} files", paths.len());
    let mut problems = Vec::new();
    for path in &paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let errors = errors(path);
        match DOCS_ERRATA.iter().find(|(file, ..)| *file == name) {
            Some((_, field, why)) => {
                if !errors.iter().any(|e| e.path == *field) {
                    problems.push(format!(
                        "{name}: expected an error at {field:?} ({why}), got {errors:?}"
                    ));
                }
            }
            None => problems.extend(
                errors
                    .iter()
                    .filter(|e| e.kind != ErrorKind::Unsupported)
                    .map(ConfigError::to_string),
            ),
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn old_examples_load_with_deprecation_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio-docs");
    let mut deprecated = Vec::new();
    for path in corpus() {
        let file = load_file(&path);
        deprecated.extend(
            warnings(&file.objects)
                .into_iter()
                .filter(|w| w.kind == ErrorKind::Deprecated)
                .map(|w| {
                    (
                        w.file
                            .strip_prefix(&dir)
                            .map(Path::to_path_buf)
                            .unwrap_or_default(),
                        w.path,
                        w.message,
                    )
                }),
        );
    }
    let has = |file: &str, field: &str| {
        deprecated
            .iter()
            .any(|(f, p, _)| f == Path::new(file) && p.ends_with(field))
    };
    // Istio 1.0's fault examples use the integer percent; 1.31's redirect
    // example writes the protobuf name prefix_rewrite.
    assert!(
        has("release-1.0-virtual_service-15.yaml", "fault.delay.percent"),
        "{deprecated:#?}"
    );
    assert!(
        has(
            "release-1.31-virtual_service-01.yaml",
            "redirect.prefix_rewrite"
        ),
        "{deprecated:#?}"
    );
}

//! Fixture tests: valid Istio YAML written as Istio's docs write it loads
//! with no error, and each invalid fixture yields exactly the error its
//! header announces.
//!
//! An invalid fixture starts with comment lines
//! `# expect-kind: KIND` (an `ErrorKind` name), `# expect-path: PATH`
//! (empty for a whole-document error) and optionally `# expect-line: N`.

use std::path::{Path, PathBuf};

use mesh_api::{load_dir, load_file, validate_files, ConfigError, ErrorKind};

fn fixtures(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// All errors of one file, loaded and validated alone.
fn errors_of(path: &Path) -> Vec<ConfigError> {
    let file = load_file(path);
    validate_files(&[file]).into_values().flatten().collect()
}

/// The value of a `# NAME: value` header line.
fn header<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let prefix = format!("# {name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
}

#[test]
fn valid_fixtures_load_without_errors() {
    let files = load_dir(&fixtures("valid")).expect("fixture dir");
    assert!(files.len() >= 8, "fixtures missing: {}", files.len());
    let report = validate_files(&files);
    let errors: Vec<String> = report.values().flatten().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let objects: usize = files.iter().map(|f| f.objects.len()).sum();
    assert_eq!(
        objects, 13,
        "every Istio object is loaded, app manifests skipped"
    );
}

#[test]
fn productpage_virtual_service_keeps_its_match_list() {
    let file = load_file(&fixtures("valid/productpage-vs.yaml"));
    let Some(mesh_api::Object::VirtualService(vs)) = file.objects.first().map(|l| &l.object) else {
        panic!("expected a VirtualService, got {:?}", file.objects);
    };
    let uris: Vec<_> = vs.spec.http[0]
        .matches
        .iter()
        .filter_map(|m| m.uri.as_ref().and_then(|u| u.matcher()))
        .collect();
    assert_eq!(uris.len(), 5);
    assert_eq!(uris[0], mesh_api::StringMatcher::Exact("/productpage"));
    assert_eq!(uris[1], mesh_api::StringMatcher::Prefix("/static"));
    assert_eq!(vs.spec.gateways, ["bookinfo-gateway"]);
}

#[test]
fn each_invalid_fixture_reports_its_error() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures("invalid"))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 20, "fixtures missing: {}", paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("fixture");
        let kind = header(&text, "expect-kind").expect("expect-kind header");
        let field = header(&text, "expect-path").expect("expect-path header");
        let errors = errors_of(&path);
        let name = path.display();
        assert_eq!(errors.len(), 1, "{name}: {errors:#?}");
        let err = &errors[0];
        assert_eq!(format!("{:?}", err.kind), kind, "{name}: {err}");
        assert_eq!(err.path, field, "{name}: {err}");
        assert_eq!(err.file, path, "{name}: {err}");
        if let Some(line) = header(&text, "expect-line") {
            assert_eq!(
                err.line.map(|l| l.to_string()).as_deref(),
                Some(line),
                "{name}: {err}"
            );
        }
        // Display is FILE[:LINE]: [Kind/ns/name: ][path: ]message.
        let shown = err.to_string();
        assert!(shown.starts_with(&path.display().to_string()), "{shown}");
        if !field.is_empty() {
            assert!(shown.contains(&format!(": {field}: ")), "{shown}");
        }
    }
}

#[test]
fn duplicate_across_files_names_the_first_file() {
    let files = load_dir(&fixtures("invalid/duplicate")).expect("fixture dir");
    let report = validate_files(&files);
    let first = fixtures("invalid/duplicate/a-gateways.yaml");
    let second = fixtures("invalid/duplicate/b-more-gateways.yaml");
    assert_eq!(report[&first], vec![]);
    let errors = &report[&second];
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].kind, ErrorKind::Duplicate);
    assert_eq!(errors[0].path, "metadata.name");
    assert_eq!(
        errors[0].object.as_deref(),
        Some("Gateway/default/postcard-gateway")
    );
    assert!(
        errors[0]
            .message
            .contains(&format!("{}:4", first.display())),
        "{}",
        errors[0]
    );
}

#[test]
fn regex_errors_name_re2() {
    let errors = errors_of(&fixtures("invalid/regex-header.yaml"));
    let shown = errors[0].to_string();
    assert!(shown.contains("VirtualService/default/regex-header: spec.http[0].match[0].headers.user-agent.regex: invalid regular expression"), "{shown}");
}

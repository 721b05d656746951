//! Unit tests of the loader: document splitting, skipping, line numbers and
//! the paths of parse errors.

use super::*;

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n";

fn load(text: &str) -> (Vec<Loaded>, Vec<ConfigError>) {
    load_str(Path::new("t.yaml"), text)
}

fn only_error(text: &str) -> ConfigError {
    let (objects, mut errors) = load(text);
    assert!(objects.is_empty(), "{objects:?}");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn multi_document_with_empty_documents_and_line_numbers() {
    let text = format!("---\n# comment only\n---\n\n{VS}---\n---\n{VS}");
    let (objects, errors) = load(&text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].line, Some(5));
    assert_eq!(objects[1].line, Some(12));
    assert_eq!(objects[0].file, Path::new("t.yaml"));
}

#[test]
fn all_supported_api_versions_load() {
    for version in ["v1alpha3", "v1beta1", "v1"] {
        let text = VS.replace("/v1\n", &format!("/{version}\n"));
        let (objects, errors) = load(&text);
        assert!(errors.is_empty(), "{version}: {errors:?}");
        assert_eq!(
            objects[0].object.api_version(),
            format!("networking.istio.io/{version}")
        );
    }
    let err = only_error(&VS.replace("/v1\n", "/v2\n"));
    assert_eq!(
        (err.kind, err.path.as_str()),
        (ErrorKind::Unsupported, "apiVersion")
    );
}

#[test]
fn non_istio_objects_are_skipped() {
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{replicas: 1}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n---\n{VS}"
    );
    let (objects, errors) = load(&text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(objects.len(), 1);
}

#[test]
fn unsupported_istio_kind_is_reported() {
    let err = only_error(
        "apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: {name: f}\nspec: {}\n",
    );
    assert_eq!(
        (err.kind, err.path.as_str()),
        (ErrorKind::Unsupported, "kind")
    );
    assert!(err.message.contains("EnvoyFilter"), "{err}");
    assert_eq!(err.line, Some(2), "the line of kind");
    assert_eq!(err.object.as_deref(), Some("EnvoyFilter/default/f"));
}

#[test]
fn list_items_are_expanded() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: gw}\n  spec: {servers: []}\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: bad}\n  spec: {servrs: []}\n";
    let (objects, errors) = load(text);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].key(), "Gateway/default/gw");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "spec.servrs");
    assert_eq!(errors[0].object.as_deref(), Some("Gateway/default/bad"));
    assert_eq!(errors[0].line, Some(14), "the line of the item's field");
    assert_eq!(objects[0].line, Some(7), "the line where the item starts");
}

#[test]
fn malformed_yaml_has_a_line() {
    let text = format!("{VS}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a: b\nspec: {{}}\n");
    let (objects, errors) = load(&text);
    assert_eq!(objects.len(), 1, "the good document still loads");
    let err = &errors[0];
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!(err.line, Some(10));
    assert_eq!(err.object, None);
    assert!(err.to_string().starts_with("t.yaml:10: "), "{err}");
}

#[test]
fn unknown_field_has_path_and_line() {
    let err = only_error(&format!(
        "{VS}  http:\n  - route:\n    - destination: {{host: a}}\n      wieght: 3\n"
    ));
    assert_eq!(err.kind, ErrorKind::UnknownField);
    assert_eq!(err.path, "spec.http[0].route[0].wieght");
    assert_eq!(err.line, Some(9));
    assert_eq!(err.object.as_deref(), Some("VirtualService/default/a"));
}

#[test]
fn wrong_type_has_path() {
    let err = only_error(&format!(
        "{VS}  http:\n  - route:\n    - destination: {{host: a}}\n      weight: abc\n"
    ));
    assert_eq!(err.kind, ErrorKind::WrongType);
    assert_eq!(err.path, "spec.http[0].route[0].weight");
    let err = only_error("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {location: OUTSIDE}\n");
    assert_eq!(
        (err.kind, err.path.as_str()),
        (ErrorKind::WrongType, "spec.location")
    );
    let err = only_error(&format!("{VS}  http:\n  - timeout: 3x\n"));
    assert_eq!(
        (err.kind, err.path.as_str()),
        (ErrorKind::InvalidValue, "spec.http[0].timeout")
    );
}

#[test]
fn missing_spec_points_at_the_field() {
    let err = only_error(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: ns}\n",
    );
    assert_eq!(err.kind, ErrorKind::MissingField);
    assert_eq!(err.path, "spec");
    assert_eq!(
        err.to_string(),
        "t.yaml:1: Gateway/ns/gw: spec: missing required field"
    );
}

#[test]
fn document_without_api_version_is_reported() {
    let err = only_error("just: a map\n");
    assert_eq!(
        (err.kind, err.path.as_str()),
        (ErrorKind::MissingField, "apiVersion")
    );
    let err = only_error("- a list\n");
    assert_eq!(err.kind, ErrorKind::WrongType);
}

#[test]
fn load_dir_reads_yaml_files_in_order_and_not_subdirectories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("write");
    };
    write("b.yml", &VS.replace("name: a", "name: b"));
    write("a.yaml", VS);
    write("notes.txt", "not yaml: [");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::fs::write(dir.path().join("sub/c.yaml"), "bad: [").expect("write");
    let files = load_dir(dir.path()).expect("dir loads");
    let names: Vec<_> = files
        .iter()
        .map(|f| f.path.file_name().and_then(|n| n.to_str()).unwrap_or(""))
        .collect();
    assert_eq!(names, ["a.yaml", "b.yml"]);
    assert!(files
        .iter()
        .all(|f| f.errors.is_empty() && f.objects.len() == 1));

    let missing = load_file(&dir.path().join("missing.yaml"));
    assert_eq!(missing.errors[0].kind, ErrorKind::Io);
    assert!(load_dir(&dir.path().join("nope")).is_err());
}

#[test]
fn enum_values_are_case_sensitive_with_a_hint() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy: {loadBalancer: {simple: round_robin}}\n";
    let (objects, errors) = load_str(Path::new("t.yaml"), yaml);
    assert!(objects.is_empty());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].kind, ErrorKind::WrongType);
    assert_eq!(errors[0].path, "spec.trafficPolicy.loadBalancer.simple");
    assert!(
        errors[0]
            .message
            .ends_with("(enum values are case-sensitive: write ROUND_ROBIN)"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.yaml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(50 * 1024 * 1024).expect("sparse 50 MB");
    let loaded = load_file(&path);
    assert!(loaded.objects.is_empty());
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let err = &loaded.errors[0];
    assert_eq!(err.kind, ErrorKind::TooLarge);
    assert!(err.message.contains("50 MiB"), "{}", err.message);
    assert!(err.message.contains("limit of 8 MiB"), "{}", err.message);
    assert!(err.to_string().contains("big.yaml"), "{err}");
}

#[test]
fn aliases_that_expand_past_the_limit_are_refused_by_bytes() {
    let big = "x".repeat(1024 * 1024);
    let mut text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: a}}\nspec:\n  hosts: [&big {big}]\n  gateways:\n"
    );
    for _ in 0..200 {
        text.push_str("  - *big\n");
    }
    let (objects, errors) = load(&text);
    assert!(objects.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, ErrorKind::TooLarge);
    assert!(
        errors[0].message.contains("limit of 8 MiB"),
        "{}",
        errors[0].message
    );
    // The line of the alias that crossed the limit, as a file line.
    assert!(
        errors[0].line.is_some_and(|l| l > 6),
        "{:?}",
        errors[0].line
    );
}

#[test]
fn lines_stay_file_lines_in_later_documents() {
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: d{i}}}\nspec:\n  host: h{i}\n"
        ));
    }
    text.push_str("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: bad}\nspec:\n  host: h\n  nope: 1\n");
    let (_, errors) = load(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, Some(25), "{:?}", errors[0]);
}

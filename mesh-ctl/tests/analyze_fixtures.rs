//! `meshctl analyze` as a user runs it, over mesh-api's fixtures: every
//! invalid case exits non-zero and prints the field path (and the line where
//! the fixture expects one); Istio YAML written for Istio passes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mesh-api/tests/fixtures")
        .join(kind)
}

fn analyze(paths: &[PathBuf]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .arg("analyze")
        .arg("-f")
        .args(paths)
        .output()
        .expect("run meshctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The `# expect-NAME: value` header line of a fixture, if present.
fn expectation(text: &str, name: &str) -> Option<String> {
    let prefix = format!("# expect-{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.trim().to_string())
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_field_path() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures("invalid"))
        .expect("invalid fixtures")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the full set of invalid fixtures, found {}",
        files.len()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read fixture");
        let (code, out) = analyze(std::slice::from_ref(&file));
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert_ne!(code, 0, "{name} was accepted:\n{out}");
        assert!(
            out.contains(&name),
            "{name}: the error does not name the file:\n{out}"
        );
        if let Some(path) = expectation(&text, "path").filter(|p| !p.is_empty()) {
            assert!(
                out.contains(&format!(": {path}")),
                "{name}: no field path {path}:\n{out}"
            );
        }
        if let Some(line) = expectation(&text, "line") {
            assert!(
                out.contains(&format!("{name}:{line}:")),
                "{name}: no line {line}:\n{out}"
            );
        }
    }
}

#[test]
fn a_duplicate_object_is_reported_with_both_files() {
    let dir = fixtures("invalid/duplicate");
    let (code, out) = analyze(&[
        dir.join("a-gateways.yaml"),
        dir.join("b-more-gateways.yaml"),
    ]);
    assert_ne!(code, 0, "duplicate accepted:\n{out}");
    assert!(out.contains("b-more-gateways.yaml"), "{out}");
    assert!(
        out.contains("a-gateways.yaml"),
        "the first file is not named:\n{out}"
    );
    assert!(out.contains("Gateway/default/postcard-gateway"), "{out}");
}

#[test]
fn istio_yaml_written_for_istio_is_accepted() {
    let dir = fixtures("valid");
    let (code, out) = analyze(&[dir]);
    assert_eq!(code, 0, "valid Istio YAML rejected:\n{out}");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
    for sample in ["postcard", "bookinfo"] {
        let (code, out) = analyze(&[samples.join(sample).join("mesh")]);
        assert_eq!(code, 0, "{sample} config rejected:\n{out}");
    }
}

#[test]
fn a_validation_error_has_the_line_of_its_field() {
    // The second HTTP route's regex does not compile: found by validation,
    // after the file parsed, on line 18 (the `regex:` key), in the second
    // document of the file.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("routes.yaml");
    let text = "\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /static}
    route: [{destination: {host: reviews}}]
  - match:
    - uri:
        regex: \"/api/(v1\"
      headers:
        user-agent: {exact: tester}
    route: [{destination: {host: reviews}}]
";
    assert_eq!(
        text.lines().nth(17).map(str::trim),
        Some("regex: \"/api/(v1\"")
    );
    std::fs::write(&file, text).expect("write");
    let (code, out) = analyze(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "{}:18: VirtualService/default/reviews: spec.http[1].match[0].uri.regex: invalid regular expression",
        file.display()
    );
    assert!(
        out.lines().any(|l| l.starts_with(&expected)),
        "no {expected:?} in:\n{out}"
    );
}

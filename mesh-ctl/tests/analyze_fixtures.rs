//! `meshctl analyze` as a user runs it, over mesh-api's fixtures: every
//! invalid case exits non-zero and prints the field path (and the line where
//! the fixture expects one); Istio YAML written for Istio passes, Istio's
//! own samples of 1.0 and of today included; warnings (deprecated fields,
//! shadowed VirtualServices) are printed and leave the exit code 0.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mesh-api/tests/fixtures")
        .join(kind)
}

/// `analyze` of one file holding `text`, written as `name` in a temp dir
/// (kept alive by the returned guard): exit code, output and the file.
fn analyze_text(name: &str, text: &str) -> (i32, String, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("write");
    let (code, out) = analyze(std::slice::from_ref(&file));
    (code, out, file, dir)
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
    let (code, out, file, _dir) = analyze_text("routes.yaml", text);
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

#[test]
fn a_regex_envoy_would_nack_for_its_program_size_is_rejected() {
    // Valid for the regex crate, but its RE2 program is 808 instructions:
    // Envoy refuses the whole route configuration over 100.
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: \"/big(a|b|c|d|e|f|g){1,200}x\"
    route: [{destination: {host: reviews}}]
";
    let (code, out, file, _dir) = analyze_text("big-regex.yaml", text);
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "{}:9: VirtualService/default/reviews: spec.http[0].match[0].uri.regex: regex \"/big(a|b|c|d|e|f|g){{1,200}}x\" compiles to an RE2 program of 808 instructions, more than Envoy's limit of 100 (re2.max_program_size.error_level)",
        file.display()
    );
    assert!(
        out.lines().any(|l| l == expected),
        "no {expected:?} in:\n{out}"
    );
}

/// The 1-based number of the first line of `file` that contains `text`.
fn line_of(file: &Path, text: &str) -> usize {
    let content = std::fs::read_to_string(file).expect("read fixture");
    content
        .lines()
        .position(|l| l.contains(text))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{text:?} not in {}", file.display()))
}

#[test]
fn deprecated_fields_are_warned_about_and_accepted() {
    let dir = fixtures("valid");
    let (code, out) = analyze(std::slice::from_ref(&dir));
    assert_eq!(code, 0, "warnings must not fail analyze:\n{out}");
    let file = dir.join("deprecated-forms.yaml");
    let expected = [
        (
            "appendHeaders:",
            "VirtualService/legacy/ratings: spec.http[0].appendHeaders: deprecated, use spec.http[0].headers.request.add",
        ),
        (
            "mirrorPercent:",
            "VirtualService/legacy/ratings: spec.http[0].mirrorPercent: deprecated, use spec.http[0].mirrorPercentage",
        ),
        (
            "simple: LEAST_CONN",
            "DestinationRule/legacy/ratings: spec.trafficPolicy.loadBalancer.simple: deprecated, use LEAST_REQUEST",
        ),
    ];
    for (text, warning) in expected {
        let line = format!("{}:{}: {warning}", file.display(), line_of(&file, text));
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    assert!(
        out.contains("no errors,") && out.contains("warning(s)"),
        "{out}"
    );
}

#[test]
fn istio_samples_of_1_0_and_today_are_accepted() {
    for release in ["1.0.0", "master"] {
        let dir = fixtures("istio-samples").join(release);
        let rules = dir.join("destination-rule-all.yaml");
        for route in [
            "bookinfo-gateway.yaml",
            "virtual-service-all-v1.yaml",
            "virtual-service-reviews-80-20.yaml",
            "virtual-service-ratings-test-delay.yaml",
        ] {
            let (code, out) = analyze(&[rules.clone(), dir.join(route)]);
            assert_eq!(code, 0, "{release}/{route}:\n{out}");
        }
    }
    // Istio 1.0's delay fault used the integer percent.
    let dir = fixtures("istio-samples/1.0.0");
    let (_, out) = analyze(&[
        dir.join("destination-rule-all.yaml"),
        dir.join("virtual-service-ratings-test-delay.yaml"),
    ]);
    assert!(
        out.contains(
            "spec.http[0].fault.delay.percent: deprecated, use spec.http[0].fault.delay.percentage"
        ),
        "{out}"
    );
    // The mTLS rules are refused, saying why.
    let (code, out) =
        analyze(&[fixtures("istio-samples/master").join("destination-rule-all-mtls.yaml")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "ISTIO_MUTUAL is not enforced by this mesh yet (mTLS arrives with the security issue)"
        ),
        "{out}"
    );
}

#[test]
fn two_mesh_virtual_services_for_one_host_are_named_in_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vs = |name: &str, created: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  creationTimestamp: \"{created}\"\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n"
        )
    };
    let older = dir.path().join("a-older.yaml");
    let newer = dir.path().join("b-newer.yaml");
    std::fs::write(&older, vs("reviews-v1", "2024-01-01T00:00:00Z")).expect("write");
    std::fs::write(&newer, vs("reviews-canary", "2024-06-01T00:00:00Z")).expect("write");
    let (code, out) = analyze(&[older.clone(), newer.clone()]);
    assert_eq!(code, 0, "a warning only:\n{out}");
    let warning = out
        .lines()
        .find(|l| l.contains("IST0109"))
        .unwrap_or_else(|| panic!("no IST0109 warning in:\n{out}"));
    assert!(
        warning.starts_with(&format!(
            "{}:7: VirtualService/default/reviews-canary: spec.hosts[0]: VirtualService/default/reviews-v1 ({}:4) also routes host reviews.default.svc.cluster.local",
            newer.display(),
            older.display()
        )),
        "{warning}"
    );
}

#[test]
fn errors_fail_even_beside_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    loadBalancer: {simple: LEAST_CONN}\n    outlierDetection: {interval: 0s}\n",
    )
    .expect("write");
    let (code, out) = analyze(std::slice::from_ref(&file));
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no {text:?} in:\n{out}"))
    };
    // Sorted by line: the warning (line 7) before the error (line 8).
    assert!(
        at("loadBalancer.simple: deprecated") < at("outlierDetection.interval:"),
        "{out}"
    );
    assert!(
        out.contains("1 error(s) and 1 warning(s) in 1 file(s)"),
        "{out}"
    );
}

//! The Istio YAML the scenarios apply (`e2e/istio/`) is what Istio users
//! write, so the mesh must accept all of it: every file, with the run's
//! values filled in, loads and validates clean with mesh-api, each beside
//! the DestinationRules that give its subsets (as in a cluster). No root.

use std::path::Path;

use mesh_api::load::load_str;
use mesh_api::validate::validate;

/// The values scenarios substitute at run time.
fn filled(text: &str) -> String {
    text.replace("{{DB_IP}}", "198.18.3.20")
        .replace("{{PERCENT}}", "50")
        .replace(
            "{{CERT}}",
            "/tmp/mesh-local/e2e1x1/files/secure.example.com.crt",
        )
        .replace(
            "{{KEY}}",
            "/tmp/mesh-local/e2e1x1/files/secure.example.com.key",
        )
}

#[test]
fn every_task_file_loads_and_validates_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("istio");
    let rules_path = dir.join("../../samples/bookinfo/mesh/destination-rules.yaml");
    let rules_text = std::fs::read_to_string(&rules_path).expect("bookinfo destination rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("e2e/istio")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut problems = Vec::new();
    for path in &files {
        let text = filled(&std::fs::read_to_string(path).expect("readable"));
        assert!(
            !text.contains("{{"),
            "{}: a placeholder is left",
            path.display()
        );
        let (mut objects, errors) = load_str(path, &text);
        assert!(
            !objects.is_empty() || !errors.is_empty(),
            "{}: empty",
            path.display()
        );
        problems.extend(errors.iter().map(|e| e.to_string()));
        let own = objects.len();
        let (rules, _) = load_str(&rules_path, &rules_text);
        // A file that defines its own rules (mirror.yaml) needs no others.
        if !text.contains("kind: DestinationRule") {
            objects.extend(rules);
        }
        for e in validate(&objects) {
            problems.push(e.to_string());
        }
        assert!(own > 0, "{}: no objects", path.display());
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

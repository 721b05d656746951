//! One-way modules (STYLE.md rule 11), checked on the workspace's own
//! sources: no two sibling modules of any crate import each other, and no
//! product crate depends on a test crate.

use std::path::{Path, PathBuf};

use mesh_test_support::modgraph::CrateGraph;

/// Crates that exist only for tests: product crates must not depend on them.
const TEST_CRATES: [&str; 2] = ["mesh-e2e", "mesh-test-support"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every workspace member directory (from the root Cargo.toml's `members`).
fn members() -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).expect("Cargo.toml");
    let start = manifest.find("members").expect("a members list");
    let list = &manifest[start..];
    let list = &list[list.find('[').expect("[")..=list.find(']').expect("]")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(|m| workspace().join(m))
        .collect()
}

#[test]
fn no_module_imports_a_sibling_that_imports_it() {
    let mut report = String::new();
    let mut checked = 0;
    for member in members() {
        let src = member.join("src");
        let graph = CrateGraph::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        checked += graph.modules.len();
        for cycle in graph.cycles() {
            report.push_str(&format!("{}: {cycle}", member.display()));
        }
    }
    assert!(checked > 100, "read only {checked} modules");
    assert!(report.is_empty(), "module cycles:\n{report}");
}

#[test]
fn product_crates_do_not_depend_on_test_crates() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for member in members() {
        let manifest = std::fs::read_to_string(member.join("Cargo.toml")).expect("manifest");
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_default();
        if TEST_CRATES.contains(&name.as_str()) {
            continue;
        }
        checked += 1;
        let mut section = String::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[dependencies]" || section == "[build-dependencies]" {
                if let Some(dep) = TEST_CRATES.iter().find(|t| line.starts_with(**t)) {
                    bad.push(format!("{name} depends on {dep}"));
                }
            }
        }
    }
    assert!(checked >= 6, "read only {checked} product manifests");
    assert!(
        bad.is_empty(),
        "product crates depending on test crates: {bad:?}"
    );
}
